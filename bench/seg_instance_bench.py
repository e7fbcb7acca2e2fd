"""Benchmark: instance segmentation (object type 4, YOLOv5-seg) through our executor vs the
``yolov5`` package's own ``segment/predict.py`` on the same images, checkpoint, size and
thresholds; and each instance mining algorithm the image offers, relative to plain infer. Ratios
are measured in one run, on this machine, as whole commands on both sides (process start,
imports, model load, reading images, inference, masks, results).

    .venv/bin/python bench/seg_instance_bench.py [--images 16] [--img-size 640] [--repeat 3]
                                                 [--batch 8 1] [--threads 1] [--weights best.pt]

The checkpoint: ``--weights``, or a random-init yolov5n-seg saved as the trainer saves it
(tests/yolov5seg/seglayer.py ``seg_checkpoint``: batch norms with real statistics and head
biases that give some dozens of detections per image, so masks are made and NMS has no ties).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import sys
from pathlib import Path

from timing import ENV, Commands, Rounds, Timing, exec_run, loaded_pattern, run_timed, timed_with_load

ROOT = Path(__file__).resolve().parents[1]
LOADED = loaded_pattern("ymir_yolov5lib.predictor")
INSTANCE = 4
# segment/predict.py's line per image: "image 3/16 /path/x.jpg: 480x640 2 circles, 1 square, 41.2ms"
PREDICT_LINE = re.compile(r"^image \d+/\d+ .*?: \d+x\d+ (.*?)(?:\(no detections\), )?[\d.]+ms$", re.M)


def detections_in_log(log: str) -> list[int]:
    """Detections per image from segment/predict.py's log (its per-class counts summed)."""
    return [sum(int(n) for n in re.findall(r"(\d+) [^,]+, ", m.group(1))) for m in PREDICT_LINE.finditer(log)]


def masks_in_labels(labels: Path, names: list[str]) -> tuple[int, int]:
    """(detections, non-empty masks) in segment/predict.py's ``--save-txt`` label files: a line
    per detection, its polygon after the class id, nothing after it when the mask is empty."""
    detections = masks = 0
    for name in names:
        path = labels / f"{Path(name).stem}.txt"
        for line in path.read_text().splitlines() if path.is_file() else []:
            detections += 1
            masks += len(line.split()) > 1
    return detections, masks


def masks_in_result(infer_result: Path) -> int:
    """Instances (each a non-empty mask) in our COCO infer-result.json."""
    return len(json.loads(infer_result.read_text())["annotations"])


def instance_miners(image: str) -> tuple[str, ...]:
    """The mining algorithms the image's params offer for object type 4."""
    from ymir_base.engine.registry import backend_class

    cls = backend_class(image)
    return cls.miners_for(cls.kind_for(INSTANCE))


