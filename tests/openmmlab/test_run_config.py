"""Run-config building from upstream configs: classes, datasets, sizes, schedule, user options."""

from __future__ import annotations

from pathlib import Path

import pytest

from ymir_base.errors import ConfigError
from ymir_mmdet.backend import config_dir as mmdet_configs
from ymir_mmyolo.backend import MODELS
from ymir_mmyolo.backend import config_dir as mmyolo_configs
from ymir_openmmlab import config as mmcfg


def as_plain(value):
    """ConfigDicts and tuples -> plain dicts and lists, for comparisons."""
    if isinstance(value, dict):
        return {k: as_plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [as_plain(v) for v in value]
    return value


def yolox_tiny():
    return mmcfg.load_config(mmdet_configs() / "yolox" / "yolox_tiny_8xb8-300e_coco.py")


def mmyolo(name: str):
    return mmcfg.load_config(mmyolo_configs() / MODELS[name])


def test_every_mmyolo_model_name_has_a_config():
    assert all((mmyolo_configs() / path).is_file() for path in MODELS.values())


def test_num_classes_reaches_heads_and_assigners():
    cfg = mmyolo("yolov8_n")
    mmcfg.set_num_classes(cfg.model, 3)
    assert cfg.model.bbox_head.head_module.num_classes == 3
    assert cfg.model.train_cfg.assigner.num_classes == 3
    assert all(d["num_classes"] == 3 for d in mmcfg.walk(cfg.model) if "num_classes" in d)


def test_download_initialisers_are_removed():
    cfg = mmyolo("rtmdet_tiny")
    assert any(isinstance(d.get("init_cfg"), dict) and d["init_cfg"].get("type") == "Pretrained"
               for d in mmcfg.walk(cfg.model))
    assert mmcfg.strip_pretrained(cfg.model) >= 1
    assert "://" not in str(as_plain(cfg.model))


def test_wrapped_datasets_are_pointed_at_our_files(tmp_path):
    cfg = yolox_tiny()
    ann = tmp_path / "train.json"
    mmcfg.point_dataset(cfg.train_dataloader.dataset, ann, ["a", "b"])
    assert cfg.train_dataloader.dataset.type == "MultiImageMixDataset"  # the wrapper stays
    inner = cfg.train_dataloader.dataset.dataset
    assert inner.ann_file == str(ann) and inner.data_root == "" and inner.metainfo == {"classes": ("a", "b")}


def test_resize_scales_every_size_to_the_inference_size():
    cfg = yolox_tiny()  # tests at 416, trains at 640
    assert mmcfg.test_size(cfg) == 416
    mmcfg.resize(cfg, 128)
    assert mmcfg.test_size(cfg) == 128
    mosaic, affine = cfg.train_dataloader.dataset.pipeline[:2]
    assert mosaic.img_scale == (192, 192)  # 640 * 128 / 416, to a multiple of 32
    assert affine.border == (-96, -96)
    assert cfg.model.data_preprocessor.batch_augments[0].random_size_range == (96, 192)


def test_resize_zero_keeps_the_config():
    cfg = mmyolo("yolov5_n")
    before = as_plain(cfg.train_dataloader)
    mmcfg.resize(cfg, 0)
    assert as_plain(cfg.train_dataloader) == before


def test_schedule_is_stretched_to_max_epochs():
    cfg = yolox_tiny()  # 300 epochs: warm-up 5, cosine to 285, constant to 300, last 15 without mosaic
    mmcfg.set_max_epochs(cfg, 100)
    warmup, cosine, constant = cfg.param_scheduler
    assert (warmup.begin, warmup.end) == (0, 2)
    assert (cosine.begin, cosine.end, cosine.T_max) == (2, 95, 95)
    assert (constant.begin, constant.end) == (95, 100)
    assert cfg.custom_hooks[0].num_last_epochs == 5
    assert cfg.train_cfg.max_epochs == 100


def test_schedule_hooks_follow_max_epochs():
    cfg = mmyolo("yolov8_n")  # 500 epochs, mosaic closed for the last 10
    mmcfg.set_max_epochs(cfg, 2)
    assert cfg.default_hooks.param_scheduler.max_epochs == 2
    switch = next(h for h in cfg.custom_hooks if "switch_epoch" in h)
    assert switch.switch_epoch == 1


@pytest.mark.parametrize(("name", "key"), [("yolov8_n", "warmup_mim_iter"), ("ppyoloe_plus_s", "warmup_min_iter")])
def test_yolo_warmup_is_capped_for_short_runs(name, key):
    cfg = mmyolo(name)
    mmcfg.cap_warmup(cfg, 400)
    assert cfg.default_hooks.param_scheduler[key] == 40
    mmcfg.cap_warmup(cfg, 10**6)
    assert cfg.default_hooks.param_scheduler[key] == 40  # never raised


def test_a_fine_tuning_warms_up_at_least_as_long_as_yolov5s():
    cfg = mmyolo("yolov5_n")
    mmcfg.cap_warmup(cfg, 300, fine_tuning=True)
    assert cfg.default_hooks.param_scheduler.warmup_mim_iter == mmcfg.FINE_TUNE_WARMUP == 100
    cfg = mmyolo("yolov5_n")
    mmcfg.cap_warmup(cfg, 5000, fine_tuning=True)
    assert cfg.default_hooks.param_scheduler.warmup_mim_iter == 500  # a tenth, above the floor


def test_an_epoch_warmup_of_a_fine_tuning_lasts_100_iterations():
    cfg = yolox_tiny()
    mmcfg.set_max_epochs(cfg, 10)
    warmup, cosine, _ = cfg.param_scheduler
    assert (warmup.by_epoch, warmup.end) == (True, 1)  # 5 of 300 epochs: 1 of 10, 3 iterations on 24 images
    mmcfg.fit_warmup_schedulers(cfg, 3, 30)  # from random weights: within a tenth of the run, kept
    assert (warmup.by_epoch, warmup.end) == (True, 1)
    mmcfg.fit_warmup_schedulers(cfg, 3, 30, fine_tuning=True)
    assert (warmup.by_epoch, warmup.begin, warmup.end) == (False, 0, 100)  # past the run's end, as yolov5
    assert "convert_to_iter_based" not in warmup
    assert (cosine.by_epoch, cosine.end) == (True, 10)  # the decay is not a warm-up


def test_an_iteration_warmup_is_capped_at_a_tenth_of_a_short_run():
    cfg = mmyolo("rtmdet_tiny")  # LinearLR over 1000 iterations
    warmup = cfg.param_scheduler[0]
    mmcfg.fit_warmup_schedulers(cfg, 5, 400)
    assert (warmup.by_epoch, warmup.end) == (False, 40)
    mmcfg.fit_warmup_schedulers(cfg, 5, 400, fine_tuning=True)
    assert warmup.end == 100
    mmcfg.fit_warmup_schedulers(cfg, 5000, 10**6)
    assert warmup.end == 100  # never raised from random weights


def build_from_scratch_and_fine_tuned(sample, tmp_path, image: str, model: dict) -> dict:
    """The training configs of a 6-epoch run of 10 iterations each, from random weights and from
    the user's model."""
    import torch

    from ymir_base.engine.registry import backend_class, image_spec
    from ymir_base.protocol.context import build_context
    from ymir_base.protocol.paths import PathMapper
    from ymir_openmmlab.train import build_train_config

    in_dir, out_dir = sample("training")
    start = in_dir / "models" / "best" / "start.pth"
    start.parent.mkdir(parents=True)
    torch.save({"state_dict": {}}, start)
    settings = {**model, "samples_per_gpu": 5, "workers_per_gpu": 0, "max_epochs": 6}
    built = {}
    for name, extra in (("scratch", {}), ("fine-tuned", {"pretrained_model_params": ["/in/models/best/start.pth"]})):
        ctx = build_context(image_spec(image), PathMapper(in_dir, out_dir), overrides={**settings, **extra})
        built[name] = build_train_config(backend_class(image)(), ctx, tmp_path / "t.json", tmp_path / "v.json",
                                         tmp_path / name, train_images=50)
    assert built["scratch"].load_from is None
    assert built["fine-tuned"].load_from == str(start)
    return built


def test_a_short_run_from_the_users_model_warms_up_100_iterations(sample, tmp_path):
    built = build_from_scratch_and_fine_tuned(sample, tmp_path, "mmyolo", {"model_name": "yolov5_n"})
    assert built["scratch"].default_hooks.param_scheduler.warmup_mim_iter == 6
    assert built["fine-tuned"].default_hooks.param_scheduler.warmup_mim_iter == 100


def test_a_short_yolox_run_from_the_users_model_warms_up_100_iterations(sample, tmp_path):
    built = build_from_scratch_and_fine_tuned(sample, tmp_path, "mmdet",
                                              {"config_file": "configs/yolox/yolox_tiny_8x8_300e_coco.py"})
    scratch, tuned = built["scratch"].param_scheduler[0], built["fine-tuned"].param_scheduler[0]
    assert (scratch.by_epoch, scratch.end) == (False, 6)  # 5 of 300 epochs: 1 of 6, then a tenth of 60 iterations
    assert (tuned.by_epoch, tuned.end) == (False, 100)


def test_cfg_options_parse_like_mmengine():
    assert mmcfg.parse_cfg_options("a.b=1 c=[1,2] d=x e=(1,2)") == {"a.b": 1, "c": [1, 2], "d": "x", "e": (1, 2)}
    assert mmcfg.parse_cfg_options("") == {}


@pytest.mark.parametrize("text", ["lr", "a=1 'unclosed"])
def test_bad_cfg_options_name_the_key(text):
    with pytest.raises(ConfigError, match="cfg_options"):
        mmcfg.parse_cfg_options(text)


def test_args_options():
    args = mmcfg.parse_args_options("--amp --resume --cfg-options optim_wrapper.optimizer.lr=0.001")
    assert args.amp and args.resume == "auto" and args.cfg_options == {"optim_wrapper.optimizer.lr": 0.001}
    with pytest.raises(ConfigError, match=r"args_options.*--work-dir"):
        mmcfg.parse_args_options("--work-dir /tmp")


def test_merge_options(caplog):
    cfg = mmyolo("yolov8_n")
    mmcfg.merge_options(cfg, {"optim_wrapper.optimizer.lr": 0.5, "model.test_cfg.nms.iou_threshold": 0.5})
    assert cfg.optim_wrapper.optimizer.lr == 0.5 and cfg.model.test_cfg.nms.iou_threshold == 0.5
    assert "is not in the model's config" not in caplog.text  # known keys of a Config are found
    mmcfg.merge_options(cfg, {"optim_wrapper.optimizer.lrr": 0.1})
    assert "optim_wrapper.optimizer.lrr is not in the model's config" in caplog.text
    with pytest.raises(ConfigError, match="cfg_options"):
        mmcfg.merge_options(cfg, {"model.type.x": 1})  # a string cannot take keys


@pytest.mark.parametrize("scope,path", [("mmdet", mmdet_configs() / "yolox/yolox_tiny_8xb8-300e_coco.py"),
                                        ("mmyolo", mmyolo_configs() / MODELS["yolov5_n"])])
def test_inference_pipeline_reads_arrays_without_annotations(scope: str, path: Path):
    pipeline = mmcfg.inference_pipeline(mmcfg.load_config(path), scope)
    assert pipeline[0]["type"].endswith("LoadImageFromNDArray")
    assert not any(t["type"].endswith("LoadAnnotations") for t in pipeline)


@pytest.mark.parametrize("scope", ["mmdet", "mmyolo"])
def test_the_library_reads_our_coco_files_as_our_records(sample, tmp_path, scope):
    """Boxes and class ids survive our COCO writer and the library's own dataset class."""
    from mmengine.registry import init_default_scope

    from ymir_base.data.convert.coco import write_coco_json
    from ymir_base.data.reader import load_dataset
    from ymir_base.protocol.paths import PathMapper

    in_dir, out_dir = sample("training", images=6)
    names = ["circle", "square", "triangle"]
    dataset = load_dataset("/in/train-index.tsv", "/in/val-index.tsv", PathMapper(in_dir, out_dir), names, "ark")
    ann = tmp_path / "train.json"
    write_coco_json(dataset.train, names, ann)
    cfg = yolox_tiny() if scope == "mmdet" else mmyolo("yolov8_n")
    leaf = mmcfg.dataset_leaves(cfg.train_dataloader.dataset)[0]
    mmcfg.point_dataset(leaf, ann, names)
    leaf.update(pipeline=[], filter_cfg=None)
    init_default_scope(scope)
    from mmdet.registry import DATASETS as MMDET_DATASETS
    from mmyolo.registry import DATASETS as MMYOLO_DATASETS

    built = (MMDET_DATASETS if scope == "mmdet" else MMYOLO_DATASETS).build(leaf)
    assert len(built) == len(dataset.train) > 0
    for i, record in enumerate(dataset.train):
        info = built.get_data_info(i)
        assert info["img_path"] == str(record.path.absolute())
        got = sorted((inst["bbox_label"], *inst["bbox"]) for inst in info["instances"])
        want = sorted((obj.class_id, *obj.bbox) for obj in record.objects)
        assert got == pytest.approx(want)


def test_build_train_config_applies_the_hyper_parameters(sample, tmp_path, caplog):
    from ymir_base.engine.registry import backend_class, image_spec
    from ymir_base.protocol.context import build_context
    from ymir_base.protocol.paths import PathMapper
    from ymir_openmmlab.train import build_train_config

    in_dir, out_dir = sample("training")
    overrides = {"model_name": "yolov5_s", "samples_per_gpu": 5, "workers_per_gpu": 0, "max_epochs": 30,
                 "val_interval": 3, "img_size": 320, "args_options": "--amp",
                 "cfg_options": "optim_wrapper.optimizer.lr=0.002"}
    ctx = build_context(image_spec("mmyolo"), PathMapper(in_dir, out_dir), overrides=overrides)
    cfg = build_train_config(backend_class("mmyolo")(), ctx, tmp_path / "t.json", tmp_path / "v.json",
                             tmp_path / "work", train_images=50)
    assert cfg.train_dataloader.batch_size == 5 and cfg.optim_wrapper.optimizer.batch_size_per_gpu == 5
    assert cfg.train_dataloader.num_workers == 0 and not cfg.train_dataloader.persistent_workers
    assert cfg.train_cfg.max_epochs == 30 and cfg.train_cfg.val_interval == 3
    assert "dynamic_intervals" not in cfg.train_cfg
    assert mmcfg.test_size(cfg) == 320
    assert cfg.optim_wrapper.optimizer.lr == 0.002
    assert cfg.optim_wrapper.type == "OptimWrapper" and "--amp ignored" in caplog.text  # no GPU here
    assert cfg.default_hooks.param_scheduler.warmup_mim_iter == 30  # 10 iterations x 30 epochs / 10
    assert cfg.model.bbox_head.head_module.num_classes == 3
    # yolov5's loss weights for 3 classes at 320 px, not the config's for COCO's 80 at 640
    assert cfg.model.bbox_head.loss_cls.loss_weight == pytest.approx(0.5 * 3 / 80)
    assert cfg.model.bbox_head.loss_obj.loss_weight == pytest.approx(1.0 * (320 / 640) ** 2)
    assert cfg.load_from is None and cfg.resume is False  # no weights baked on this machine
    assert cfg.val_evaluator.ann_file == str(tmp_path / "v.json")


@pytest.mark.parametrize(("name", "cls", "obj"), [
    ("yolov5_s", 0.5 * 5 / 80, 1.0 * (256 / 640) ** 2),
    ("yolov5_n6", 0.5 * 5 / 80 * 3 / 4, 1.0 * (256 / 640) ** 2 * 3 / 4),  # 4 output levels
    ("yolov7_tiny", 0.5 * 5 / 80, 1.0 * (256 / 640) ** 2),
    ("yolov8_n", 0.5, None),  # weights that depend on neither: unchanged
])
def test_yolov5_style_losses_are_weighed_for_the_task(name, cls, obj):
    from ymir_mmyolo.backend import reweigh_yolov5_losses

    cfg = mmyolo(name)
    mmcfg.set_num_classes(cfg.model, 5)
    mmcfg.resize(cfg, 256)
    reweigh_yolov5_losses(cfg, 5)
    head = cfg.model.bbox_head
    assert head.loss_cls.loss_weight == pytest.approx(cls)
    assert (head.get("loss_obj") or {}).get("loss_weight") == (None if obj is None else pytest.approx(obj))


def test_resume_takes_the_newest_checkpoint_that_loads(tmp_path):
    """A kill between the CheckpointHook's delete and its pointer update, or mid-write."""
    import torch

    from ymir_openmmlab.train import _last_good_checkpoint

    (tmp_path / "last_checkpoint").write_text(str(tmp_path / "epoch_2.pth"))  # deleted already
    torch.save({"meta": {"epoch": 3}}, tmp_path / "epoch_3.pth")
    (tmp_path / "epoch_4.pth").write_bytes(b"PK\x03\x04 cut short")
    assert _last_good_checkpoint(tmp_path) == tmp_path / "epoch_3.pth"
    (tmp_path / "epoch_3.pth").unlink()
    assert _last_good_checkpoint(tmp_path) is None


def test_evaluators_give_per_class_ap(tmp_path):
    cfg = mmyolo("yolov8_n")
    mmcfg.set_evaluator(cfg.val_evaluator, tmp_path / "v.json", "bbox")
    assert cfg.val_evaluator.classwise is True and cfg.val_evaluator.ann_file == str(tmp_path / "v.json")


def test_iteration_schedules_are_stretched_to_max_iters():
    from ymir_seginone.models import MODELS as SEG_MODELS
    from ymir_seginone.models import config_dir as mmseg_configs

    cfg = mmcfg.load_config(mmseg_configs() / SEG_MODELS["fcn_hr18s_80k"])
    assert mmcfg.is_iter_based(cfg) and not mmcfg.is_iter_based(yolox_tiny())
    mmcfg.set_max_iters(cfg, 400)
    assert cfg.train_cfg.max_iters == 400
    assert (cfg.param_scheduler[0].begin, cfg.param_scheduler[0].end) == (0, 400)  # PolyLR over 80k iterations
