"""Benchmark: the yolov5 image's infer through our executor vs the ``yolov5`` package's own
``detect`` command on the same images, model and size; and each mining algorithm's cost
relative to plain infer. Ratios are measured in one run, on this machine, as whole commands
(process start, model load, reading images, inference, writing results).

    .venv/bin/python bench/infer_bench.py [--images 48] [--img-size 640] [--model yolov5s] [--repeat 3] [--threads 1]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
from collections.abc import Callable
from pathlib import Path

from timing import ENV, Commands, Rounds, Timing, exec_run, loaded_pattern, run_timed, timed_with_load

ROOT = Path(__file__).resolve().parents[1]
MINING_CONF = 0.001
LOADED = loaded_pattern("ymir_yolov5lib.predictor")


def make_model(model: str, path: Path) -> Path:
    """A random-init model of the given size for 3 classes (no downloads: weights are not needed
    to measure speed, and NMS sees the same thresholds on both sides)."""
    import torch
    from yolov5.models.yolo import Model

    import ymir_yolov5lib  # noqa: F401 - prepares the yolov5 runtime
    from ymir_yolov5lib import models

    torch.manual_seed(0)
    net = Model(str(models.model_yaml(model)), ch=3, nc=3)
    net.names = {0: "circle", 1: "square", 2: "triangle"}
    path.mkdir(parents=True, exist_ok=True)
    torch.save({"model": net.half(), "epoch": -1}, path / "best.pt")
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=48)
    parser.add_argument("--img-size", type=int, default=640)
    parser.add_argument("--model", default="yolov5s")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--threads", type=int, default=0,
                        help="OMP/MKL threads of both sides (0: torch's default, which our executor caps at the "
                             "CPUs the process may use)")
    parser.add_argument("--out", default=str(ROOT / "bench-out"))
    args = parser.parse_args()

    from ymir_base.sample.generator import generate

    # yolov5 7.0's detect unpickles whole models, which torch >= 2.6 refuses by default (our
    # executor checks the file first, then sets the same variable: ymir_yolov5lib.runtime)
    ENV["TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD"] = "1"
    if args.threads:
        ENV.update(OMP_NUM_THREADS=str(args.threads), MKL_NUM_THREADS=str(args.threads))
    work = Path(args.out)
    shutil.rmtree(work, ignore_errors=True)
    weights = make_model(args.model, work / "model" / "best")
    cfg = {"img_size": args.img_size, "iou_thres": 0.45, "batch_size_per_gpu": 16}
    folders = {task: generate(work / f"in-{task}", task=task, object_type="detection", fmt="ark",
                              images=args.images, seed=7, size=(640, 480), models={"best": weights})
               for task in ("infer", "mining")}  # same seed: the same images
    flat = work / "flat"  # detect.py reads a flat folder
    flat.mkdir()
    for line in (folders["infer"] / "candidate-index.tsv").read_text().split():
        src = folders["infer"] / line.removeprefix("/in/")
        (flat / src.name).symlink_to(src)

    def ours(task: str, conf: float, algorithm: str | None = None) -> Callable[[], Timing]:
        def command() -> Timing:
            out = work / f"out-{task}-{algorithm}"
            shutil.rmtree(out, ignore_errors=True)
            sets = {**cfg, "conf_thres": conf, **({"mining_algorithm": algorithm} if algorithm else {})}
            return timed_with_load(exec_run("yolov5", folders[task], out, sets), LOADED)[0]

        return command

    def reference() -> Timing:
        wall, cpu, _, _ = run_timed([sys.executable, "-m", "yolov5.detect", "--weights", str(weights / "best.pt"),
                                     "--source", str(flat), "--imgsz", str(args.img_size), "--conf-thres", "0.25",
                                     "--iou-thres", "0.45", "--device", "cpu", "--nosave",
                                     "--project", str(work / "detect")], merge_stderr=True)
        return Timing(wall, cpu, None)

    # a random-init model has no box above 0.25: mining runs at 0.001 so entropy and cald see boxes
    commands: Commands = {
        "infer": ("infer (ours, conf 0.25)", "detect", ours("infer", 0.25)),
        "detect": ("yolov5 detect (reference, batch 1, conf 0.25)", "detect", reference),
        "base": (f"infer, conf {MINING_CONF} (mining baseline)", "base", ours("infer", MINING_CONF)),
        **{a: (f"mining {a}", "base", ours("mining", MINING_CONF, a)) for a in ("random", "entropy", "aldd", "cald")},
    }
    ours("infer", 0.25)()  # warm the file cache and the interpreter's bytecode once
    rounds = Rounds(commands, args.repeat)
    threads = args.threads or "default"
    print(f"\n{args.images} images 640x480, {args.model} (random init), img_size {args.img_size}, CPU "
          f"({os.cpu_count()} cores, torch threads {threads}), median of {args.repeat}, load {rounds.load_range()}")
    print(rounds.table())
    print("ratio: infer vs the reference command; mining rows vs the mining baseline")
    (work / "results.json").write_text(json.dumps({
        "images": args.images, "model": args.model, "img_size": args.img_size, "threads": threads,
        **rounds.as_dict()}, indent=2))


if __name__ == "__main__":
    main()
