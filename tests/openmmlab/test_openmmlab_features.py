"""The OpenMMLab predictor's pooled features (``want=FEATURES``): the deepest level of
``extract_feat`` averaged per image, from the same pass, with the detections unchanged."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ymir_base.data.images import read_image
from ymir_base.prediction import FEATURES
from ymir_base.sample.generator import generate
from ymir_openmmlab import config as mmcfg
from ymir_openmmlab.predictor import OpenMMLabPredictor

CLASSES = ["circle", "square", "triangle"]


@pytest.fixture(scope="module")
def random_yolox(tmp_path_factory):
    """mmdet's YOLOX-tiny for 3 classes at 96 px with seeded random weights; its batch norms hold
    the statistics of one batch of noise (fresh ones let the signal fade layer by layer)."""
    from mmdet.registry import MODELS as REGISTRY
    from mmengine.registry import init_default_scope

    from ymir_mmdet.backend import MODELS, config_dir

    folder = tmp_path_factory.mktemp("random-yolox")
    cfg = mmcfg.load_config(config_dir() / "yolox" / MODELS["yolox_tiny"])
    mmcfg.set_num_classes(cfg.model, len(CLASSES))
    mmcfg.strip_pretrained(cfg.model)
    mmcfg.resize(cfg, 96)
    init_default_scope("mmdet")
    torch.manual_seed(0)
    model = REGISTRY.build(cfg.model)
    model.init_weights()
    for module in model.modules():
        if isinstance(module, torch.nn.modules.batchnorm._BatchNorm):
            module.reset_running_stats()
            module.momentum = None  # the running statistics become this batch's
    with torch.no_grad():
        model.train().extract_feat(torch.rand(8, 3, 96, 96) * 255)
    torch.save({"state_dict": model.state_dict(), "meta": {"dataset_meta": {"classes": tuple(CLASSES)}}},
               folder / "best.pth")
    cfg.dump(str(folder / "config.py"))
    return folder


def test_features_are_the_pooled_deepest_level(random_yolox, tmp_path):
    cfg = mmcfg.load_config(random_yolox / "config.py")
    model = OpenMMLabPredictor(cfg, random_yolox / "best.pth", device=torch.device("cpu"), conf_threshold=1e-6,
                               batch_size=3)
    assert FEATURES in model.capabilities
    in_dir = generate(tmp_path / "in", task="infer", object_type="detection", fmt="ark", images=5)
    images = [read_image(in_dir / c.removeprefix("/in/")) for c in (in_dir / "candidate-index.tsv").read_text().split()]
    plain = model.predict(images)
    ours = model.predict(images, want=frozenset({FEATURES}))
    assert sum(len(p) for p in plain) > 0
    with torch.inference_mode():
        _, _, feats, _ = model._network(images[:3])
    width = sum(f.shape[1] for f in feats)  # every level
    for a, b in zip(plain, ours, strict=True):
        assert a.features is None and b.features.shape == (width,) and b.features.dtype == np.float32
        np.testing.assert_array_equal(a.boxes, b.boxes)
        np.testing.assert_array_equal(a.scores, b.scores)
        np.testing.assert_array_equal(a.class_ids, b.class_ids)
    # every level averaged over its whole map (padding included), unit length per level, in level order
    expected = []
    for f in feats:
        pooled = f.mean(dim=(2, 3)).numpy()
        expected.append(pooled / np.linalg.norm(pooled, axis=1, keepdims=True))
    np.testing.assert_allclose(np.stack([p.features for p in ours[:3]]), np.concatenate(expected, axis=1),
                               rtol=1e-4, atol=1e-6)
    again = model.predict(images, want=frozenset({FEATURES}))
    assert all(np.array_equal(a.features, b.features) for a, b in zip(ours, again, strict=True))
    scale = float(np.abs(ours[4].features).max())
    assert scale > 1e-3  # a signal, not rounding noise
    alone = model.predict(images[4:], want=frozenset({FEATURES}))[0]
    np.testing.assert_allclose(alone.features, ours[4].features, rtol=0, atol=1e-4 * scale)
    assert np.abs(ours[0].features - ours[1].features).max() > 1e-2 * scale