def random_checkpoint(folder: Path) -> Path:
    sys.path.insert(0, str(ROOT / "tests" / "yolov5seg"))
    from seglayer import seg_checkpoint

    return seg_checkpoint(folder)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--image", default="seg-in-one", help="the image serving object type 4")
    parser.add_argument("--images", type=int, default=16, help="generated 640x480 / 480x640 instance images")
    parser.add_argument("--img-size", type=int, default=640)
    parser.add_argument("--conf", type=float, default=0.25)
    parser.add_argument("--iou", type=float, default=0.45)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--batch", type=int, nargs="+", default=[8, 1],
                        help="our batch_size_per_gpu values; the first one also runs the mining rows")
    parser.add_argument("--workers", type=int, default=2, help="our num_workers_per_gpu (image reading threads)")
    parser.add_argument("--threads", type=int, default=1,
                        help="OMP_NUM_THREADS / MKL_NUM_THREADS of every command (0: torch's default)")
    parser.add_argument("--weights", help="a YOLOv5-seg best.pt (default: random init, see above)")
    parser.add_argument("--out", default=str(ROOT / "bench-out" / "seg-instance"), help="work folder")
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    from ymir_yolov5lib import runtime

    runtime.prepare()  # both sides run offline and may unpickle .pt files, as our layer's processes do
    ENV.update(os.environ)
    if args.threads:
        ENV.update(OMP_NUM_THREADS=str(args.threads), MKL_NUM_THREADS=str(args.threads))
    from ymir_base.sample.generator import generate

    work = Path(args.out)
    given = Path(args.weights).read_bytes() if args.weights else None  # before the work folder goes
    shutil.rmtree(work, ignore_errors=True)
    model_dir = work / "model" / "best"
    if given is not None:
        model_dir.mkdir(parents=True)
        (model_dir / "best.pt").write_bytes(given)
        weights = model_dir / "best.pt"
    else:
        weights = random_checkpoint(model_dir)
    common = {"img_size": args.img_size, "conf_thres": args.conf, "iou_thres": args.iou,
              "num_workers_per_gpu": args.workers}
    folders = {task: generate(work / f"in-{task}", task=task, object_type="instance", fmt="coco",
                              images=args.images, seed=7, size=(640, 480), models={"best": model_dir},
                              extra_config=common)
               for task in ("infer", "mining")}  # same seed: the same images
    names = [line.rsplit("/", 1)[-1] for line in (folders["infer"] / "candidate-index.tsv").read_text().split()]
    flat = work / "flat"  # segment/predict.py reads a folder of images
    flat.mkdir()
    for line in (folders["infer"] / "candidate-index.tsv").read_text().split():
        (flat / line.rsplit("/", 1)[-1]).symlink_to(folders["infer"] / line.removeprefix("/in/"))
    masks: dict[str, int] = {}  # our infer rows: instances in infer-result.json, last round
    logged: list[int] = []  # predict.py: detections its log reports, per timed run

    def ours(key: str, task: str, batch: int, algorithm: str | None = None) -> Timing:
        out = work / f"out-{key.replace(' ', '-')}"
        shutil.rmtree(out, ignore_errors=True)
        sets = {"batch_size_per_gpu": batch, **({"mining_algorithm": algorithm} if algorithm else {})}
        timing, _ = timed_with_load(exec_run(args.image, folders[task], out, sets), LOADED)
        if task == "infer":
            masks[key] = masks_in_result(out / "infer-result.json")
        return timing

    predict = [sys.executable, "-m", "yolov5.segment.predict", "--weights", str(weights), "--source", str(flat),
               "--imgsz", str(args.img_size), "--conf-thres", str(args.conf), "--iou-thres", str(args.iou),
               "--max-det", "300", "--device", "cpu", "--retina-masks", "--project", str(work / "predict"),
               "--name", "run", "--exist-ok", "--nosave"]  # max-det: our predictor's cap

    def reference() -> Timing:
        wall, cpu, _, log = run_timed(predict, merge_stderr=True)
        counts = detections_in_log(log)
        if len(counts) != args.images:
            sys.exit(f"segment/predict.py logged {len(counts)} images, not {args.images}:\n{log[-3000:]}")
        logged.append(sum(counts))
        return Timing(wall, cpu, None)

    base = args.batch[0]
    commands: Commands = {}
    for b in args.batch:
        commands[f"infer b{b}"] = (f"infer (ours, batch {b})", "predict",
                                   lambda b=b: ours(f"infer b{b}", "infer", b))
    commands["predict"] = ("yolov5 segment/predict.py (reference, batch 1)", "predict", reference)
    miners = instance_miners(args.image)
    for algorithm in miners:
        commands[algorithm] = (f"mining {algorithm} (batch {base})", f"infer b{base}",
                               lambda a=algorithm: ours(f"mining {a}", "mining", base, a))
    labelled = predict_labels([*predict, "--save-txt"], work / "predict" / "run" / "labels", names)
    rounds = Rounds(commands, args.repeat)

    n = args.images
    print(f"\n{args.image} instance, yolov5n-seg ({args.weights or 'random init'}): {n} images 640x480, img_size "
          f"{args.img_size}, conf {args.conf}, NMS IoU {args.iou}, CPU ({os.cpu_count()} cores, torch threads "
          f"{args.threads or 'default'}), our num_workers_per_gpu {args.workers}, median of {args.repeat}; whole "
          f"commands on both sides; load average {rounds.load_range()}\n")
    column = {key: f"{value / n:.2f}" for key, value in masks.items()} | {"predict": f"{labelled['masks'] / n:.2f}"}
    print(rounds.table("masks/image", column))
    print(f"\nratio: our infer rows vs segment/predict.py; mining rows vs our infer at batch {base}. after model "
          "load: from our predictor's 'loaded' log line to the command's end (predict.py logs no such line). "
          "masks/image: ours, the instances in infer-result.json (each a non-empty mask); predict.py's, the "
          f"detections with a polygon in an untimed --save-txt run ({labelled['detections'] / n:.2f} detections/image "
          "there, empty masks included, which our writer leaves out)")
    problems = [f"{key}: {value} masks, predict.py {labelled['masks']}" for key, value in masks.items()
                if value != labelled["masks"]]
    problems += [f"predict.py's log: {v} detections, its labels {labelled['detections']}" for v in set(logged)
                 if v != labelled["detections"]]
    print("\ninstance counts " + ("agree" if not problems else "DIFFER: " + "; ".join(problems)))
    (work / "results.json").write_text(json.dumps({
        "image": args.image, "weights": args.weights or "random init", "images": n, "img_size": args.img_size,
        "conf": args.conf, "iou": args.iou, "workers": args.workers, "threads": args.threads, "miners": list(miners),
        **rounds.as_dict(), "masks": masks, "predict": {**labelled, "logged_detections": logged},
        "count_problems": problems}, indent=2))


def predict_labels(cmd: list[str], labels: Path, names: list[str]) -> dict[str, int]:
    """An untimed segment/predict.py run with ``--save-txt``: its detections and non-empty masks."""
    shutil.rmtree(labels, ignore_errors=True)
    run_timed(cmd, merge_stderr=True)
    detections, masks = masks_in_labels(labels, names)
    return {"detections": detections, "masks": masks}


if __name__ == "__main__":
    main()
