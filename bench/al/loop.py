"""The active-learning loop, run through an image's executor exactly as YMIR would run it.

Per seed: a random initial labelled set L0 of the pool; a model trained on it (round 0, shared by
every miner) and evaluated on the test set. Then, per miner and round: mine the unlabelled pool U
with the last model, move the top-k of ``result.tsv`` from U to L, train on L afresh (YMIR trains a
new model on the grown dataset: from random initialisation, or from the plan's pretrained model as
a user's training starts from one), evaluate. Each task is one ``ymir-exec run IMAGE`` on a
``/in`` folder the loop writes; the labelled images are split into training and validation images
(a fixed fraction by a seeded hash: the executor needs validation images to pick its best epoch).

Every step (train, eval, mine) lives in its own folder and is done once ``step.json`` is in it, so a
killed run picks up at the step it was in; a step without ``step.json`` is redone from scratch.
"""

from __future__ import annotations

import ctypes
import hashlib
import json
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from al.dataset import Dataset, load_dataset
from al.evaluate import evaluate
from al.inputs import predict_in, training_in
from al.settings import TaskSettings, task_settings
from al.sheet import picks_sheet
from timing import ENV, exec_run
from ymir_base.results.atomic import write_text_atomic

RESULTS = "results.json"
PR_SET_PDEATHSIG = 1  # linux/prctl.h
SHOWN_PICKS = 8
PREFIXES = (10, 25, 50, 100)  # top-n of a ranking whose near-duplicate picks each mining step counts


@dataclass(frozen=True)
class Miner:
    """A mining algorithm of the image, with the diversity re-ranking weight (0: off)."""

    name: str
    diversity: float = 0.0

    @classmethod
    def parse(cls, spec: str) -> Miner:
        """``entropy`` or ``entropy:0.5`` (with diversity 0.5)."""
        name, _, weight = spec.strip().partition(":")
        if not name:
            raise ValueError(f"miner {spec!r}: no algorithm name")
        try:
            return cls(name.lower(), float(weight) if weight else 0.0)
        except ValueError:
            raise ValueError(f"miner {spec!r}: the diversity after ':' must be a number") from None

    @property
    def label(self) -> str:
        return self.name if not self.diversity else f"{self.name}+div{self.diversity:g}"


@dataclass(frozen=True)
class Plan:
    dataset: Path
    image: str
    miners: tuple[Miner, ...]
    out: Path
    initial: int = 10
    k: int = 10
    rounds: int = 3
    seeds: tuple[int, ...] = (0, 1, 2)
    scale: str = "cpu"
    epochs: int | None = None
    img_size: int | None = None
    val_fraction: float = 0.2
    pretrained: Path | None = None  # a trained model's folder every training starts from (al_bench.py pretrain)
    model: str | None = None  # instead of the scale's model (settings.MODELS)
    full_pool: bool = False  # per seed, also a model trained on the whole pool: what labelling it all would give

    def __post_init__(self) -> None:
        if "random" not in {m.label for m in self.miners}:  # the baseline every curve is compared with
            object.__setattr__(self, "miners", (Miner("random"), *self.miners))
        labels = [m.label for m in self.miners]
        if len(set(labels)) != len(labels):
            raise ValueError(f"miners listed twice: {', '.join(labels)}")
        if self.initial < 3 or self.k < 1 or self.rounds < 1 or not self.seeds:
            raise ValueError("initial must be at least 3 (2 of them validate), k and rounds at least 1, "
                             "and one seed given")

    def folder(self, dataset: Dataset) -> Path:
        return Path(self.out) / dataset.name / self.image


@dataclass
class Point:
    """One point of a learning curve."""

    round: int
    labelled: int
    map50: float
    map: float
    seconds: dict[str, float] = field(default_factory=dict)  # train, eval, mine of this round
    redundant: int = 0  # picks of this round that were near-duplicates of labelled images or earlier picks
    tied: bool = False  # the round's mining gave every candidate the same score: its picks are the index's order


