"""Our batched predictor against the library's own inference API, and its dense maps."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch

from ymir_base.prediction import DENSE_CLASS_PROBS
from ymir_openmmlab.heads import HeadAdapter, adapter_for
from ymir_openmmlab.predictor import OpenMMLabPredictor, model_config

pytestmark = pytest.mark.slow


def _images(tmp_path, sizes=((120, 160), (140, 100), (96, 96))):
    rng = np.random.default_rng(0)
    paths = []
    for i, (h, w) in enumerate(sizes):
        img = np.full((h, w, 3), 200, np.uint8)
        for _ in range(3):
            x, y = int(rng.integers(0, w - 30)), int(rng.integers(0, h - 30))
            cv2.rectangle(img, (x, y), (x + 25, y + 25), tuple(int(c) for c in rng.integers(0, 255, 3)), -1)
        path = tmp_path / f"img{i}.png"
        cv2.imwrite(str(path), img)
        paths.append(path)
    return paths


def _flat(outs):
    """The head's raw outputs (tuples of per-level tensors, some None) as one list of tensors."""
    if isinstance(outs, torch.Tensor):
        return [outs]
    return [t for item in (outs or []) for t in _flat(item)]


def _meta(meta: dict) -> dict:
    """Meta info as plain lists, without the position in the batch."""
    return {k: np.asarray(v).tolist() for k, v in meta.items() if k != "img_id"}


@pytest.mark.parametrize("fixture", ["mmdet_model", "mmyolo_model"])
def test_one_image_at_a_time_gives_exactly_the_library_inference(request, tmp_path, fixture):
    """Batch 1 runs the very operations of mmdet's ``inference_detector`` on the same input, so
    every box, score and label must be equal, ties and all; any threshold works."""
    from mmdet.apis import inference_detector, init_detector

    stage = request.getfixturevalue(fixture)
    thr = 1e-6  # a briefly trained model scores near its prior: keep every box on both sides
    cfg = model_config(stage / "best.pth", [])
    cfg.model.test_cfg.score_thr = thr
    paths = _images(tmp_path)
    reference = inference_detector(init_detector(cfg.copy(), str(stage / "best.pth"), device="cpu"),
                                   [str(p) for p in paths])
    ours = OpenMMLabPredictor(cfg, stage / "best.pth", device=torch.device("cpu"), conf_threshold=thr,
                              batch_size=1).predict([cv2.imread(str(p))[..., ::-1] for p in paths])
    assert len(ours) == len(paths)
    for pred, ref in zip(ours, reference, strict=True):
        inst = ref.pred_instances
        h, w = pred.image_size
        boxes = inst.bboxes.numpy().copy()
        boxes[:, 0::2], boxes[:, 1::2] = boxes[:, 0::2].clip(0, w), boxes[:, 1::2].clip(0, h)
        assert len(pred) == len(inst.scores) > 0
        np.testing.assert_array_equal(pred.class_ids, inst.labels.numpy())
        np.testing.assert_allclose(pred.scores, inst.scores.numpy(), rtol=0, atol=1e-6)
        np.testing.assert_allclose(pred.boxes, boxes, rtol=0, atol=1e-3)


@pytest.mark.parametrize("fixture", ["mmdet_model", "mmyolo_model"])
def test_a_batch_gives_each_image_its_own_input_and_head_outputs(request, tmp_path, fixture):
    """Batching changes nothing but float rounding: each image's preprocessed input and meta info
    (scale, padding) are those of a batch of one, and the head's raw outputs agree closely. The
    boxes follow from these through the head's own decoding (compared exactly above)."""
    stage = request.getfixturevalue(fixture)
    cfg = model_config(stage / "best.pth", [])
    predictor = OpenMMLabPredictor(cfg, stage / "best.pth", device=torch.device("cpu"), conf_threshold=0.01,
                                   batch_size=3)
    images = [cv2.imread(str(p))[..., ::-1] for p in _images(tmp_path)]
    with torch.inference_mode():
        inputs, metas, outs = predictor.network_outputs(images)
        for i, image in enumerate(images):
            one_input, (one_meta,), one_outs = predictor.network_outputs([image])
            assert torch.equal(inputs[i], one_input[0])
            assert _meta(metas[i]) == _meta(one_meta)
            batched, single = _flat(outs), _flat(one_outs)
            assert len(batched) == len(single) > 0
            for b, s in zip(batched, single, strict=True):
                torch.testing.assert_close(b[i], s[0], rtol=1e-4, atol=1e-4)


