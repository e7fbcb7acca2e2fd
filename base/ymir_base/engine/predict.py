"""Infer and mining over the candidate list: one pass feeds both result files.

Every candidate is scored exactly once: an unreadable image gets the lowest score (and an empty
entry in the infer result) with a warning, never a crash. The task's object kind (the backend's
task map) chooses the miners and the infer writer. With several GPUs each rank takes
``candidates[rank::world]`` and writes a shard of per-image entries; the parent process merges
them in candidate order and writes the files once (engine/task.py).

With ``diversity`` > 0 (mining/diversity.py) the pass also asks for each image's pooled features
and keeps those of the ``diversity_pool`` best-scored candidates (a bounded heap, per rank); the
re-ranking runs once the scores are final, on the merged pool when there are several ranks. A
miner that needs no model (random) then loads it for the features alone, and one that skips the
plain pass (maskAL) runs it.
"""

from __future__ import annotations

import base64
import heapq
import json
import logging
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ymir_base import ranks
from ymir_base.data.images import read_image
from ymir_base.data.index import read_candidates
from ymir_base.engine.backend import Backend, Predictor
from ymir_base.errors import ConfigError, DatasetError, ExecutorError
from ymir_base.mining import MiningAlgorithm, Scored, get_algorithm
from ymir_base.mining.diversity import DIVERSITY_KEY, diversity_settings, rerank
from ymir_base.monitor import Monitor
from ymir_base.prediction import FEATURES, Prediction
from ymir_base.protocol.context import TaskContext
from ymir_base.results.atomic import open_atomic, write_text_atomic
from ymir_base.results.mining import write_mining_result
from ymir_base.tasks.writers import encode

LOG = logging.getLogger(__name__)
UNREADABLE_SCORE = -1.0e9  # below every algorithm's range: never picked first


@dataclass
class PredictionOutcome:
    """What one rank produced: mining scores and infer entries in candidate order."""

    scores: dict[str, float] = field(default_factory=dict)       # candidate path -> score
    infer: dict[str, str] = field(default_factory=dict)           # basename -> its entry, encoded (writers.py)
    unreadable: list[str] = field(default_factory=list)
    class_names: list[str] = field(default_factory=list)          # the model's, for the infer result
    # diversity on: the pooled features of the best-scored candidates (at most diversity_pool)
    features: dict[str, np.ndarray] = field(default_factory=dict)


Loaded = list[tuple[str, np.ndarray | None]]


def _batches(paths: list[str], ctx: TaskContext, size: int, workers: int) -> Iterator[Loaded]:
    """Read images in a thread pool, one batch ahead of the model."""

    def load(asset: str) -> tuple[str, np.ndarray | None]:
        try:
            return asset, read_image(ctx.host(asset))
        except ExecutorError as exc:
            LOG.warning("candidate %s is unreadable and gets the lowest score: %s", asset, exc)
            return asset, None

    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        chunks = [paths[i:i + size] for i in range(0, len(paths), size)]
        pending = pool.map(load, chunks[0]) if chunks else None
        for k in range(len(chunks)):
            current = list(pending) if pending is not None else []
            pending = pool.map(load, chunks[k + 1]) if k + 1 < len(chunks) else None
            yield current


