"""What the infer pass keeps per candidate until the end: each image's entry as its JSON text,
not a dict per box (bench/scale.py measured the dicts at about 7 times the file's bytes, growing
with the pool). Measured with tracemalloc (deterministic), not RSS; a fake predictor stands for
the model: three boxes per image."""

from __future__ import annotations

import gc
import json
import tracemalloc

import numpy as np

from ymir_base.engine import predict
from ymir_base.engine.backend import Predictor
from ymir_base.engine.registry import backend_class, image_spec
from ymir_base.monitor import Monitor
from ymir_base.prediction import BOXES, Prediction
from ymir_base.protocol.context import build_context
from ymir_base.protocol.paths import PathMapper


class _ThreeBoxes(Predictor):
    capabilities = frozenset({BOXES})
    class_names = ("circle", "square", "triangle")
    batch_size = 8

    def predict(self, images, *, want=frozenset()):
        return [Prediction(img.shape[:2], boxes=np.array([[1.2, 2.5, 20.7, 18.1], [3, 4, 9, 30], [0, 0, 31, 31]]),
                           scores=np.array([0.91, 0.52, 0.13]), class_ids=np.array([0, 1, 2])) for img in images]


def _held(sample, monkeypatch, images: int) -> tuple[int, int]:
    """Bytes the outcome of an infer pass over ``images`` candidates holds (tracemalloc), and the
    bytes of their encoded entries."""
    monkeypatch.setattr(backend_class("yolov5"), "predictor", lambda self, ctx: _ThreeBoxes())
    in_dir, out_dir = sample("infer", images=images, size=(32, 32))
    ctx = build_context(image_spec("yolov5"), PathMapper(in_dir, out_dir), overrides={"num_workers_per_gpu": 1})
    candidates = (in_dir / "candidate-index.tsv").read_text().split()
    monitor = Monitor(out_dir / "monitor.txt", ctx.task_id)
    tracemalloc.start()
    try:
        gc.collect()
        before = tracemalloc.get_traced_memory()[0]
        outcome = predict.predict_candidates(ctx, backend_class("yolov5")(), monitor, candidates)
        gc.collect()  # garbage in reference cycles is not held
        held = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert len(outcome.infer) == images
    assert all(len(json.loads(text)["boxes"]) == 3 for text in outcome.infer.values())
    return held, sum(len(text) for text in outcome.infer.values())


def test_the_infer_pass_holds_each_entry_as_its_text(sample, monkeypatch):
    _held(sample, monkeypatch, 4)  # the first pass's one-time allocations (imports, caches) stay
    small, small_text = _held(sample, monkeypatch, 8)
    large, large_text = _held(sample, monkeypatch, 40)
    per_image = (large - small) / 32
    text_per_image = (large_text - small_text) / 32
    assert text_per_image > 200
    # the text (a str of 49 + 225 bytes), the basename key (93), a dict slot, and small blocks numpy
    # keeps from reading images: about 480 bytes; the dicts of three boxes held about 1690
    assert per_image < text_per_image + 400, (per_image, text_per_image)
