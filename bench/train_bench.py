"""Benchmark: training through our executor vs the library's own train command on the same data,
model, input size, batch, epochs and hyper-parameters, as ratios measured in one run. Whole
commands on both sides (process start, imports, data preparation, training, validation every
epoch, checkpoints, what each writes at the end), each at two or more epoch counts, so the
per-epoch cost (the slope) and the fixed part are told apart.

    .venv/bin/python bench/train_bench.py [--image yolov5|mmdet|mmyolo] [--model yolov5n|yolox_tiny|yolov8_n]
                                          [--images 32] [--val-images 8] [--img-size 320] [--batch 8]
                                          [--epochs-list 1,3] [--repeat 2] [--threads 1]

Ours: ``ymir-exec run IMAGE`` on a training /in of generated 640x480 sample images (the sample
writer, as the other benchmarks), random initialisation (no weights on the host), no loader
workers. Reference: yolov5's ``python -m yolov5.train`` with the options our trainer logged, on a
copy of the YOLO dataset our executor wrote; mmdet's / mmyolo's ``tools/train.py`` on the config
our executor ran (bench/train_reference.py).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

import train_reference as ref
from timing import ENV, Commands, Rounds, Timing, exec_run, run_timed

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_MODEL = {"yolov5": "yolov5n", "mmdet": "yolox_tiny", "mmyolo": "yolov8_n"}
# yolov5's export prints its own duration (model load included)
EXPORT_LINE = re.compile(r"Export complete \(([\d.]+)s\)")


def our_settings(image: str, model: str, img_size: int, batch: int) -> dict[str, Any]:
    """The training config keys of our run (the epochs are set per command)."""
    if image == "yolov5":
        return {"model": model, "img_size": img_size, "batch_size_per_gpu": batch, "num_workers_per_gpu": 0}
    key = {"config_file": f"configs/yolox/{model}_8x8_300e_coco.py"} if image == "mmdet" else {"model_name": model}
    return {**key, "img_size": img_size, "samples_per_gpu": batch, "workers_per_gpu": 0}


def epochs_key(image: str) -> str:
    return "epochs" if image == "yolov5" else "max_epochs"


def epoch_fit(points: Mapping[int, float]) -> tuple[float, float]:
    """(seconds per epoch, fixed seconds) of the least-squares line t = fixed + slope * E through
    the (epochs, seconds) points; with two points the slope is (t(E2) - t(E1)) / (E2 - E1)."""
    if len(points) < 2:
        raise ValueError(f"the fit needs two or more epoch counts, not {sorted(points)}")
    epochs = np.array(list(points), dtype=float)
    seconds = np.array(list(points.values()), dtype=float)
    slope, fixed = np.polyfit(epochs, seconds, 1)
    return float(slope), float(fixed)


def split_indexes(in_dir: Path, train: int) -> None:
    """Make the first ``train`` images of a generated training /in the training set and the rest
    the validation set (the generator validates on the last third)."""
    lines = [line for name in ("train-index.tsv", "val-index.tsv")
             for line in (in_dir / name).read_text().splitlines()]
    if not 0 < train < len(lines):
        raise ValueError(f"{train} training images of {len(lines)} leave no validation image")
    (in_dir / "train-index.tsv").write_text("".join(f"{line}\n" for line in lines[:train]))
    (in_dir / "val-index.tsv").write_text("".join(f"{line}\n" for line in lines[train:]))


def ratio(a: float | None, b: float | None) -> str:
    return f"{a / b:.2f}" if a is not None and b else "-"


def summary(medians: Mapping[str, Mapping[int, Mapping[str, float]]]) -> dict[str, dict[str, dict[str, float]]]:
    """Per side and field (wall, cpu): the total at each epoch count, the per-epoch slope and the
    fixed part. ``medians``: side -> epochs -> field -> median seconds."""
    out: dict[str, dict[str, dict[str, float]]] = {}
    for side, by_epochs in medians.items():
        out[side] = {}
        for field in ("wall", "cpu"):
            points = {e: v[field] for e, v in by_epochs.items()}
            slope, fixed = epoch_fit(points)
            out[side][field] = {**{f"total_{e}": t for e, t in points.items()}, "per_epoch": slope, "fixed": fixed}
    return out


def table(fits: Mapping[str, Mapping[str, Mapping[str, float]]], epochs: Sequence[int],
          export: float | None) -> str:
    """The markdown table: ours, the reference and their ratio, wall and CPU seconds."""
    rows = [(f"{e} epoch{'s' * (e != 1)} (whole command)", f"total_{e}") for e in epochs]
    rows += [("per epoch (slope)", "per_epoch"), ("fixed part (intercept)", "fixed")]
    lines = ["| | ours (s) | reference (s) | ratio | ours (CPU s) | reference (CPU s) | ratio |",
             "|---|---:|---:|---:|---:|---:|---:|"]
    for label, key in rows:
        o_wall, r_wall = fits["ours"]["wall"][key], fits["reference"]["wall"][key]
        o_cpu, r_cpu = fits["ours"]["cpu"][key], fits["reference"]["cpu"][key]
        lines.append(f"| {label} | {o_wall:.2f} | {r_wall:.2f} | {ratio(o_wall, r_wall)} | {o_cpu:.2f} | "
                     f"{r_cpu:.2f} | {ratio(o_cpu, r_cpu)} |")
    if export is not None:
        lines.append(f"| ONNX export of the best stage (ours only, in the fixed part) | {export:.2f} | - | - | - | - "
                     "| - |")
    return "\n".join(lines)


def yolov5_results(run: Path) -> list[list[float]]:
    """The rows of yolov5's results.csv (losses, metrics and learning rates of every epoch)."""
    return [[float(v) for v in line.split(",")] for line in (run / "results.csv").read_text().splitlines()[1:]]


