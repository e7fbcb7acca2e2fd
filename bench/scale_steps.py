"""The in-process steps of the growth-curve benchmark (bench/scale.py), one per child process so
that the child's peak RSS is the step's own:

    python bench/scale_steps.py STEP N ROOT WORK

prints one JSON line: ``seconds`` and ``cpu`` of the step's work alone (after the imports),
``items`` and ``result_bytes``: the file a writer step wrote; for a parsing step the memory its
result holds (the process's RSS with the returned records alive, minus its RSS before the call).
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable, Sized
from pathlib import Path
from types import SimpleNamespace

import numpy as np

import scale_data
from ymir_base.protocol.paths import PathMapper

BOXES_PER_IMAGE = 3  # synthetic predictions of the writer steps (the nano model at conf 0.004 gives 2-3)


def _parse(kind: str, n: int, root: Path, work: Path) -> tuple[int, Callable[[], Sized]]:
    """Index/annotation parsing: (items, the measured call)."""
    from ymir_base.data.index import read_candidates, read_pairs
    from ymir_base.data.reader import load_split

    make = {"index-candidates": scale_data.candidate_index, "index-train": scale_data.train_index,
            "ark-dataset": scale_data.train_index, "coco-dataset": scale_data.coco_index}[kind]
    index = make(root, n)
    mapper = PathMapper(root / "in", work)
    container = f"/in/{index.name}"
    if kind == "index-candidates":
        return n, lambda: read_candidates(container, mapper)
    if kind == "index-train":
        return n, lambda: read_pairs(container, mapper)
    fmt = "ark:raw" if kind == "ark-dataset" else "coco:raw"
    return n, lambda: load_split(container, mapper, scale_data.CLASS_NAMES, fmt)


def _predictions(n: int):
    """``n`` synthetic detections of a 64x64 image, from one seeded generator."""
    from ymir_base.prediction import Prediction

    rng = np.random.default_rng(0)
    size = scale_data.IMAGE_SIZE
    for _ in range(n):
        xy = rng.uniform(0, size / 2, (BOXES_PER_IMAGE, 2))
        wh = rng.uniform(4, size / 2, (BOXES_PER_IMAGE, 2))
        yield Prediction(image_size=(size, size), boxes=np.hstack([xy, xy + wh]).astype(np.float32),
                         scores=rng.uniform(0.001, 1, BOXES_PER_IMAGE).astype(np.float32),
                         class_ids=rng.integers(0, len(scale_data.CLASS_NAMES), BOXES_PER_IMAGE))


def _write(kind: str, n: int, root: Path, work: Path) -> tuple[int, Callable[[], Sized]]:
    """The engine's result writing alone: per image what predict_candidates keeps, then
    write_outputs, for ``n`` synthetic predictions (infer-result.json) or scores (result.tsv)."""
    from ymir_base.engine.predict import PredictionOutcome, write_outputs
    from ymir_base.protocol.context import TaskContext
    from ymir_base.protocol.env import load_env
    from ymir_base.tasks.kinds import DETECTION
    from ymir_base.tasks.writers import encode

    task = "infer" if kind == "write-infer" else "mining"
    folder = scale_data.task_folder(root, task, 1)  # env.yaml and config only: the candidates are synthetic
    out = work / "out"
    ctx = TaskContext(env=load_env(folder / "env.yaml"), config={}, mapper=PathMapper(folder, out),
                      object_type=2, img_man_dir=folder)
    backend = SimpleNamespace(kind_for=lambda _object_type: DETECTION)
    names = list(scale_data.CLASS_NAMES)

    def run() -> range:
        outcome = PredictionOutcome(class_names=names)
        if task == "infer":
            for i, pred in enumerate(_predictions(n)):
                outcome.infer[scale_data.digest(i) + ".jpg"] = encode(DETECTION.writer.entry(pred, names))
        else:
            for i, score in enumerate(np.random.default_rng(1).random(n)):
                outcome.scores[scale_data.asset(i)] = float(score)
        write_outputs(ctx, backend, outcome)  # type: ignore[arg-type]
        return range(n)

    return n, run


def _rss() -> int:
    """This process's resident set now, bytes."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS in /proc/self/status")


def measure(step: str, n: int, root: Path, work: Path) -> dict[str, float]:
    writer = step.startswith("write-")
    items, call = (_write if writer else _parse)(step, n, root, work)
    before = _rss()
    wall, cpu = time.perf_counter(), time.process_time()
    result = call()
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    held = _rss() - before
    if len(result) != items:
        raise SystemExit(f"{step} {n}: handled {len(result)} items, expected {items}")
    written = sum(p.stat().st_size for p in (work / "out").glob("*") if p.is_file()) if writer else held
    return {"seconds": wall, "cpu": cpu, "items": items, "result_bytes": written}


if __name__ == "__main__":
    name, size, root_dir, work_dir = sys.argv[1:5]
    print(json.dumps(measure(name, int(size), Path(root_dir), Path(work_dir))))
