"""The seg-in-one predictor: parity with mmseg's own inference, batching, the blank class and the
``semantic_probs`` of the mining contract."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch
from _seg_helpers import CLASSES, random_package
from mmengine.config import Config

from ymir_base.prediction import SEMANTIC_PROBS
from ymir_base.sample.generator import generate
from ymir_seginone.predictor import MAX_PROBS_SIDE, SemanticPredictor


@pytest.fixture(scope="module")
def package(tmp_path_factory):
    return random_package(tmp_path_factory.mktemp("seg-random") / "best")


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    """Six sample images, 160x128 and 128x160 alternately (BGR as cv2 reads them)."""
    in_dir = generate(tmp_path_factory.mktemp("seg-images") / "in", task="infer", object_type="semantic",
                      fmt="coco", images=6)
    paths = [line for line in (in_dir / "candidate-index.tsv").read_text().split()]
    return [cv2.imread(str(in_dir / p.removeprefix("/in/"))) for p in paths]


def predictor(package, batch_size: int, **kwargs) -> SemanticPredictor:
    cfg = Config.fromfile(str(package / "config.py"))
    return SemanticPredictor(cfg, package / "best.pth", device=torch.device("cpu"), batch_size=batch_size, **kwargs)


def mmseg_label_maps(package, images) -> list[np.ndarray]:
    """mmseg.apis.inference_model one image at a time (its batches must share one size), the
    blank class as -1."""
    from mmseg.apis import inference_model, init_model

    model = init_model(str(package / "config.py"), str(package / "best.pth"), device="cpu")
    maps = []
    for img in images:
        labels = inference_model(model, img).pred_sem_seg.data[0].numpy().astype(np.int32)
        labels[labels == len(CLASSES)] = -1
        maps.append(labels)
    return maps


def test_label_maps_equal_mmsegs_inference_model(package, images):
    reference = mmseg_label_maps(package, images)
    ours = predictor(package, batch_size=1).predict([img[..., ::-1] for img in images])
    for pred, ref, img in zip(ours, reference, images, strict=True):
        assert pred.image_size == img.shape[:2] and pred.label_map.shape == img.shape[:2]
        np.testing.assert_array_equal(pred.label_map, ref)
    values = np.unique(np.concatenate([p.label_map.ravel() for p in ours]))
    assert set(values) == {-1, 0, 1, 2}  # every class and the blank one occur: the comparison means something


def test_batches_of_mixed_sizes_give_the_single_image_results(package, images):
    single = predictor(package, batch_size=1).predict([img[..., ::-1] for img in images])
    batched = predictor(package, batch_size=4).predict([img[..., ::-1] for img in images])
    for a, b in zip(single, batched, strict=True):
        assert a.image_size == b.image_size
        assert (a.label_map != b.label_map).mean() < 1e-3  # float sums of another batch shape


def test_semantic_probs_follow_the_mining_contract(package, images):
    rgb = [img[..., ::-1] for img in images[:2]]
    plain = predictor(package, batch_size=2).predict(rgb)
    assert all(p.semantic_probs is None for p in plain)
    preds = predictor(package, batch_size=2).predict(rgb, want=frozenset({SEMANTIC_PROBS}))
    for pred, img in zip(preds, rgb, strict=True):
        probs = pred.semantic_probs
        height, width = img.shape[:2]
        assert probs.dtype == np.float32 and probs.shape[0] == len(CLASSES) + 1  # the blank channel too
        assert probs.shape[1] <= height and probs.shape[2] <= width
        assert abs(probs.shape[1] / probs.shape[2] - height / width) < 0.05
        np.testing.assert_allclose(probs.sum(axis=0), 1.0, atol=1e-5)
        # the arg-max of the probabilities is the label map, seen at the probabilities' size
        small = cv2.resize(pred.label_map.astype(np.float32), probs.shape[:0:-1], interpolation=cv2.INTER_NEAREST)
        argmax = probs.argmax(axis=0)
        argmax[argmax == len(CLASSES)] = -1
        assert (argmax == small).mean() > 0.9


def test_semantic_probs_of_a_big_image_are_capped(package):
    big = np.random.default_rng(0).integers(0, 255, (1200, 1500, 3), np.uint8)
    pred = predictor(package, batch_size=1).predict([big], want=frozenset({SEMANTIC_PROBS}))[0]
    assert pred.label_map.shape == (1200, 1500)
    # the model's logits are at its test scale (128 px long side) here: never above them
    assert max(pred.semantic_probs.shape[1:]) <= min(MAX_PROBS_SIDE, 128)


def test_without_a_blank_class_every_pixel_gets_a_project_class(tmp_path, images):
    package = random_package(tmp_path / "ignore", ignore_blank=True)
    pred = predictor(package, batch_size=2).predict([images[0][..., ::-1]], want=frozenset({SEMANTIC_PROBS}))[0]
    assert pred.label_map.min() >= 0 and pred.semantic_probs.shape[0] == len(CLASSES)


def test_class_names_come_from_the_task_when_they_fit(package):
    assert predictor(package, 1, class_names=["a", "b", "c"]).class_names == ["a", "b", "c"]
    assert predictor(package, 1, class_names=["a", "b"]).class_names == CLASSES
