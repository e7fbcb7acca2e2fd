"""The YOLOv5-seg predictor's outputs for the instance miners: soft masks, their boxes and class
vectors (MASK_PROBS, CLASS_PROBS), Monte-Carlo DropBlock passes (predict_stochastic), and apis and
maskAL through the engine's mining path."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from pycocotools import mask as mask_utils
from seglayer import CLASSES, run_infer, seg_checkpoint, seg_task

from ymir_base.data.images import read_image
from ymir_base.mining._common import box_pixels
from ymir_base.prediction import CLASS_PROBS, MASK_PROBS, Prediction
from ymir_base.sample.generator import generate
from ymir_base.verify.checks import check_mining_result

SOFT = frozenset({MASK_PROBS, CLASS_PROBS})


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> Path:
    return seg_checkpoint(tmp_path_factory.mktemp("seg-mc-weights") / "best")


@pytest.fixture(scope="module")
def images(tmp_path_factory) -> list[np.ndarray]:
    in_dir = generate(tmp_path_factory.mktemp("seg-mc-in") / "in", task="infer", object_type="instance",
                      fmt="coco", images=4)
    lines = (in_dir / "candidate-index.tsv").read_text().split()
    return [read_image(in_dir / line.removeprefix("/in/")) for line in lines]


def predictor(weights: Path, **kwargs):
    from ymir_yolov5lib.segment_predictor import Yolov5SegPredictor

    settings = {"device": torch.device("cpu"), "img_size": 96, "conf_thres": 0.4, "iou_thres": 0.45,
                "batch_size": 4, "class_names": CLASSES} | kwargs
    return Yolov5SegPredictor(weights, **settings)


def same(a: Prediction, b: Prediction) -> bool:
    """The same detections, soft outputs included when both have them."""
    if not (np.array_equal(a.boxes, b.boxes) and np.array_equal(a.scores, b.scores)
            and np.array_equal(a.class_ids, b.class_ids)):
        return False
    if a.mask_probs is not None and b.mask_probs is not None:
        return torch.equal(a.mask_probs, b.mask_probs) and np.array_equal(a.class_probs, b.class_probs)
    return True


def test_soft_outputs_describe_the_same_detections(checkpoint, images):
    from yolov5.utils.general import scale_boxes

    model = predictor(checkpoint)
    plain = model.predict(images)
    soft = model.predict(images, want=SOFT)
    checked = agree = total = 0
    for image, p, s in zip(images, plain, soft, strict=True):
        # asking for soft outputs changes nothing else, RLE masks included
        assert same(p, s) and list(p.masks) == list(s.masks) and p.mask_probs is None and p.class_probs is None
        n = len(s)
        assert s.input_size == (96, 96)
        assert tuple(s.mask_probs.shape) == (n, 24, 24) and s.mask_probs.dtype == torch.float32
        assert tuple(s.mask_boxes.shape) == (n, 4) and s.class_probs.shape == (n, len(CLASSES))
        if not n:
            continue
        assert (s.class_probs.argmax(axis=1) == s.class_ids).all()
        assert (s.class_probs.max(axis=1) >= s.scores - 1e-6).all()  # score = objectness x class sigmoid
        # the grid boxes are the image boxes: x4 back to the input, then scaled as the boxes were
        back = scale_boxes((96, 96), s.mask_boxes.clone() * 4, image.shape[:2]).numpy()
        np.testing.assert_allclose(back, s.boxes, atol=1e-3)
        # in the box, p > 0.5 on the grid is the RLE mask sampled at the grid pixels' centres
        h, w = image.shape[:2]
        gain = min(96 / h, 96 / w)
        pad_x, pad_y = (96 - w * gain) / 2, (96 - h * gain) / 2
        centres = (np.arange(24) + 0.5) * 4
        rows = np.clip(((centres - pad_y) / gain).astype(int), 0, h - 1)
        cols = np.clip(((centres - pad_x) / gain).astype(int), 0, w - 1)
        inside = box_pixels(s.mask_boxes, 24, 24).numpy()
        ours = s.mask_probs.numpy() > 0.5
        for i, rle in enumerate(s.masks):
            theirs = mask_utils.decode({"size": rle["size"], "counts": rle["counts"].encode()})[np.ix_(rows, cols)]
            agree += int((ours[i] == theirs.astype(bool))[inside[i]].sum())
            total += int(inside[i].sum())
            checked += 1
    assert checked >= 10
    assert agree / total > 0.95


def test_soft_outputs_are_the_surviving_anchors_own(checkpoint, images):
    """Each detection's class_probs and mask_probs are those of the anchor row of the head's
    output it comes from (found by its box): class sigmoids and sigmoid(raw coefficients x
    prototypes), i.e. free of the objectness factor yolov5's NMS puts on carried columns."""
    from yolov5.utils.general import xywh2xyxy

    model = predictor(checkpoint)
    checked = 0
    for image in images:
        x, _ = model._preprocess([image], model._shape(image))
        with torch.inference_mode():
            decoded, protos = model.model(x)[:2]
        rows, protos = decoded[0].float(), protos[0].float()
        anchor_boxes = xywh2xyxy(rows[:, :4])  # the grid boxes are these, clipped to the input
        anchor_boxes[:, 0::2] = anchor_boxes[:, 0::2].clamp(0, x.shape[3])
        anchor_boxes[:, 1::2] = anchor_boxes[:, 1::2].clamp(0, x.shape[2])
        pred = model.predict([image], want=SOFT)[0]
        input_boxes = pred.mask_boxes * 4
        for i in range(len(pred)):
            r = int((anchor_boxes - input_boxes[i]).abs().sum(dim=1).argmin())
            np.testing.assert_allclose(anchor_boxes[r], input_boxes[i], atol=1e-3)
            np.testing.assert_allclose(pred.class_probs[i], rows[r, 5:5 + len(CLASSES)], rtol=1e-4, atol=1e-6)
            assert pred.scores[i] == pytest.approx(float(rows[r, 4] * rows[r, 5 + pred.class_ids[i]]), rel=1e-4)
            expected = (rows[r, 5 + len(CLASSES):] @ protos.reshape(32, -1)).sigmoid().reshape(protos.shape[1:])
            torch.testing.assert_close(pred.mask_probs[i], expected, atol=1e-4, rtol=1e-4)
            checked += 1
    assert checked >= 10