def predict_candidates(ctx: TaskContext, backend: Backend, monitor: Monitor,
                       candidates: list[str]) -> PredictionOutcome:
    cfg = ctx.config
    kind = backend.kind_for(ctx.object_type)
    algorithm = None
    diverse, pool = False, 0
    if ctx.env.run_mining:
        algorithm = get_algorithm(str(cfg.get("mining_algorithm", "")), cfg, ctx.class_names,
                                  supported=backend.miners_for(kind), kind=kind.name)
        weight, pool = diversity_settings(cfg)
        diverse = weight > 0
    needs_model = ctx.env.run_infer or bool(algorithm and algorithm.needs) or diverse
    predictor: Predictor | None = backend.predictor(ctx) if needs_model and candidates else None
    if algorithm and predictor:
        missing = set(algorithm.needs) - set(predictor.capabilities)
        if missing:
            raise ConfigError(f"mining_algorithm '{algorithm.name}' needs {', '.join(sorted(missing))}, "
                              f"which this model does not provide")
        if diverse and FEATURES not in predictor.capabilities:
            raise ConfigError(f"config key '{DIVERSITY_KEY}': diversity re-ranking needs the model's pooled "
                              f"features, which this model does not provide; set {DIVERSITY_KEY}: 0")
    class_names = predictor.class_names if predictor else ctx.class_names
    want = (algorithm.outputs_wanted() if algorithm else frozenset()) | ({FEATURES} if diverse else frozenset())
    batch_size = predictor.batch_size if predictor else 256
    workers = int(cfg.get("num_workers_per_gpu", cfg.get("workers_per_gpu", 4)) or 1)

    outcome = PredictionOutcome(class_names=list(class_names))
    keep_side = algorithm.keep_side if algorithm else 0
    # every candidate the diversity re-ranking may lift into the top keep_side keeps its side output
    side = _SideOutputs(max(keep_side, pool) if keep_side and diverse else keep_side)
    kept_features = _TopScores(pool if diverse else 0)
    done = 0
    for batch in _batches(candidates, ctx, batch_size, workers):
        good = [(a, img) for a, img in batch if img is not None]
        images = [img for _, img in good]
        preds: list[Prediction] | None = None
        if predictor is not None and images and (ctx.env.run_infer or algorithm is None
                                                  or algorithm.reads_predictions or diverse):
            preds = predictor.predict(images, want=want)
        scores = algorithm.score_batch(images, preds, predictor) if algorithm and images else []
        by_asset = dict(zip([a for a, _ in good], range(len(good)), strict=True))
        for asset, _ in batch:
            name = asset.rsplit("/", 1)[-1]
            i = by_asset.get(asset)
            if i is None:
                outcome.unreadable.append(asset)
            if algorithm:
                scored = scores[i] if i is not None else UNREADABLE_SCORE
                if isinstance(scored, Scored):
                    side.offer(asset, scored)
                    scored = scored.score
                outcome.scores[asset] = float(scored)
                if diverse and i is not None:
                    kept_features.offer(asset, float(scored), _features_of(preds, i, asset))
            if ctx.env.run_infer:
                pred = preds[i] if (i is not None and preds is not None) else None
                outcome.infer[name] = encode(kind.writer.entry(pred, class_names, legacy=not ctx.env.new_protocol))
        done += len(batch)
        monitor.progress(done / max(1, len(candidates)))
    if algorithm is not None and algorithm.keep_side:
        side.write(algorithm, ctx.out_dir)
    outcome.features = {asset: vector for asset, _, vector in kept_features.best_first()}
    return outcome


def _features_of(preds: list[Prediction] | None, i: int, asset: str) -> np.ndarray:
    features = preds[i].features if preds is not None else None
    if features is None:
        raise ValueError(f"the predictor gave no features for {asset} although asked (want=FEATURES)")
    return np.array(features, np.float32)  # a copy: a view would keep its whole batch's array alive


class _TopScores:
    """A payload for each of the ``size`` highest-scored images seen so far (a min-heap: memory
    is bounded by ``size``, not by the candidate pool); ties keep the earlier candidate."""

    def __init__(self, size: int):
        self.size, self.heap, self.seen = size, [], 0

    def offer(self, asset: str, score: float, payload: Any) -> None:
        if self.size <= 0:
            return
        self.seen += 1
        item = (float(score), -self.seen, asset, payload)
        if len(self.heap) < self.size:
            heapq.heappush(self.heap, item)
        elif item[:2] > self.heap[0][:2]:
            heapq.heapreplace(self.heap, item)

    def best_first(self) -> list[tuple[str, float, Any]]:
        """``(asset, score, payload)``, highest score first."""
        return [(asset, score, payload)
                for score, _, asset, payload in sorted(self.heap, key=lambda item: item[:2], reverse=True)]


class _SideOutputs(_TopScores):
    """The side outputs of the ``size`` highest-scored images (see _TopScores)."""

    def offer(self, asset: str, scored: Scored) -> None:  # type: ignore[override]
        super().offer(asset, scored.score, scored.side)

    def write(self, algorithm: MiningAlgorithm, out_dir: Path) -> None:
        algorithm.write_side_outputs(self.best_first(), out_dir)


def run_prediction(ctx: TaskContext, backend: Backend, monitor: Monitor) -> None:
    index = ctx.env.input.candidate_index_file
    if not index:
        raise DatasetError("env.yaml input.candidate_index_file is empty for a mining/infer task")
    candidates = read_candidates(index, ctx.mapper)
    if not candidates:
        LOG.warning("candidate list %s is empty: writing empty results", index)
    rank, world = ranks.rank(), ranks.world_size()
    outcome = predict_candidates(ctx, backend, monitor, candidates[rank::world])
    if world > 1:
        write_shard(ctx, rank, outcome)
        return
    write_outputs(ctx, backend, outcome)