def mmengine_losses(work_dir: Path) -> list[list[float]]:
    """The training losses the Runner logged (vis_data/scalars.json of its run), one row."""
    losses = []
    for path in sorted(work_dir.glob("*/vis_data/scalars.json")):
        for line in path.read_text().splitlines():
            record = json.loads(line)
            if "loss" in record:
                losses.append(float(record["loss"]))
    return [losses]


def same_training(a: list[list[float]], b: list[list[float]], rtol: float = 0.05) -> bool:
    """Whether two runs logged the same numbers, epoch for epoch, up to ``rtol``. Not exactly the
    same: yolov5's albumentations step (blur, CLAHE... on about 4 % of the images) draws from
    an unseeded generator (albumentations 1.4's Compose without a seed), so two runs of the same
    command differ by a few per cent in their losses; the work done is the same."""
    return (len(a) == len(b) > 0 and all(len(x) == len(y) for x, y in zip(a, b, strict=True))
            and all(np.allclose(x, y, rtol=rtol, atol=1e-4) for x, y in zip(a, b, strict=True)))


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--image", default="yolov5", choices=sorted(DEFAULT_MODEL))
    parser.add_argument("--model", help="yolov5: yolov5n|yolov5s|...; mmdet: yolox_tiny|...; mmyolo: a model_name "
                                        "(default: yolov5n / yolox_tiny / yolov8_n)")
    parser.add_argument("--images", type=int, default=32, help="generated 640x480 / 480x640 training images")
    parser.add_argument("--val-images", type=int, default=8, help="generated validation images")
    parser.add_argument("--img-size", type=int, default=320)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--epochs-list", default="1,3", help="comma-separated epoch counts (two or more)")
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--threads", type=int, default=1,
                        help="OMP_NUM_THREADS / MKL_NUM_THREADS of every command (0: torch's default, one per "
                             "core); 1 keeps the numbers steady on a small machine other jobs share")
    parser.add_argument("--out", help="work folder (default: bench-out/train-IMAGE)")
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    model = args.model or DEFAULT_MODEL[args.image]
    epochs = sorted({int(e) for e in args.epochs_list.split(",")})
    if len(epochs) < 2 or epochs[0] < 1:
        sys.exit(f"--epochs-list needs two or more epoch counts of at least 1, not {args.epochs_list!r}")
    if args.image == "yolov5":
        from ymir_yolov5lib import runtime

        runtime.prepare()  # both sides offline and unpickling .pt files, as our layer's processes do
        ENV.update(os.environ)
    if args.threads:
        ENV.update(OMP_NUM_THREADS=str(args.threads), MKL_NUM_THREADS=str(args.threads))
    threads = args.threads or "default"
    from ymir_base.sample.generator import generate

    work = Path(args.out or ROOT / "bench-out" / f"train-{args.image}").absolute()
    shutil.rmtree(work, ignore_errors=True)
    in_dir = generate(work / "in", task="training", object_type="detection", fmt="ark",
                      images=args.images + args.val_images, seed=3, size=(640, 480),
                      extra_config=our_settings(args.image, model, args.img_size, args.batch))
    split_indexes(in_dir, args.images)
    logs: dict[int, str] = {}
    exports: list[float] = []
    same: dict[int, bool] = {}
    ref_data: list[Path] = []  # the reference's copy of our YOLO dataset, made once

    def ours(e: int) -> Timing:
        out = work / f"out-{e}"
        shutil.rmtree(out, ignore_errors=True)
        wall, cpu, _, log = run_timed(exec_run(args.image, in_dir, out, {epochs_key(args.image): e}),
                                      merge_stderr=True)
        logs[e] = log
        exports.extend(float(m) for m in EXPORT_LINE.findall(log))
        return Timing(wall, cpu, None)

    def reference(e: int) -> Timing:
        """Prepared from our run of the same epochs (earlier in the round), outside the timing."""
        out, ours_out = work / f"ref-{e}", work / f"out-{e}"
        shutil.rmtree(out, ignore_errors=True)
        if args.image == "yolov5":
            if not ref_data:
                ref_data.append(ref.copy_yolo_dataset(ours_out / "work" / "yolo-data", work / "ref-data"))
            ref.clear_label_caches(ref_data[0].parent)
            cmd = ref.yolov5_command(ref.logged_options(logs[e]), ref_data[0], out)
        else:
            config = ref.openmmlab_config(ours_out / "work" / "mmengine" / "config.py", work / f"ref-config-{e}.py",
                                          out, out / "tensorboard")
            cmd = ref.openmmlab_command(args.image, config, out)
        wall, cpu, _, _ = run_timed(cmd, merge_stderr=True)
        if args.image == "yolov5":
            ours_run = ours_out / "work" / "yolov5" / "train"
            same[e] = same_training(yolov5_results(out / "train"), yolov5_results(ours_run))
        else:
            same[e] = same_training(mmengine_losses(out), mmengine_losses(ours_out / "work" / "mmengine"))
        return Timing(wall, cpu, None)

    commands: Commands = {}
    for e in epochs:
        commands[f"ours {e}"] = (f"ours, {e} epochs", f"reference {e}", lambda e=e: ours(e))
        commands[f"reference {e}"] = (f"reference, {e} epochs", f"reference {e}", lambda e=e: reference(e))
    rounds = Rounds(commands, args.repeat)

    medians = {side: {e: {f: rounds.median(f"{side} {e}", f) for f in ("wall", "cpu")} for e in epochs}
               for side in ("ours", "reference")}
    fits = summary(medians)
    export = statistics.median(exports) if exports else None
    reference_name = "python -m yolov5.train" if args.image == "yolov5" else f"{args.image}'s tools/train.py"
    print(f"\n{args.image} {model}: {args.images} training + {args.val_images} validation images 640x480, img_size "
          f"{args.img_size}, batch {args.batch}, no loader workers, random initialisation, validation every epoch "
          f"on both sides; CPU ({os.cpu_count()} cores, torch threads {threads}); median of {args.repeat}; load "
          f"average during the runs {rounds.load_range()}; reference: {reference_name}\n")
    print(table(fits, epochs, export))
    agree = "the same (within 5 %)" if all(same.values()) else "NOT the same"
    print(f"\nratio: ours / reference. per epoch: the slope of the whole command's seconds over the epoch "
          f"counts {epochs}; fixed part: the line's value at 0 epochs. Both sides trained {agree} "
          f"({'results.csv rows' if args.image == 'yolov5' else 'training losses'} compared): {same}")
    (work / "results.json").write_text(json.dumps({
        "image": args.image, "model": model, "images": args.images, "val_images": args.val_images,
        "img_size": args.img_size, "batch": args.batch, "epochs": epochs, "threads": threads,
        "reference": reference_name, **rounds.as_dict(), "medians": medians, "fits": fits,
        "onnx_export_s": export, "same_training": same}, indent=2))


if __name__ == "__main__":
    main()