def test_stochastic_passes_are_seeded_and_leave_the_model_as_it_was(checkpoint, images):
    model = predictor(checkpoint)
    before = model.predict(images)
    rng_state = torch.get_rng_state()
    first = model.predict_stochastic(images, iterations=3, seed=5)
    assert [len(passes) for passes in first] == [3] * len(images)
    assert all(p.mask_probs is not None and p.class_probs is not None and p.masks is None
               for passes in first for p in passes)
    again = model.predict_stochastic(images, iterations=3, seed=5)
    assert all(same(a, b) for x, y in zip(first, again, strict=True) for a, b in zip(x, y, strict=True))
    other = model.predict_stochastic(images, iterations=3, seed=6)
    assert not all(same(a, b) for x, y in zip(first, other, strict=True) for a, b in zip(x, y, strict=True))
    # the noise is on: the passes differ from the plain prediction and from each other
    assert not all(same(p, b) for passes, b in zip(first, before, strict=True) for p in passes)
    # no hook left behind, the global random state untouched, plain prediction as before
    assert not any(module._forward_hooks for module in model.model.modules())
    assert torch.equal(torch.get_rng_state(), rng_state)
    assert all(same(a, b) for a, b in zip(before, model.predict(images), strict=True))


def test_stochastic_passes_do_not_depend_on_grouping_or_batch_size(checkpoint, images):
    together = predictor(checkpoint, batch_size=8).predict_stochastic(images[:3], iterations=3, seed=10)
    # image 2 alone, with the seed it had as the third image; forwards of 2 passes
    alone = predictor(checkpoint, batch_size=2).predict_stochastic(images[2:3], iterations=3, seed=12)[0]
    for a, b in zip(together[2], alone, strict=True):
        assert len(a) == len(b)
        np.testing.assert_allclose(a.scores, b.scores, atol=1e-5)
        np.testing.assert_allclose(a.boxes, b.boxes, atol=1e-3)


@pytest.mark.parametrize(("algorithm", "task"), [("apis", "mining"), ("maskAL", "mining"),
                                                 ("maskAL", "mining+infer")])
def test_instance_miners_score_every_candidate_through_the_engine(tmp_path, checkpoint, monkeypatch, algorithm,
                                                                  task):
    from ymir_yolov5lib.segment_predictor import Yolov5SegPredictor

    plain_calls: list[int] = []
    original = Yolov5SegPredictor.predict

    def counting(self, images, *, want=frozenset()):
        plain_calls.append(len(images))
        return original(self, images, want=want)

    monkeypatch.setattr(Yolov5SegPredictor, "predict", counting)
    ctx, in_dir, out_dir = seg_task(tmp_path, task, images=4, models={"best": checkpoint.parent},
                                    overrides={"mining_algorithm": algorithm, "img_size": 64, "conf_thres": 0.4,
                                               "batch_size_per_gpu": 4, "mcd_iterations": 2})
    run_infer(ctx)
    candidates = (in_dir / "candidate-index.tsv").read_text().split()
    assert check_mining_result(out_dir / "result.tsv", candidates) == []
    scores = [float(line.split("\t")[1]) for line in (out_dir / "result.tsv").read_text().splitlines()]
    assert all(np.isfinite(scores)) and len(set(scores)) > 1
    if algorithm == "maskAL":
        assert all(0.0 <= s <= 1.0 for s in scores)
    # maskAL runs only its stochastic passes unless the task also infers
    assert bool(plain_calls) == (algorithm == "apis" or "infer" in task)
    assert (out_dir / "infer-result.json").is_file() == ("infer" in task)