def shard_file(ctx: TaskContext, rank: int) -> Path:
    return ctx.work_dir / f"predict-shard-{rank}.json"


def write_shard(ctx: TaskContext, rank: int, outcome: PredictionOutcome) -> None:
    write_text_atomic(shard_file(ctx, rank), json.dumps(
        {"scores": outcome.scores, "infer": outcome.infer, "unreadable": outcome.unreadable,
         "class_names": outcome.class_names,
         # float32 bytes: the merge re-ranks exactly what a single process would
         "features": {asset: base64.b64encode(np.asarray(vector, "<f4").tobytes()).decode("ascii")
                      for asset, vector in outcome.features.items()}}))


def merge_shards(ctx: TaskContext, world: int) -> PredictionOutcome:
    """The ranks' shards in candidate order, so ties rank as in a single process."""
    scores: dict[str, float] = {}
    infer: dict[str, str] = {}
    unreadable: list[str] = []
    class_names: list[str] = []
    features: dict[str, np.ndarray] = {}
    for rank in range(world):
        data = json.loads(shard_file(ctx, rank).read_text(encoding="utf-8"))
        scores.update(data["scores"])
        infer.update(data["infer"])
        unreadable += data["unreadable"]
        class_names = class_names or list(data.get("class_names") or [])
        features.update({asset: np.frombuffer(base64.b64decode(text), "<f4").astype(np.float32)
                         for asset, text in (data.get("features") or {}).items()})
    order = read_candidates(ctx.env.input.candidate_index_file, ctx.mapper)
    names = [c.rsplit("/", 1)[-1] for c in order]
    bad = set(unreadable)
    return PredictionOutcome(scores={c: scores[c] for c in order if c in scores},
                             infer={n: infer[n] for n in names if n in infer},
                             unreadable=[c for c in order if c in bad], class_names=class_names or ctx.class_names,
                             features=features)


def write_outputs(ctx: TaskContext, backend: Backend | type[Backend], outcome: PredictionOutcome) -> None:
    if outcome.unreadable:
        LOG.warning("%d candidate(s) could not be read: %s", len(outcome.unreadable),
                    ", ".join(outcome.unreadable[:10]))
    if ctx.env.run_mining:
        warn_if_all_tied(outcome)
        write_mining_result(ctx.host(ctx.env.output.mining_result_file), final_scores(ctx, outcome))
    if ctx.env.run_infer:
        writer = backend.kind_for(ctx.object_type).writer
        with open_atomic(ctx.host(ctx.env.output.infer_result_file)) as out:
            writer.write(out, outcome.infer, outcome.class_names or ctx.class_names)


def warn_if_all_tied(outcome: PredictionOutcome) -> None:
    """Say so when every readable candidate got the same score: the miner then ranks nothing and
    YMIR labels the first images of the candidate index. Not an error (the task did what was
    asked), but what a user should know, e.g. of a model that detects nothing yet."""
    unreadable = set(outcome.unreadable)
    scores = (score for asset, score in outcome.scores.items() if asset not in unreadable)
    first = next(scores, None)
    readable = len(outcome.scores) - len(unreadable)
    # stops at the first different score: no copy of a large pool's scores
    if readable > 1 and all(score == first for score in scores):
        LOG.warning("mining: all %d readable candidates scored %g, so result.tsv keeps the candidate index's "
                    "order; a model that finds nothing above its confidence threshold (an early or untrained "
                    "model) scores this way", readable, first)


def final_scores(ctx: TaskContext, outcome: PredictionOutcome) -> list[tuple[str, float]]:
    """The mining scores to write: as scored, or with diversity on, the ``diversity_pool`` best
    readable candidates re-ranked (mining/diversity.py). The re-ranked ones come first, in their
    new order, so that the result's stable sort keeps that order through equal scores."""
    weight, pool = diversity_settings(ctx.config)
    if weight <= 0 or not outcome.features:
        return list(outcome.scores.items())
    position = {asset: k for k, asset in enumerate(outcome.scores)}  # candidate order
    top = sorted(outcome.features, key=lambda a: (-outcome.scores[a], position[a]))[:pool]
    top.sort(key=position.__getitem__)
    picks = rerank([(a, outcome.scores[a], outcome.features[a]) for a in top], weight)
    lifted = {asset for asset, _ in picks}
    return picks + [(a, s) for a, s in outcome.scores.items() if a not in lifted]
