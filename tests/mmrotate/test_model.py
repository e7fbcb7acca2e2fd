"""The mmrotate image's model side: parity with mmrotate's own inference, every model of the image
training a step and predicting, the bad inputs, and `ymir-exec verify` on rotated sample data."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest
import torch

from conftest import edit_yaml, read_monitor
from ymir_base.engine.task import run_task
from ymir_base.errors import ErrorCode
from ymir_base.sample.generator import generate
from ymir_base.verify.checks import check_infer_result
from ymir_mmrotate.backend import MODELS, MmrotateBackend, config_dir
from ymir_openmmlab import config as mmcfg
from ymir_openmmlab.predictor import OpenMMLabPredictor

CLASSES = ["circle", "square", "triangle"]
ONE_STEP = {"max_epochs": 1, "img_size": 96, "samples_per_gpu": 4, "workers_per_gpu": 0,
            "cfg_options": "model.test_cfg.nms_pre=200 model.test_cfg.max_per_img=100"}


@pytest.fixture(scope="module")
def random_model(tmp_path_factory):
    """The tiny rotated RTMDet for 3 classes at 160 px with seeded random weights whose box
    regression is positive (an untrained head predicts sides near 0, which mmrotate drops), whose
    class scores vary from place to place and whose boxes are turned by about 0.4 rad."""
    from mmengine.registry import init_default_scope
    from mmrotate.registry import MODELS as REGISTRY

    folder = tmp_path_factory.mktemp("random-rotated")
    cfg = mmcfg.load_config(config_dir() / MODELS["rotated_rtmdet_tiny"])
    mmcfg.set_num_classes(cfg.model, len(CLASSES))
    mmcfg.strip_pretrained(cfg.model)
    mmcfg.resize(cfg, 160)
    cfg.model.test_cfg.update(nms_pre=200, max_per_img=100, score_thr=0.05)
    init_default_scope("mmrotate")
    torch.manual_seed(0)
    model = REGISTRY.build(cfg.model)
    model.init_weights()
    with torch.no_grad():
        for conv in model.bbox_head.rtm_reg:
            conv.bias.fill_(1.0)
        for conv in model.bbox_head.rtm_cls:
            conv.weight.normal_(0, 0.2)
            conv.bias.zero_()
        for conv in model.bbox_head.rtm_ang:
            conv.bias.fill_(0.4)
    torch.save({"state_dict": model.state_dict(), "meta": {"dataset_meta": {"classes": tuple(CLASSES)}}},
               folder / "best.pth")
    cfg.dump(str(folder / "config.py"))
    return folder


def _sample_images(tmp_path, count=6):
    in_dir = generate(tmp_path / "in", task="infer", object_type="rotated", fmt="ark", images=count)
    return sorted(in_dir.glob("assets/*/*.jpg"))


def test_batched_predictor_matches_mmrotates_inference(tmp_path, random_model):
    """Our batches of 4 through the head's own decoding and batched rotated NMS give the boxes of
    mmdet's ``inference_detector`` (what mmrotate's demo uses) one image at a time."""
    from mmdet.apis import inference_detector, init_detector
    from mmengine.config import Config

    paths = _sample_images(tmp_path)
    cfg = Config.fromfile(str(random_model / "config.py"))
    reference = inference_detector(init_detector(cfg.copy(), str(random_model / "best.pth"), device="cpu"),
                                   [str(p) for p in paths])
    ours = OpenMMLabPredictor(cfg, random_model / "best.pth", device=torch.device("cpu"), conf_threshold=0.05,
                              batch_size=4).predict([cv2.imread(str(p))[..., ::-1] for p in paths])
    compared = 0
    for pred, ref in zip(ours, reference, strict=True):
        inst = ref.pred_instances
        assert pred.rboxes is not None and len(pred) == len(inst.scores)
        rboxes = getattr(inst.bboxes, "tensor", inst.bboxes).double().numpy()
        scores, labels = inst.scores.numpy(), inst.labels.numpy()
        for k in np.argsort(-scores, kind="stable")[:20]:  # each top reference box is one of ours
            same = ((pred.class_ids == labels[k]) & (np.abs(pred.scores - scores[k]) < 1e-4)
                    & (np.abs(pred.rboxes - rboxes[k]).max(axis=1) < 1e-2))
            assert same.any(), (k, rboxes[k], scores[k])
            compared += 1
    assert compared >= 20
    angles = np.concatenate([p.rboxes[:, 4] for p in ours])
    assert np.abs(np.abs(angles) - 0.4).max() < 0.05  # really rotated boxes (le90 may flip the sign)


def test_classes_of_the_same_place_are_not_suppressed_by_each_other(tmp_path, random_model):
    """mmcv's CPU nms_rotated ignores labels; the head's batched_nms keeps one box per class."""
    paths = _sample_images(tmp_path, 2)
    from mmengine.config import Config

    cfg = Config.fromfile(str(random_model / "config.py"))
    pred = OpenMMLabPredictor(cfg, random_model / "best.pth", device=torch.device("cpu"), conf_threshold=0.05,
                              batch_size=2, iou_threshold=0.1).predict([cv2.imread(str(paths[0]))[..., ::-1]])[0]
    centres = {}
    for rbox, cls in zip(pred.rboxes, pred.class_ids, strict=True):
        centres.setdefault(tuple(np.round(rbox[:2], 3)), set()).add(int(cls))
    assert any(len(classes) > 1 for classes in centres.values())


def test_iou_threshold_sets_the_rotated_nms(random_model):
    from mmengine.config import Config

    cfg = Config.fromfile(str(random_model / "config.py"))
    predictor = OpenMMLabPredictor(cfg, random_model / "best.pth", device=torch.device("cpu"), conf_threshold=0.3,
                                   batch_size=1, iou_threshold=0.65)
    assert predictor.model.bbox_head.test_cfg["nms"] == {"type": "nms_rotated", "iou_threshold": 0.65}
    assert predictor.model.bbox_head.test_cfg["score_thr"] == 0.3


@pytest.mark.parametrize(("fmt", "override", "code", "message"), [
    ("coco", {}, ErrorCode.CONFIG, "export_format"),
    ("ark", {"model_name": "yolov8_n"}, ErrorCode.CONFIG, "model_name"),
    ("ark", {"cfg_options": "optim_wrapper.optimizer.lr"}, ErrorCode.CONFIG, "cfg_options"),
])
def test_bad_training_input_fails_with_its_code(sample, fmt, override, code, message):
    in_dir, out_dir = sample("training", fmt, object_type="rotated")
    assert run_task("mmrotate", in_dir, out_dir, {**ONE_STEP, **override}) == 1
    state, got_code, text = read_monitor(out_dir)
    assert (got_code, state) == (code, 4) and message in text
    assert not (out_dir / "models" / "result.yaml").exists()


def test_a_non_finite_angle_is_a_dataset_error(sample):
    in_dir, out_dir = sample("training", object_type="rotated")
    first = (in_dir / "train-index.tsv").read_text().split()[1]
    (in_dir / first.removeprefix("/in/")).write_text("1, 10, 10, 30, 20, -1.0, nan\n")
    assert run_task("mmrotate", in_dir, out_dir, ONE_STEP) == 1
    state, code, text = read_monitor(out_dir)
    assert (code, state) == (ErrorCode.DATASET, 4) and "not a finite number" in text


def test_cpu_training_swaps_the_cuda_only_box_loss(sample, caplog):
    from ymir_base.engine.registry import image_spec
    from ymir_base.protocol.context import build_context
    from ymir_base.protocol.paths import PathMapper

    in_dir, out_dir = sample("training", object_type="rotated")
    ctx = build_context(image_spec("mmrotate"), PathMapper(in_dir, out_dir))
    cfg = mmcfg.load_config(config_dir() / MODELS["rotated_rtmdet_tiny"])
    MmrotateBackend().adapt_config(cfg, ctx, total_iters=50)
    assert cfg.model.bbox_head.loss_bbox == {"type": "GDLoss", "loss_type": "gwd", "fun": "log1p", "tau": 1.0,
                                             "loss_weight": 2.0}
    assert "RotatedIoULoss needs a CUDA-only op" in caplog.text
    assert "rect_obj_labels" not in str(cfg.train_dataloader.dataset.pipeline)
    edit_yaml(in_dir / "config.yaml", gpu_id="0", gpu_count=1)
    gpu_cfg = mmcfg.load_config(config_dir() / MODELS["rotated_rtmdet_tiny"])
    MmrotateBackend().adapt_config(gpu_cfg, build_context(image_spec("mmrotate"), PathMapper(in_dir, out_dir)), 50)
    assert gpu_cfg.model.bbox_head.loss_bbox.type == "RotatedIoULoss"


@pytest.mark.slow
@pytest.mark.parametrize("model", sorted(MODELS))
def test_every_model_trains_a_step_and_predicts(sample, model):
    in_dir, out_dir = sample("training", images=6, object_type="rotated")
    assert run_task("mmrotate", in_dir, out_dir, {"model_name": model, **ONE_STEP}) == 0, read_monitor(out_dir)[2]
    best = out_dir / "models" / "best"
    ckpt = torch.load(best / "best.pth", map_location="cpu", weights_only=False)
    assert ckpt["meta"]["dataset_meta"]["classes"] == tuple(CLASSES)
    in_dir, out_dir = sample("infer", images=3, object_type="rotated", models={"best": best})
    assert run_task("mmrotate", in_dir, out_dir, {"conf_threshold": 0.0}) == 0, read_monitor(out_dir)[2]
    candidates = (in_dir / "candidate-index.tsv").read_text().split()
    assert check_infer_result(out_dir / "infer-result.json", candidates, CLASSES, "rotated") == []
    assert set(json.loads((out_dir / "infer-result.json").read_text())["detection"]) == \
        {c.rsplit("/", 1)[-1] for c in candidates}


@pytest.mark.slow
def test_ymir_exec_verify_on_rotated_sample_data(tmp_path):
    from ymir_base.verify.pipeline import verify

    report = verify("mmrotate", tmp_path)
    failed = [(name, detail) for ok, name, detail in report.lines if not ok]
    assert not failed
    names = [name for _, name, _ in report.lines]
    for algorithm in ("aldd", "cald", "entropy", "random"):
        assert f"mining-{algorithm}: result.tsv" in names
    assert "mining+infer: infer-result.json" in names
