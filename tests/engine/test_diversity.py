"""The engine's diversity re-ranking: features from the one prediction pass, the best candidates
re-ranked in result.tsv (the rest untouched), the same result from two ranks' shards, and the
configuration errors. A fake predictor stands for the model (features: the image's centred 8x8
thumbnail, so a near copy of an image has nearly its features)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import ClassVar

import cv2
import numpy as np
import pytest

from conftest import read_monitor
from ymir_base.data.images import read_image
from ymir_base.engine import predict
from ymir_base.engine.backend import Predictor
from ymir_base.engine.registry import backend_class, image_spec
from ymir_base.engine.task import run_task
from ymir_base.errors import ErrorCode
from ymir_base.mining.base import MiningAlgorithm, Scored
from ymir_base.mining.diversity import diverse_order
from ymir_base.prediction import BOXES, FEATURES, Prediction
from ymir_base.protocol.context import build_context
from ymir_base.protocol.paths import PathMapper

CLASSES = ["circle", "square", "triangle"]


def _vector(img: np.ndarray) -> np.ndarray:
    thumb = cv2.resize(img.mean(axis=2).astype(np.float32), (8, 8), interpolation=cv2.INTER_AREA).ravel()
    return thumb - thumb.mean()


class _FakePredictor(Predictor):
    capabilities = frozenset({BOXES, FEATURES})
    class_names = CLASSES
    batch_size = 3
    wants: ClassVar[list[frozenset[str]]] = []  # what every predict() call was asked for, in this test

    def predict(self, images, *, want=frozenset()):
        self.wants.append(frozenset(want))
        return [Prediction(img.shape[:2], features=_vector(img) if FEATURES in want else None) for img in images]


class _Brightness(MiningAlgorithm):
    """Scores an image by its mean brightness."""

    name = "brightness"
    kinds = frozenset({"detection"})
    needs = frozenset({BOXES})

    def score_batch(self, images, predictions, predictor):
        return [float(img.mean()) for img in images]


@pytest.fixture
def fake_model(monkeypatch):
    """The yolov5 image with the fake predictor; returns the list of predict() wants."""
    wants: list[frozenset[str]] = []
    monkeypatch.setattr(_FakePredictor, "wants", wants)
    monkeypatch.setattr(backend_class("yolov5"), "predictor", lambda self, ctx: _FakePredictor())
    return wants


def _brightness(monkeypatch, cls=_Brightness):
    monkeypatch.setattr("ymir_base.engine.predict.get_algorithm", lambda *a, **k: cls({}, CLASSES))


def _pool(sample, images=7, broken=False):
    """A mining /in whose brightest image has a near copy (PNG, 2 levels brighter) added as the
    last candidate; optionally an unreadable candidate too."""
    in_dir, out_dir = sample("mining", images=images)
    index = in_dir / "candidate-index.tsv"
    candidates = index.read_text().split()
    brightest = max(candidates, key=lambda c: read_image(in_dir / c.removeprefix("/in/")).mean())
    copy = read_image(in_dir / brightest.removeprefix("/in/")).astype(np.int16) + 2
    target = in_dir / "assets" / "copy.png"
    cv2.imwrite(str(target), np.clip(copy, 0, 255).astype(np.uint8)[..., ::-1])
    lines = [*candidates, "/in/assets/copy.png"]
    if broken:
        (in_dir / "assets" / "broken.jpg").write_bytes(b"not an image")
        lines.insert(1, "/in/assets/broken.jpg")
    index.chmod(0o644)
    index.write_text("".join(f"{c}\n" for c in lines))
    return in_dir, out_dir, brightest


def _rows(out_dir: Path) -> list[tuple[str, float]]:
    return [(a, float(s)) for a, s in (line.split("\t") for line in (out_dir / "result.tsv").read_text().splitlines())]


def _run(in_dir, out_dir, **settings) -> list[tuple[str, float]]:
    assert run_task("yolov5", in_dir, out_dir, {"mining_algorithm": "random", **settings}) == 0, \
        (out_dir / "monitor.txt").read_text()
    return _rows(out_dir)


def test_the_near_copy_leaves_the_top_and_the_rest_keep_their_scores(sample, monkeypatch, fake_model):
    _brightness(monkeypatch)
    in_dir, out_dir, brightest = _pool(sample, broken=True)
    plain = _run(in_dir, out_dir.parent / "plain")
    assert {a for a, _ in plain[:2]} == {brightest, "/in/assets/copy.png"}  # the pair leads by score
    assert all(FEATURES not in w for w in fake_model)
    diverse = _run(in_dir, out_dir, diversity=1.0, diversity_pool=5)
    assert all(FEATURES in w for w in fake_model[-3:])
    assert {a for a, _ in diverse[:2]} != {brightest, "/in/assets/copy.png"}  # pushed below a distinct one
    assert [s for _, s in diverse] == [s for _, s in plain]  # the same scores, still descending
    assert diverse[5:] == plain[5:]  # outside the 5 best: untouched (the unreadable one last)
    assert diverse[-1] == ("/in/assets/broken.jpg", predict.UNREADABLE_SCORE)
    # the 5 best, re-ranked as the pure function orders them from the candidates' own features
    top = [a for a, _ in plain[:5]]
    candidates = (in_dir / "candidate-index.tsv").read_text().split()
    ordered = sorted(top, key=candidates.index)  # the pure function takes them in candidate order
    images = [read_image(in_dir / a.removeprefix("/in/")) for a in ordered]
    order = diverse_order([img.mean() for img in images], np.stack([_vector(i) for i in images]), 1.0)
    assert [a for a, _ in diverse[:5]] == [ordered[i] for i in order]


def test_diversity_zero_or_a_pool_of_one_changes_nothing(sample, monkeypatch, fake_model):
    _brightness(monkeypatch)
    in_dir, out_dir, _ = _pool(sample)
    plain = _run(in_dir, out_dir.parent / "plain")
    assert _run(in_dir, out_dir.parent / "zero", diversity=0.0, diversity_pool=3) == plain
    assert _run(in_dir, out_dir, diversity=5.0, diversity_pool=1) == plain


def test_random_loads_the_model_for_the_features_alone(sample, fake_model):
    in_dir, out_dir, _ = _pool(sample)
    plain = _run(in_dir, out_dir.parent / "plain")
    assert fake_model == []  # random without diversity: no model
    diverse = _run(in_dir, out_dir, diversity=2.0)
    assert fake_model and all(w == {FEATURES} for w in fake_model)
    assert sorted(s for _, s in diverse) == sorted(s for _, s in plain)
    assert sorted(a for a, _ in diverse) == sorted(a for a, _ in plain)


def test_a_miner_that_skips_the_plain_pass_gets_it_for_the_features(sample, monkeypatch, fake_model):
    class Own(_Brightness):  # reads its own passes only, as maskAL does
        reads_predictions = False

        def score_batch(self, images, predictions, predictor):
            return [float(img.mean()) for img in images]

    _brightness(monkeypatch, Own)
    in_dir, out_dir, _ = _pool(sample)
    _run(in_dir, out_dir.parent / "plain")
    assert fake_model == []
    _run(in_dir, out_dir, diversity=1.0)
    assert fake_model and all(w == {FEATURES} for w in fake_model)


def test_two_ranks_merge_to_the_single_process_ranking(sample, monkeypatch, fake_model):
    _brightness(monkeypatch)
    in_dir, out_dir, _ = _pool(sample, images=9, broken=True)
    settings = {"mining_algorithm": "random", "diversity": 1.5, "diversity_pool": 4}
    single = _run(in_dir, out_dir.parent / "single", **settings)
    assert single != _run(in_dir, out_dir.parent / "plain", mining_algorithm="random")  # it re-ranks
    ctx = build_context(image_spec("yolov5"), PathMapper(in_dir, out_dir), overrides=settings)
    backend = backend_class("yolov5")()
    monkeypatch.setattr(predict.ranks, "world_size", lambda: 2)
    for rank in range(2):
        monkeypatch.setattr(predict.ranks, "rank", lambda rank=rank: rank)
        predict.run_prediction(ctx, backend, _Quiet())
        shard = json.loads(predict.shard_file(ctx, rank).read_text())
        assert len(shard["features"]) == 4  # each rank keeps its own best 4 with their features
    assert not (out_dir / "result.tsv").exists()
    predict.write_outputs(ctx, backend, predict.merge_shards(ctx, 2))
    assert _rows(out_dir) == single


def test_side_outputs_cover_every_candidate_the_reranking_may_lift(sample, monkeypatch, fake_model):
    class Noted(_Brightness):
        keep_side = 2

        def score_batch(self, images, predictions, predictor):
            return [Scored(float(img.mean()), "note") for img in images]

        def write_side_outputs(self, kept, out_dir):
            (Path(out_dir) / "side.json").write_text(json.dumps([a for a, _, _ in kept]))

    _brightness(monkeypatch, Noted)
    in_dir, out_dir, _ = _pool(sample)
    rows = _run(in_dir, out_dir, diversity=1.0, diversity_pool=4)
    kept = json.loads((out_dir / "side.json").read_text())
    assert len(kept) == 4 and {a for a, _ in rows[:2]} <= set(kept)


def test_a_model_without_features_is_a_config_error_naming_the_key(sample, monkeypatch, fake_model):
    monkeypatch.setattr(_FakePredictor, "capabilities", frozenset({BOXES}))
    _brightness(monkeypatch)
    in_dir, out_dir, _ = _pool(sample)
    assert run_task("yolov5", in_dir, out_dir, {"mining_algorithm": "random", "diversity": 0.5}) == 1
    state, code, text = read_monitor(out_dir)
    assert (state, code) == (4, ErrorCode.CONFIG) and "'diversity'" in text
    assert not (out_dir / "result.tsv").exists() and fake_model == []


@pytest.mark.parametrize(("key", "value"), [("diversity", -1), ("diversity", "much"), ("diversity_pool", 0)])
def test_bad_values_are_config_errors_naming_the_key(sample, fake_model, key, value):
    in_dir, out_dir = sample("mining", images=3)
    assert run_task("yolov5", in_dir, out_dir, {"mining_algorithm": "random", key: value}) == 1
    state, code, text = read_monitor(out_dir)
    assert (state, code) == (4, ErrorCode.CONFIG) and key in text
    assert not (out_dir / "result.tsv").exists()


class _Quiet:
    def progress(self, *args, **kwargs) -> None:
        pass