def test_dense_maps_are_per_level_class_probabilities(mmyolo_model):
    cfg = model_config(mmyolo_model / "best.pth", [])
    predictor = OpenMMLabPredictor(cfg, mmyolo_model / "best.pth", device=torch.device("cpu"),
                                   conf_threshold=0.001, batch_size=2)
    preds = predictor.predict([np.zeros((90, 120, 3), np.uint8), np.zeros((60, 60, 3), np.uint8)],
                              want=frozenset({DENSE_CLASS_PROBS}))
    for pred in preds:
        assert pred.input_size == (96, 96)
        assert [tuple(m.shape) for m in pred.dense_class_probs] == [(1, 3, 12, 12), (1, 3, 6, 6), (1, 3, 3, 3)]
        assert all(0 <= float(m.min()) and float(m.max()) <= 1 for m in pred.dense_class_probs)
    assert predictor.class_names == ["circle", "square", "triangle"]


def test_dense_maps_multiply_anchor_objectness():
    cls = [torch.zeros(1, 2 * 3, 4, 4)]  # 2 anchors x 3 classes, logits 0 -> 0.5
    obj = [torch.full((1, 2, 4, 4), 100.0)]  # objectness logit large -> 1
    obj[0][:, 1] = -100.0  # second anchor: no object
    (maps,) = HeadAdapter(objectness=2).class_maps((cls, [None], obj), num_classes=3)
    assert maps.shape == (1, 2, 3, 4, 4)
    assert torch.allclose(maps[:, 0], torch.full_like(maps[:, 0], 0.5))
    assert torch.allclose(maps[:, 1], torch.zeros_like(maps[:, 1]))


def test_heads_are_matched_by_class_so_angles_are_never_objectness():
    from mmdet.models.dense_heads import RTMDetHead, YOLOXHead

    class RotatedRTMDetHead(RTMDetHead):  # stands for mmrotate's head of that name
        pass

    class MyYOLOX(YOLOXHead):  # a subclass gets its parent's adapter
        pass

    assert adapter_for(RotatedRTMDetHead.__new__(RotatedRTMDetHead)).objectness is None
    assert adapter_for(MyYOLOX.__new__(MyYOLOX)).objectness == 2
    assert adapter_for(RTMDetHead.__new__(RTMDetHead)).objectness is None
    cls = [torch.zeros(1, 3, 2, 2)]
    angles = [torch.full((1, 1, 2, 2), -100.0)]  # would zero the maps if taken for objectness
    (maps,) = adapter_for(RotatedRTMDetHead.__new__(RotatedRTMDetHead)).class_maps(
        (cls, [None], angles), num_classes=3)
    assert torch.allclose(maps, torch.full_like(maps, 0.5))


@pytest.mark.parametrize(("module", "head", "objectness"), [
    ("mmdet", "YOLOXHead", 2), ("mmyolo", "YOLOXHead", 2), ("mmyolo", "YOLOv5Head", 2), ("mmyolo", "YOLOv7Head", 2),
    ("mmyolo", "YOLOv6Head", None), ("mmyolo", "YOLOv8Head", None), ("mmyolo", "PPYOLOEHead", None),
    ("mmyolo", "RTMDetHead", None), ("mmyolo", "RTMDetRotatedHead", None), ("mmdet", "RTMDetHead", None),
])
def test_every_head_of_our_model_tables_gets_the_right_adapter(module, head, objectness):
    """mmyolo derives all its heads from YOLOv5Head: only YOLOv5/v7/X have objectness maps."""
    import importlib

    cls = getattr(importlib.import_module(f"{module}.models.dense_heads"), head)
    assert adapter_for(cls.__new__(cls)).objectness == objectness


def test_a_wrong_adapter_fails_clearly():
    with pytest.raises(ValueError, match="without objectness at index 2"):
        HeadAdapter(objectness=2).class_maps(([torch.zeros(1, 3, 2, 2)], [None]), num_classes=3)
