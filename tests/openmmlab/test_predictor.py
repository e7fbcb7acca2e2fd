"""Our batched predictor against the library's own inference API, and its dense maps."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch

from ymir_openmmlab.predictor import OpenMMLabPredictor, dense_maps, model_config

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


def _rows(boxes, scores, labels, k=15):
    order = np.argsort(-scores, kind="stable")[:k]
    return boxes[order], scores[order], labels[order]


@pytest.mark.parametrize("fixture", ["mmdet_model", "mmyolo_model"])
def test_boxes_match_the_library_inference_api(request, tmp_path, fixture):
    from mmdet.apis import inference_detector, init_detector

    stage = request.getfixturevalue(fixture)
    # a briefly trained model scores near its prior (YOLOX: 0.01 x 0.01): keep every box on both sides
    thr = 1e-6
    cfg = model_config(stage / "best.pth", [])
    cfg.model.test_cfg.score_thr = thr
    paths = _images(tmp_path)
    reference = inference_detector(init_detector(cfg.copy(), str(stage / "best.pth"), device="cpu"),
                                   [str(p) for p in paths])
    ours = OpenMMLabPredictor(cfg, stage / "best.pth", device=torch.device("cpu"), conf_threshold=thr,
                              batch_size=3).predict([cv2.imread(str(p))[..., ::-1] for p in paths])
    assert len(ours) == len(paths)
    compared = 0
    for pred, ref in zip(ours, reference, strict=True):
        inst = ref.pred_instances
        h, w = pred.image_size
        rb = inst.bboxes.numpy().copy()
        rb[:, 0::2], rb[:, 1::2] = rb[:, 0::2].clip(0, w), rb[:, 1::2].clip(0, h)
        rs, rl = inst.scores.numpy(), inst.labels.numpy()
        # batched vs single-image numerics may flip a box at the NMS or threshold boundary
        assert abs(len(pred.scores) - len(rs)) <= max(2, len(rs) // 50)
        for box, score, label in zip(*_rows(pred.boxes, pred.scores, pred.class_ids), strict=True):
            same = (rl == label) & (np.abs(rs - score) < 1e-4) & (np.abs(rb - box).max(axis=1) < 1e-2)
            assert same.any(), f"our box {box} {score} {label} is not among the library's"
            compared += 1
    assert compared > 0  # the comparison saw boxes


def test_dense_maps_are_per_level_class_probabilities(mmyolo_model):
    cfg = model_config(mmyolo_model / "best.pth", [])
    predictor = OpenMMLabPredictor(cfg, mmyolo_model / "best.pth", device=torch.device("cpu"),
                                   conf_threshold=0.001, batch_size=2)
    preds = predictor.predict([np.zeros((90, 120, 3), np.uint8), np.zeros((60, 60, 3), np.uint8)], dense=True)
    for pred in preds:
        assert pred.input_size == (96, 96)
        assert [tuple(m.shape) for m in pred.dense_class_probs] == [(1, 3, 12, 12), (1, 3, 6, 6), (1, 3, 3, 3)]
        assert all(0 <= float(m.min()) and float(m.max()) <= 1 for m in pred.dense_class_probs)
    assert predictor.class_names == ["circle", "square", "triangle"]


def test_dense_maps_multiply_anchor_objectness():
    cls = [torch.zeros(1, 2 * 3, 4, 4)]  # 2 anchors x 3 classes, logits 0 -> 0.5
    obj = [torch.full((1, 2, 4, 4), 100.0)]  # objectness logit large -> 1
    obj[0][:, 1] = -100.0  # second anchor: no object
    (maps,) = dense_maps((cls, [None], obj), num_classes=3)
    assert maps.shape == (1, 2, 3, 4, 4)
    assert torch.allclose(maps[:, 0], torch.full_like(maps[:, 0], 0.5))
    assert torch.allclose(maps[:, 1], torch.zeros_like(maps[:, 1]))
