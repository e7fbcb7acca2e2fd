"""Benchmark: the yolov5 image's infer through our executor vs the ``yolov5`` package's own
``detect`` command on the same images, model and size; and each mining algorithm's cost
relative to plain infer. Ratios are measured in one run, on this machine, as whole commands
(process start, model load, reading images, inference, writing results).

    .venv/bin/python bench/infer_bench.py [--images 48] [--img-size 640] [--model yolov5s] [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MINING_CONF = 0.001


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


def timed(cmd: list[str]) -> float:
    start = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    if proc.returncode:
        sys.exit(f"command failed ({proc.returncode}): {' '.join(cmd)}\n{proc.stdout[-2000:]}{proc.stderr[-2000:]}")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=48)
    parser.add_argument("--img-size", type=int, default=640)
    parser.add_argument("--model", default="yolov5s")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--out", default=str(ROOT / "bench-out"))
    args = parser.parse_args()

    from ymir_base.sample.generator import generate

    work = Path(args.out)
    shutil.rmtree(work, ignore_errors=True)
    weights = make_model(args.model, work / "model" / "best")
    cfg = {"img_size": args.img_size, "conf_thres": 0.25, "iou_thres": 0.45, "batch_size_per_gpu": 16}
    folders = {task: generate(work / f"in-{task}", task=task, object_type="detection", fmt="ark",
                              images=args.images, seed=7, size=(640, 480), models={"best": weights})
               for task in ("infer", "mining")}  # same seed: the same images
    in_dir = folders["infer"]
    flat = work / "flat"  # detect.py reads a flat folder
    flat.mkdir()
    for line in (in_dir / "candidate-index.tsv").read_text().split():
        src = in_dir / line.removeprefix("/in/")
        (flat / src.name).symlink_to(src)
    sets = [x for k, v in cfg.items() if k != "conf_thres" for x in ("--set", f"{k}={v}")]

    def ours(task: str, algorithm: str | None = None, conf: float = 0.25) -> float:
        out = work / f"out-{task}-{algorithm}"
        shutil.rmtree(out, ignore_errors=True)
        algo = ["--set", f"mining_algorithm={algorithm}"] if algorithm else []
        return timed([sys.executable, "-m", "ymir_base.cli", "run", "yolov5", "--in", str(folders[task]),
                      "--out", str(out), *sets, "--set", f"conf_thres={conf}", *algo])

    def reference() -> float:
        return timed([sys.executable, "-m", "yolov5.detect", "--weights", str(weights / "best.pt"),
                      "--source", str(flat), "--imgsz", str(args.img_size), "--conf-thres", "0.25",
                      "--iou-thres", "0.45", "--device", "cpu", "--nosave", "--project", str(work / "detect")])

    ours("infer")  # warm the file cache and the interpreter's bytecode once
    t_ours, t_ref = [], []
    for _ in range(args.repeat):  # alternate so both see the same machine state
        t_ours.append(ours("infer"))
        t_ref.append(reference())
    infer = statistics.median(t_ours)
    rows = [("infer (ours, batch 16)", infer, infer / statistics.median(t_ref)),
            ("yolov5 detect (reference, batch 1)", statistics.median(t_ref), 1.0)]
    # a random-init model has no box above 0.25: mine at 0.001 so entropy and cald see boxes
    base = ours("infer", conf=MINING_CONF)
    rows.append((f"infer, conf {MINING_CONF} (mining baseline)", base, 1.0))
    mining = {}
    for algorithm in ("random", "entropy", "aldd", "cald"):
        mining[algorithm] = ours("mining", algorithm, conf=MINING_CONF)
        rows.append((f"mining {algorithm}", mining[algorithm], mining[algorithm] / base))

    print(f"\n{args.images} images 640x480, {args.model} (random init), img_size {args.img_size}, CPU, "
          f"median of {args.repeat}")
    print(f"{'command':38} {'seconds':>8} {'ratio':>7}")
    for name, seconds, ratio in rows:
        print(f"{name:38} {seconds:8.2f} {ratio:7.2f}")
    print("ratio: first row vs the reference command; mining rows vs the mining baseline")
    (work / "results.json").write_text(json.dumps({
        "images": args.images, "model": args.model, "img_size": args.img_size,
        "infer_s": t_ours, "reference_s": t_ref, "mining_baseline_s": base, "mining_s": mining}, indent=2))


if __name__ == "__main__":
    main()
