"""The YOLOv5-seg predictor's pooled features: the detection predictor's checks (test_yolov5_features.py
in tests/yolov5) on a random YOLOv5n-seg, masks unchanged too."""

from __future__ import annotations

import numpy as np
import torch
from seglayer import CLASSES, seg_checkpoint

from ymir_base.data.images import read_image
from ymir_base.prediction import FEATURES
from ymir_base.sample.generator import generate


def test_segment_features(tmp_path):
    from yolov5.models.common import SPPF

    from ymir_yolov5lib.segment_predictor import Yolov5SegPredictor

    weights = seg_checkpoint(tmp_path / "best")
    model = Yolov5SegPredictor(weights, device=torch.device("cpu"), img_size=96, conf_thres=0.25, iou_thres=0.45,
                               batch_size=4, class_names=CLASSES)
    in_dir = generate(tmp_path / "in", task="infer", object_type="instance", fmt="coco", images=4)
    images = [read_image(in_dir / c.removeprefix("/in/")) for c in (in_dir / "candidate-index.tsv").read_text().split()]
    assert isinstance(model.feature_layers[-1], SPPF) and FEATURES in model.capabilities
    plain = model.predict(images)
    ours = model.predict(images, want=frozenset({FEATURES}))
    assert sum(len(p) for p in plain) > 0
    for a, b in zip(plain, ours, strict=True):
        assert a.features is None and b.features.shape == (448,) and b.features.dtype == np.float32
        np.testing.assert_array_equal(a.boxes, b.boxes)
        np.testing.assert_array_equal(a.scores, b.scores)
        assert [m["counts"] for m in a.masks] == [m["counts"] for m in b.masks]
    again = model.predict(images, want=frozenset({FEATURES}))
    assert all(np.array_equal(a.features, b.features) for a, b in zip(ours, again, strict=True))
    scale = float(np.abs(ours[1].features).max())
    assert scale > 1e-3  # a signal, not rounding noise
    alone = model.predict(images[1:2], want=frozenset({FEATURES}))[0]
    np.testing.assert_allclose(alone.features, ours[1].features, rtol=0, atol=1e-4 * scale)
    assert np.abs(ours[0].features - ours[1].features).max() > 1e-2 * scale
    assert not any(layer._forward_hooks for layer in model.feature_layers)