class Loop:
    def __init__(self, plan: Plan, echo: Callable[[str], None] = print, jobs: int = 1):
        self.plan, self.echo, self.jobs = plan, echo, max(1, jobs)
        self.dataset = load_dataset(plan.dataset)
        needed = plan.initial + plan.k * plan.rounds
        if needed > len(self.dataset.pool):
            raise ValueError(f"{plan.dataset}: the pool has {len(self.dataset.pool)} images, fewer than the "
                             f"{needed} the plan labels (initial {plan.initial} + k {plan.k} x {plan.rounds} rounds)")
        self.folder = plan.folder(self.dataset)
        if plan.pretrained is not None and not any(p.is_file() for p in Path(plan.pretrained).glob("*")):
            raise ValueError(f"--pretrained {plan.pretrained}: not a model folder (no files in it)")
        self.settings: TaskSettings = task_settings(plan.image, plan.scale, self.folder / "settings",
                                                    epochs=plan.epochs, img_size=plan.img_size,
                                                    pretrained=plan.pretrained is not None, model=plan.model)

    def run(self) -> dict[str, Any]:
        """Run (or finish) every seed and miner; write and return the results. ``results.json`` is
        rewritten as each (seed, miner) curve completes, so a run cut short still reports those."""
        started = time.perf_counter()
        curves: dict[str, dict[str, list[dict]]] = {m.label: {} for m in self.plan.miners}
        full: dict[str, dict] = {}
        lock = threading.Lock()

        def chain(seed: int, miner: Miner, first: tuple[Point, Path]) -> None:
            points = self.chain(seed, miner, first)
            with lock:
                curves[miner.label][str(seed)] = [asdict(p) for p in points]
                self.write_results(curves, time.perf_counter() - started, full)

        def whole_pool(seed: int) -> None:
            point = self.full_pool(seed)
            with lock:
                full[str(seed)] = asdict(point)
                self.write_results(curves, time.perf_counter() - started, full)

        # round 0 of every seed, then every (seed, miner) chain; tasks are subprocesses, so threads
        # are enough to run ``jobs`` of them at once (on a GPU that several small models share)
        with ThreadPoolExecutor(self.jobs) as pool:
            firsts = dict(zip(self.plan.seeds, pool.map(self.first_round, self.plan.seeds), strict=True))
            done = [pool.submit(chain, seed, miner, firsts[seed])
                    for seed in self.plan.seeds for miner in self.plan.miners]
            if self.plan.full_pool:  # after the curves: a run cut short has them first
                done += [pool.submit(whole_pool, seed) for seed in self.plan.seeds]
            for future in done:
                future.result()
        return self.write_results(curves, time.perf_counter() - started, full)

    def first_round(self, seed: int) -> tuple[Point, Path]:
        """The initial labelled set's model (round 0), shared by every miner of the seed."""
        point, model = self.train_and_evaluate(self.folder / f"seed{seed}" / "round0", seed, self.initial_set(seed),
                                               0, None)
        self.echo(f"[{self.plan.image} {self.dataset.name} seed {seed}] round 0: {point.labelled} labelled, "
                  f"mAP@0.5 {point.map50:.3f}")
        return point, model

    def full_pool(self, seed: int) -> Point:
        """A model trained on every pool image (the seed's validation split): the level a curve would
        reach with the whole pool labelled, against which its points read as a share."""
        point, _ = self.train_and_evaluate(self.folder / f"seed{seed}" / "full-pool", seed, list(self.dataset.pool),
                                           0, None)
        self.echo(f"[{self.plan.image} {self.dataset.name} seed {seed}] whole pool: {point.labelled} labelled, "
                  f"mAP@0.5 {point.map50:.3f}")
        return point

    def chain(self, seed: int, miner: Miner, first: tuple[Point, Path]) -> list[Point]:
        """The rounds of one miner from the seed's round-0 model: its learning curve."""
        point, model = first
        points, current = [point], self.initial_set(seed)
        for r in range(1, self.plan.rounds + 1):
            folder = self.folder / f"seed{seed}" / miner.label / f"round{r}"
            picked = self.mine(folder / "mine", model, current, miner)
            current = current + picked["picked"]
            point, model = self.train_and_evaluate(folder, seed, current, r, picked["seconds"])
            point.redundant = int(picked.get("redundant", 0))
            point.tied = bool(picked.get("tied", False))
            points.append(point)
            self.echo(f"[{self.plan.image} {self.dataset.name} seed {seed}] {miner.label} round {r}: "
                      f"{len(current)} labelled, mAP@0.5 {point.map50:.3f} "
                      f"({', '.join(f'{k} {v:.0f} s' for k, v in point.seconds.items())})"
                      + (", every mining score tied" if point.tied else ""))
        return points

    def write_results(self, curves: dict[str, dict[str, list[dict]]], seconds: float,
                      full: dict[str, dict] | None = None) -> dict[str, Any]:
        results = {"plan": _plain(asdict(self.plan)), "dataset": {
            "name": self.dataset.name, "description": self.dataset.description, "derived": self.dataset.derived,
            "pool": len(self.dataset.pool), "test": len(self.dataset.test), "classes": self.dataset.class_names},
            "settings": asdict(self.settings), "curves": {m: c for m, c in curves.items() if c}, "seconds": seconds}
        if full:
            results["full_pool"] = dict(sorted(full.items(), key=lambda item: int(item[0])))
        write_text_atomic(self.folder / RESULTS, json.dumps(results, indent=1))
        return results

    def initial_set(self, seed: int) -> list[str]:
        names = list(self.dataset.pool)
        chosen = np.random.default_rng(seed).choice(len(names), self.plan.initial, replace=False)
        return [names[i] for i in sorted(chosen)]

    def train_and_evaluate(self, folder: Path, seed: int, labelled: list[str], number: int,
               mine_seconds: float | None) -> tuple[Point, Path]:
        """Train on ``labelled`` and evaluate: the curve's point and the model's folder."""
        trained = self.train(folder / "train", seed, labelled)
        scored = self.evaluate(folder / "eval", Path(trained["model"]))
        seconds = {"train": trained["seconds"], "eval": scored["seconds"]}
        if mine_seconds is not None:
            seconds = {"mine": mine_seconds, **seconds}
        return Point(number, len(labelled), scored["map50"], scored["map"], seconds), Path(trained["model"])

    def split(self, seed: int, labelled: list[str]) -> tuple[list[str], list[str]]:
        """Validation: the ``val_fraction`` of the labelled images lowest in a seeded hash (at least 2),
        so an image keeps its side while L grows unless the boundary moves past it."""
        n_val = min(len(labelled) - 1, max(2, round(len(labelled) * self.plan.val_fraction)))
        ranked = sorted(labelled, key=lambda n: hashlib.sha1(f"{seed}/{n}".encode()).hexdigest())
        val = set(ranked[:n_val])
        return [n for n in labelled if n not in val], [n for n in labelled if n in val]

    def train(self, folder: Path, seed: int, labelled: list[str]) -> dict[str, Any]:
        def action() -> dict[str, Any]:
            train, val = self.split(seed, labelled)
            pretrained = Path(self.plan.pretrained) if self.plan.pretrained is not None else None
            training_in(self.dataset, train, val, folder / "in", self.settings.training,
                        {pretrained.name: pretrained} if pretrained else None)
            self.execute(folder)
            shutil.rmtree(folder / "in" / "models", ignore_errors=True)  # a copy of the pretrained model
            models = folder / "out" / "models"
            result = yaml.safe_load((models / "result.yaml").read_text(encoding="utf-8"))
            shutil.rmtree(folder / "out" / "work", ignore_errors=True)  # checkpoints: up to GBs per round
            return {"model": str(models / str(result["best_stage_name"])), "val_map": float(result.get("mAP", 0.0)),
                    "train": train, "val": val}

        # a killed training resumes as YMIR restarts a task: the executor finds its checkpoints in the
        # same /out (the task id comes from the folder), so a long training survives a cut
        return step(folder, action, keep=("out",))

    def evaluate(self, folder: Path, model: Path) -> dict[str, Any]:
        def action() -> dict[str, Any]:
            predict_in(self.dataset, list(self.dataset.test), folder / "in", "infer", model, self.settings.infer)
            self.execute(folder)
            shutil.rmtree(folder / "in" / "models", ignore_errors=True)  # a copy of the round's model
            return evaluate(self.dataset, folder / "out" / "infer-result.json")

        return step(folder, action)

    def mine(self, folder: Path, model: Path, labelled: list[str], miner: Miner) -> dict[str, Any]:
        def action() -> dict[str, Any]:
            taken = set(labelled)
            # in asset-id order, so the index's order tells nothing of the dataset's layout: a miner
            # that scores every image the same (a model that detects nothing yet) then picks as by
            # chance, not a block of neighbouring tiles of one photo as in name order
            unlabelled = sorted((n for n in self.dataset.pool if n not in taken), key=self.dataset.digest)
            config = {**self.settings.mining, "mining_algorithm": miner.name}
            if miner.diversity:
                config["diversity"] = miner.diversity
            predict_in(self.dataset, unlabelled, folder / "in", "mining", model, config)
            self.execute(folder)
            shutil.rmtree(folder / "in" / "models", ignore_errors=True)
            ranked = ranking(folder / "out" / "result.tsv", {self.dataset.digest(n): n for n in unlabelled})
            picked = [name for name, _ in ranked[:self.plan.k]]
            picks_sheet(self.dataset, ranked[:SHOWN_PICKS], folder / "picks.png")
            prefixes = {str(n): redundant(self.dataset, labelled, [name for name, _ in ranked[:n]])
                        for n in PREFIXES if n <= len(ranked)}
            return {"picked": picked, "scores": [score for _, score in ranked[:self.plan.k]],
                    "redundant": redundant(self.dataset, labelled, picked), "redundant_at": prefixes,
                    "tied": len(ranked) > 1 and len({score for _, score in ranked}) == 1}

        return step(folder, action)

    def execute(self, folder: Path) -> None:
        """``ymir-exec run IMAGE`` on ``folder/in`` and ``folder/out``; its output goes to folder/run.log."""
        log = folder / "run.log"
        with log.open("w", encoding="utf-8") as stream:
            code = subprocess.run(exec_run(self.plan.image, folder / "in", folder / "out"), stdout=stream,
                                  stderr=subprocess.STDOUT, env=ENV, preexec_fn=_die_with_parent).returncode
        if code:
            monitor = folder / "out" / "monitor.txt"
            tail = log.read_text(encoding="utf-8", errors="replace")[-3000:]
            raise RuntimeError(f"{self.plan.image} failed (exit {code}) in {folder}: "
                               f"{monitor.read_text() if monitor.is_file() else 'no monitor.txt'}\n{tail}")


