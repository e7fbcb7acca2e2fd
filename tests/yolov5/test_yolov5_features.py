"""The YOLOv5 predictors' pooled features (``want=FEATURES``, the diversity re-ranking's input):
the last backbone layer's output averaged per image, from the same pass, with the detections
unchanged and no hook left behind."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ymir_base.data.images import read_image
from ymir_base.prediction import FEATURES
from ymir_base.sample.generator import generate


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    """A random-init YOLOv5n whose batch norms hold the statistics of one batch of noise: with
    fresh ones (mean 0, variance 1) every layer shrinks the signal, down to ~1e-9 at the SPPF."""
    from ymir_yolov5lib import models, runtime

    runtime.prepare()
    from yolov5.models.yolo import Model

    torch.manual_seed(0)
    model = Model(str(models.model_yaml("yolov5n")), ch=3, nc=3)
    for module in model.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.reset_running_stats()
            module.momentum = None  # the running statistics become this batch's
    with torch.no_grad():
        model.train()(torch.rand(8, 3, 96, 96))
    model.eval().names = {0: "circle", 1: "square", 2: "triangle"}
    path = tmp_path_factory.mktemp("features-weights") / "best.pt"
    torch.save({"model": model, "epoch": -1}, path)
    return path


@pytest.fixture(scope="module")
def images(tmp_path_factory) -> list[np.ndarray]:
    """Five sample images of mixed sizes, plus a smaller copy of the first (another shape)."""
    in_dir = generate(tmp_path_factory.mktemp("features") / "in", task="infer", object_type="detection",
                      fmt="ark", images=5)
    found = [read_image(in_dir / c.removeprefix("/in/")) for c in (in_dir / "candidate-index.tsv").read_text().split()]
    return [*found, np.ascontiguousarray(found[0][::2, ::2])]


def predictor(weights, cls_path: str = "ymir_yolov5lib.predictor:Yolov5Predictor", **kwargs):
    module, name = cls_path.split(":")
    cls = getattr(__import__(module, fromlist=[name]), name)
    settings = {"device": torch.device("cpu"), "img_size": 96, "conf_thres": 0.001, "iou_thres": 0.45,
                "batch_size": 4} | kwargs
    return cls(weights, **settings)


def check_features(model, images: list[np.ndarray], width: int) -> None:
    """Shape [width], float32, deterministic, batch-independent, detections unchanged, hooks gone."""
    from yolov5.models.common import SPPF

    assert isinstance(model.feature_layers[-1], SPPF) and FEATURES in model.capabilities
    assert len(model.feature_layers) == 3  # P3, P4 and P5 (SPPF)
    plain = model.predict(images)
    with_features = model.predict(images, want=frozenset({FEATURES}))
    assert all(p.features is None for p in plain)
    assert sum(len(p) for p in plain) > 0
    for a, b in zip(plain, with_features, strict=True):
        np.testing.assert_array_equal(a.boxes, b.boxes)
        np.testing.assert_array_equal(a.scores, b.scores)
        np.testing.assert_array_equal(a.class_ids, b.class_ids)
        assert b.features.shape == (width,) and b.features.dtype == np.float32
        assert np.all(np.isfinite(b.features))
        assert np.linalg.norm(b.features[-256:]) == pytest.approx(1.0, abs=1e-5)  # each level unit length
    again = model.predict(images, want=frozenset({FEATURES}))
    assert all(np.array_equal(a.features, b.features) for a, b in zip(with_features, again, strict=True))
    scale = float(np.abs(with_features[2].features).max())
    assert scale > 1e-3  # a signal, not rounding noise
    alone = model.predict(images[2:3], want=frozenset({FEATURES}))[0]
    np.testing.assert_allclose(alone.features, with_features[2].features, rtol=0, atol=1e-4 * scale)
    assert np.abs(with_features[0].features - with_features[1].features).max() > 1e-2 * scale
    assert not any(layer._forward_hooks for layer in model.feature_layers)  # hooks live only during the pass


def test_detection_features(checkpoint, images):
    check_features(predictor(checkpoint), images, width=448)  # yolov5n: P3 64 + P4 128 + SPPF 256


def test_a_model_without_its_architecture_description_offers_no_features(checkpoint):
    from ymir_yolov5lib.predictor import feature_layers

    model = predictor(checkpoint).model
    assert [type(layer).__name__ for layer in feature_layers(model)] == ["C3", "C3", "SPPF"]
    del model.yaml
    assert feature_layers(model) == []


def test_the_yolov5_image_mines_with_diversity(sample, checkpoint):
    """Through the image: random with diversity loads the model for its features and re-ranks the
    best candidates, the scores' multiset and every candidate kept."""
    from ymir_base.engine.task import run_task
    from ymir_base.verify.checks import check_mining_result

    in_dir, out_dir = sample("mining", models={"best": checkpoint.parent}, images=8)
    settings = {"mining_algorithm": "random", "img_size": 64}
    assert run_task("yolov5", in_dir, out_dir.parent / "plain", settings) == 0
    assert run_task("yolov5", in_dir, out_dir, {**settings, "diversity": 10.0, "diversity_pool": 6}) == 0
    candidates = (in_dir / "candidate-index.tsv").read_text().split()
    assert check_mining_result(out_dir / "result.tsv", candidates) == []

    def rows(folder):
        return [line.split("\t") for line in (folder / "result.tsv").read_text().splitlines()]

    plain, diverse = rows(out_dir.parent / "plain"), rows(out_dir)
    assert [s for _, s in diverse] == [s for _, s in plain]
    assert diverse[6:] == plain[6:] and diverse[0] == plain[0]
    assert [a for a, _ in diverse[:6]] != [a for a, _ in plain[:6]]  # weight 10: the order follows the features
