"""The seg-in-one semantic predictor's pooled features (``want=FEATURES``): the backbone's last
output averaged per image, from the same pass, in whole-image and sliding-window inference, with
the label maps unchanged."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from _seg_helpers import random_package
from mmengine.config import Config

from ymir_base.prediction import FEATURES
from ymir_base.sample.generator import generate
from ymir_seginone.predictor import SemanticPredictor


@pytest.fixture(scope="module")
def package(tmp_path_factory):
    return random_package(tmp_path_factory.mktemp("seg-features") / "best")


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    """Four sample images, 160x128 and 128x160 alternately (RGB)."""
    from ymir_base.data.images import read_image

    in_dir = generate(tmp_path_factory.mktemp("seg-features-images") / "in", task="infer", object_type="semantic",
                      fmt="coco", images=4)
    return [read_image(in_dir / p.removeprefix("/in/")) for p in (in_dir / "candidate-index.tsv").read_text().split()]


@pytest.mark.parametrize("mode", ["whole", "slide"])
def test_features_come_from_the_same_pass(package, images, mode):
    cfg = Config.fromfile(str(package / "config.py"))
    if mode == "slide":
        cfg.model.test_cfg = {"mode": "slide", "crop_size": (64, 64), "stride": (48, 48)}
    model = SemanticPredictor(cfg, package / "best.pth", device=torch.device("cpu"), batch_size=4)
    assert FEATURES in model.capabilities
    plain = model.predict(images)
    ours = model.predict(images, want=frozenset({FEATURES}))
    width = int(cfg.model.backbone.fusion_out_channels)  # FastSCNN's last output: the fusion module
    for a, b in zip(plain, ours, strict=True):
        assert a.features is None and b.features.shape == (width,) and b.features.dtype == np.float32
        np.testing.assert_array_equal(a.label_map, b.label_map)
    again = model.predict(images, want=frozenset({FEATURES}))
    assert all(np.array_equal(a.features, b.features) for a, b in zip(ours, again, strict=True))
    scale = float(np.abs(ours[1].features).max())
    assert scale > 1e-4  # a signal, not rounding noise
    alone = model.predict(images[1:2], want=frozenset({FEATURES}))[0]
    np.testing.assert_allclose(alone.features, ours[1].features, rtol=0, atol=1e-4 * scale)
    assert np.abs(ours[0].features - ours[2].features).max() > 1e-2 * scale
    assert not model.model.backbone._forward_hooks