def _die_with_parent() -> None:
    """In the task's process: be killed with the loop, so that a killed loop leaves no task writing
    into the folder its rerun redoes (Linux; elsewhere the task runs to its end)."""
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    except OSError:
        pass


def ranking(result_tsv: Path, names: dict[str, str]) -> list[tuple[str, float]]:
    """``(image name, score)`` best first, as YMIR reads result.tsv (score descending; the file's order
    breaks ties). ``names`` maps asset ids to image names; every candidate must be there once."""
    rows = []
    for number, line in enumerate(result_tsv.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        asset, _, score = line.partition("\t")
        digest = asset.rsplit("/", 1)[-1].removesuffix(".jpg")
        if digest not in names:
            raise ValueError(f"{result_tsv}:{number}: {asset} is not a candidate")
        rows.append((names[digest], float(score)))
    if sorted(n for n, _ in rows) != sorted(names.values()):
        raise ValueError(f"{result_tsv}: lists {len(rows)} candidates, not the {len(names)} given")
    return sorted(rows, key=lambda row: -row[1])  # stable: ties keep the file's order


def redundant(dataset: Dataset, labelled: list[str], picked: list[str]) -> int:
    """How many picks are near-duplicates (same ``group``) of a labelled image or of an earlier pick:
    labelling effort a diverse ranking would have spent on something new."""
    seen = {dataset.pool[n].group for n in labelled}
    count = 0
    for name in picked:
        group = dataset.pool[name].group
        count += group in seen
        seen.add(group)
    return count


def step(folder: Path, action: Callable[[], dict[str, Any]], keep: tuple[str, ...] = ()) -> dict[str, Any]:
    """Run ``action`` in ``folder`` unless ``folder/step.json`` says it is done; its result, with the
    seconds it took, is what step.json holds. The folder is emptied first but for the entries named
    in ``keep`` that a killed attempt left (then ``resumed`` is in the result)."""
    done = folder / "step.json"
    if done.is_file():
        return json.loads(done.read_text(encoding="utf-8"))
    kept = False
    for entry in sorted(folder.iterdir()) if folder.is_dir() else []:
        if entry.name in keep:
            kept = True
        elif entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry)
        else:
            entry.unlink()
    folder.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    result = action()
    result["seconds"] = time.perf_counter() - started  # of this attempt only, when resumed
    if kept:
        result["resumed"] = True
    write_text_atomic(done, json.dumps(result))
    return result


def _plain(value: Any) -> Any:
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value
