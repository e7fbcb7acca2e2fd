"""Kills at random points (issue 15): every installed image, every object kind it serves, each
task (training, infer, mining, mining+infer) on sample data with the image's quick settings,
SIGKILLed at K seeded random moments; after each kill the /out invariants, then a rerun on the
same /out that must finish (and, for a training killed after a stage, resume). See
ymir_base/verify/kills.py for what is checked.

    .venv/bin/python bench/kill_bench.py --k 3 [--images yolov5,mmdet] [--kinds detection]
                                         [--tasks training,infer] [--seed 0] [--work DIR]

The uninterrupted run of each task times it (T); the kill moments are fractions of T. Infer and
mining use the best stage of the uninterrupted training of the same image and kind (trained
even when training is not among --tasks). Prints a table per image x kind x task and writes it,
with every kill's details, to bench-out/kill/report.md (and report.json). Exit 1 when any check
failed.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import asdict
from pathlib import Path

from ymir_base.engine.registry import backend_class, images
from ymir_base.verify import kills

ROOT = Path(__file__).resolve().parents[1]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--k", type=int, default=3, help="kills per image x kind x task")
    parser.add_argument("--images", help="comma-separated (default: every installed image)")
    parser.add_argument("--kinds", help="comma-separated object kinds (default: every kind each image serves)")
    parser.add_argument("--tasks", default=",".join(kills.TASKS), help="comma-separated, of %(default)s")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--work", type=Path, default=ROOT / "bench-out" / "kill" / "work")
    parser.add_argument("--report", type=Path, default=ROOT / "bench-out" / "kill" / "report.md")
    args = parser.parse_args(argv)
    chosen = args.images.split(",") if args.images else images()
    tasks = [t for t in kills.TASKS if t in args.tasks.split(",")]
    unknown = set(args.tasks.split(",")) - set(kills.TASKS)
    if unknown:
        parser.error(f"unknown tasks {sorted(unknown)}; choose from {kills.TASKS}")

    started = time.perf_counter()
    reports: list[kills.TaskKills] = []
    for image in chosen:
        for kind in backend_class(image).served():
            if args.kinds and kind.name not in args.kinds.split(","):
                continue
            reports += run_image_kind(image, kind.name, tasks, args.k, args.seed, args.work / f"{image}-{kind.name}")
            write_report(args, reports, time.perf_counter() - started)
    print(kills.table(reports))
    print(f"report: {args.report}")
    return 0 if all(r.ok for r in reports) else 1


def run_image_kind(image: str, kind: str, tasks: list[str], k: int, seed: int, work: Path) -> list[kills.TaskKills]:
    reports = []
    training = kills.prepare(image, kind, "training", work / "training" / "in")
    report = kills.kill_task(training, work / "training", k if "training" in tasks else 0, seed=seed, echo=say)
    if "training" in tasks:
        reports.append(report)
    model = kills.best_stage(work / "training" / "baseline" / "out")
    for task in tasks:
        if task == "training":
            continue
        if model is None:
            reports.append(kills.TaskKills(image, kind, task, k, skipped="the training gave no model"))
            continue
        spec = kills.prepare(image, kind, task, work / task / "in", models={model.name: model})
        reports.append(kills.kill_task(spec, work / task, k, seed=seed, echo=say))
    return reports


def write_report(args: argparse.Namespace, reports: list[kills.TaskKills], seconds: float) -> None:
    """Rewritten after every image x kind, so that a run cut short still reports what finished."""
    args.report.parent.mkdir(parents=True, exist_ok=True)
    command = "bench/kill_bench.py " + " ".join(sys.argv[1:])
    args.report.write_text(
        f"# Kills at random points\n\n`{command}` (K={args.k}, seed {args.seed}), {seconds / 60:.0f} min.\n\n"
        "T: the uninterrupted run's seconds; kill moments are seeded fractions of T in (2 %, 98 %). "
        "A kill 'lands' when the task was still running. Resumed: reruns that resumed (or found the "
        "training finished) of those after a kill that left a saved stage.\n\n"
        + kills.table(reports) + "\n## Every kill\n\n" + kills.details(reports), encoding="utf-8")
    args.report.with_suffix(".json").write_text(json.dumps([asdict(r) for r in reports], indent=1), encoding="utf-8")


def say(line: str) -> None:
    print(line, flush=True)


if __name__ == "__main__":
    sys.exit(main())
