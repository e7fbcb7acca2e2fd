"""Learning run: YOLOv5-seg (yolov5n-seg from random initialisation) trained through our executor
on generated instance data (object type 4) with ``instance_demo_settings``, printing the stage
metrics maskAP and boxAP (mask and box mAP@0.5) of every epoch, the wall and CPU time.

    .venv/bin/python bench/seg_instance_learning.py [--images 96] [--img-size 160] [--epochs 40]
                                                    [--image seg-in-one] [--out DIR]

The data is what ``ymir-exec demo`` trains on: ``--images`` sample images of 160x128 (and 128x160),
seed 1, a third of them for validation. One command, ``ymir-exec run IMAGE`` on a training task,
with every epoch saved as a stage (save_best_only false, save_period 1). result.yaml keeps only the
best and the latest stages (as YMIR's SDK does), so the curve is read from the run's
tensorboard scalars of the same metrics, checked against every stage result.yaml kept.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

import yaml

from timing import ENV

ROOT = Path(__file__).resolve().parents[1]
MASK_TAG, BOX_TAG = "metrics/maskAP_0.5", "metrics/boxAP_0.5"  # InstanceEvaluation.scalars()


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=96, help="sample images, a third of them for validation")
    parser.add_argument("--img-size", type=int, help="img_size (default: instance_demo_settings')")
    parser.add_argument("--epochs", type=int, help="epochs (default: instance_demo_settings')")
    parser.add_argument("--image", default="seg-in-one", help="the image whose backend trains (object type 4)")
    parser.add_argument("--out", default=str(ROOT / "bench-out" / "seg-instance-learning"), help="work folder")
    return parser.parse_args()


def curve(out: Path) -> list[tuple[int, float, float]]:
    """(epoch, maskAP, boxAP) of every epoch, from the run's tensorboard scalars (the stage
    metrics; result.yaml keeps only the best and the latest stages, as YMIR's SDK does)."""
    from ymir_base.demo.curve import read_scalars

    series = read_scalars(out / "tensorboard")
    box = dict(series[BOX_TAG])
    return [(epoch, mask, box[epoch]) for epoch, mask in series[MASK_TAG]]


def stages(result: dict) -> dict[int, tuple[float, float]]:
    """epoch -> (maskAP, boxAP) of the ``epoch_<n>`` stages in result.yaml."""
    found = {}
    for name, stage in (result.get("model_stages") or {}).items():
        match = re.fullmatch(r"epoch_(\d+)", name)
        if match:
            found[int(match.group(1))] = (float(stage["maskAP"]), float(stage["boxAP"]))
    return found


def main() -> None:
    args = parse_args()
    from ymir_base.sample.generator import generate
    from ymir_yolov5lib.segment_demo import instance_demo_settings

    work = Path(args.out)
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    training = instance_demo_settings(work / "settings")["training"]
    if args.img_size:
        training["img_size"] = args.img_size
    if args.epochs:
        training["epochs"] = args.epochs
    training.update(save_best_only=False, save_period=1)
    in_dir = generate(work / "in", task="training", object_type="instance", fmt="coco", images=args.images, seed=1,
                      extra_config=training)
    out = work / "out"
    cmd = [sys.executable, "-m", "ymir_base.cli", "run", args.image, "--in", str(in_dir), "--out", str(out)]
    print(f"{' '.join(cmd)}\nsettings: {json.dumps(training)}", flush=True)
    before, start = resource.getrusage(resource.RUSAGE_CHILDREN), time.perf_counter()
    with open(work / "run.log", "w") as log:
        code = subprocess.run(cmd, stdout=log, stderr=subprocess.STDOUT, env=ENV).returncode
    wall, after = time.perf_counter() - start, resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    if code:
        sys.exit(f"training failed (exit code {code}); see {work / 'run.log'}")
    result = yaml.safe_load((out / "models" / "result.yaml").read_text())
    rows, kept = curve(out), stages(result)
    for epoch, values in kept.items():  # the two records of one evaluation
        if not any(e == epoch and abs(m - values[0]) < 1e-6 and abs(b - values[1]) < 1e-6 for e, m, b in rows):
            sys.exit(f"stage epoch_{epoch} {values} is not the tensorboard's epoch {epoch}")
    print(f"\n{args.image} instance training, {training['model']} from random init, {args.images} images "
          f"({len((in_dir / 'train-index.tsv').read_text().splitlines())} train), img_size {training['img_size']}, "
          f"{training['epochs']} epochs, CPU ({os.cpu_count()} cores); wall {wall:.0f} s, {cpu:.0f} CPU s, load "
          f"average {os.getloadavg()[1]:.1f} (5 min)\n")
    print("| epoch | maskAP | boxAP | stage in result.yaml |\n|---:|---:|---:|---|")
    for epoch, mask, box in rows:
        print(f"| {epoch} | {mask:.3f} | {box:.3f} | {f'epoch_{epoch}' if epoch in kept else ''} |")
    best = result["model_stages"][result["best_stage_name"]]
    print(f"\nbest stage: maskAP {best['maskAP']:.3f}, boxAP {best['boxAP']:.3f}; wall {wall:.0f} s, {cpu:.0f} CPU s")
    (work / "learning.json").write_text(json.dumps({
        "image": args.image, "images": args.images, "settings": training, "wall_s": wall, "cpu_s": cpu,
        "curve": [{"epoch": e, "maskAP": m, "boxAP": b} for e, m, b in rows],
        "best": {"maskAP": best["maskAP"], "boxAP": best["boxAP"]}}, indent=2))


if __name__ == "__main__":
    main()
