"""Benchmark: the mmdet / mmyolo / mmrotate image's infer through our executor vs mmdetection's own
``DetInferencer`` (with mmrotate's scope for rotated RTMDet) on the same images, checkpoint and
config; and each mining algorithm's cost relative to plain infer. Ratios are measured in one run,
on this machine, as whole commands (process start, imports, model load, reading images, inference,
results) on both sides.

    .venv/bin/python bench/openmmlab_bench.py [--image mmdet|mmyolo|mmrotate] [--model yolox_tiny|yolov8_n|...]
                                              [--images 32] [--repeat 3] [--batch 8 1] [--threads 1]

The model package comes from a short training run through our executor on generated data
(``/out/models/best/``: ``best.pth`` + the run's ``config.py``) at the model's own input size, so
inference runs at the size the config was made for (416 px for yolox_tiny, 640 px for yolov8_n; for
mmrotate the template's default img_size, 512 px).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from timing import ENV, Commands, Rounds, Timing, exec_run, loaded_pattern, run_timed, timed_with_load

ROOT = Path(__file__).resolve().parents[1]
ALGORITHMS = ("random", "entropy", "aldd", "cald")
DEFAULT_MODEL = {"mmdet": "yolox_tiny", "mmyolo": "yolov8_n", "mmrotate": "rotated_rtmdet_tiny"}
# the sample data's object type per image (ymir_base.sample.generator)
OBJECT_TYPE = {"mmrotate": "rotated"}
LOADED = loaded_pattern("ymir_openmmlab.predictor")


def model_setting(image: str, model: str) -> dict[str, str]:
    if image == "mmdet":
        return {"config_file": f"configs/yolox/{model}_8x8_300e_coco.py"}
    return {"model_name": model}


def train_package(image: str, model: str, work: Path, epochs: int, settings: dict[str, str]) -> Path:
    """A model package from our executor's training task (no downloads: no baked weights here,
    so it starts from random initialisation). No ``img_size``: the config keeps its own sizes."""
    from ymir_base.sample.generator import generate

    extra = {**model_setting(image, model), "max_epochs": epochs, "samples_per_gpu": 4, "workers_per_gpu": 0,
             **settings}
    in_dir = generate(work / "in-training", task="training", object_type=OBJECT_TYPE.get(image, "detection"),
                      fmt="ark", images=8,
                      seed=3, size=(640, 480), extra_config=extra)
    out = work / "out-training"
    cmd = [sys.executable, "-m", "ymir_base.cli", "run", image, "--in", str(in_dir), "--out", str(out)]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=ENV)
    package = out / "models" / "best"
    if proc.returncode or not (package / "best.pth").is_file() or not (package / "config.py").is_file():
        sys.exit(f"training the model package failed ({proc.returncode}): {' '.join(cmd)}\n"
                 f"{proc.stdout[-4000:]}{proc.stderr[-4000:]}")
    return package


def inferencer_child(argv: list[str]) -> None:
    """The reference side, run as its own process: ``DetInferencer`` with the package's config
    (score and NMS thresholds set like ours) and checkpoint on CPU, batch 1, no drawing, no files. For mmrotate
    it returns the data samples: its ``pred2dict`` cannot list mmrotate's ``RotatedBoxes``."""
    package, scope, conf, iou, images_file, result_file = argv
    t0 = time.perf_counter()
    from mmdet.apis import DetInferencer
    from mmengine.config import Config

    if scope == "mmyolo":
        import mmyolo.utils

        mmyolo.utils.register_all_modules()  # mmyolo's transforms and models in the registries
    if scope == "mmrotate":
        import mmrotate.utils

        mmrotate.utils.register_all_modules(init_default_scope=False)
    cfg = Config.fromfile(str(Path(package) / "config.py"))
    cfg.model.test_cfg.score_thr = float(conf)
    if iou:  # the image sets its NMS threshold (mmrotate's iou_threshold): the same here
        cfg.model.test_cfg.nms.iou_threshold = float(iou)
    inferencer = DetInferencer(model=cfg, weights=str(Path(package) / "best.pth"), device="cpu", scope=scope,
                               show_progress=False)
    t1, loaded_clock = time.perf_counter(), time.time()
    images = Path(images_file).read_text().split()
    import numpy as np

    rotated = scope == "mmrotate"
    out = inferencer(images, batch_size=1, show=False, no_save_vis=True, no_save_pred=True, return_vis=False,
                     return_datasamples=rotated)
    t2 = time.perf_counter()
    predictions = out["predictions"]
    if rotated:
        boxes = [len(p.pred_instances.scores) for p in predictions]
        rboxes = [getattr(p.pred_instances.bboxes, "tensor", p.pred_instances.bboxes).numpy() for p in predictions]
        kept = sum(int(np.isfinite(r).all(axis=1).sum()) for r in rboxes)
    else:
        boxes = [len(p["scores"]) for p in predictions]
        kept = kept_boxes(images, predictions)
    Path(result_file).write_text(json.dumps({
        "images": len(boxes), "boxes": sum(boxes), "kept": kept,
        "load_s": t1 - t0, "infer_s": t2 - t1, "loaded_clock": loaded_clock}))


def kept_boxes(images: list[str], predictions: list[dict[str, Any]]) -> int:
    """How many boxes infer-result.json would hold: clipped to the image and rounded to whole
    pixels, a box of zero width or height is dropped (an untrained model predicts such boxes). A
    rotated box is kept unclipped when it is finite (ymir_base.results.infer)."""
    from PIL import Image

    kept = 0
    for path, pred in zip(images, predictions, strict=True):
        with Image.open(path) as im:
            w, h = im.size
        for x1, y1, x2, y2 in pred["bboxes"]:
            xs = [round(min(max(v, 0.0), w)) for v in (x1, x2)]
            ys = [round(min(max(v, 0.0), h)) for v in (y1, y2)]
            kept += xs[1] > xs[0] and ys[1] > ys[0]
    return kept


def template_value(image: str, task: str, key: str) -> Any:
    """A key of the image's ``img-man/<task>-template.yaml`` (None when absent)."""
    import yaml

    from ymir_base.engine.registry import backend_class

    template = backend_class(image).img_man_dir / f"{task}-template.yaml"
    return (yaml.safe_load(template.read_text()) or {}).get(key)


def boxes_per_image(infer_result: Path) -> float:
    det = json.loads(infer_result.read_text())["detection"]
    return sum(len(v["boxes"]) for v in det.values()) / max(1, len(det))


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--image", default="mmdet", choices=sorted(DEFAULT_MODEL))
    parser.add_argument("--model", help="mmdet: yolox_tiny|yolox_s|...; mmyolo, mmrotate: a model_name (default: "
                                        "yolox_tiny / yolov8_n / rotated_rtmdet_tiny)")
    parser.add_argument("--images", type=int, default=32)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--batch", type=int, nargs="+", default=[8, 1],
                        help="our samples_per_gpu values; the first one also runs the mining rows")
    parser.add_argument("--workers", type=int, default=4, help="our workers_per_gpu (image reading threads)")
    parser.add_argument("--conf", type=float, default=0.2, help="score threshold of the infer comparison")
    parser.add_argument("--mining-conf", type=float, default=0.001,
                        help="score threshold of the mining rows and their infer baseline (the templates' "
                             "mining default is 0.1; rotated NMS at 0.001 costs seconds per image on a CPU)")
    parser.add_argument("--threads", type=int, default=0,
                        help="OMP_NUM_THREADS / MKL_NUM_THREADS of every command (0: torch's default, one per "
                             "core); 1 keeps the numbers steady on a small machine other jobs share")
    parser.add_argument("--train-epochs", type=int, default=1)
    parser.add_argument("--train-set", nargs="*", default=[], metavar="KEY=VALUE",
                        help="more training config keys of the model package's run, e.g. "
                             "'cfg_options=optim_wrapper.optimizer.lr=0.004' (a model that predicts boxes)")
    parser.add_argument("--package", help="use this model package folder (best.pth + config.py) instead of "
                                          "training one")
    parser.add_argument("--out", help="work folder (default: bench-out/openmmlab-IMAGE-MODEL)")
    return parser.parse_args()


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "_inferencer":
        inferencer_child(sys.argv[2:])
        return
    args = parse_args()
    mining_conf = args.mining_conf
    model = args.model or DEFAULT_MODEL[args.image]
    scope = args.image
    if args.threads:
        ENV.update(OMP_NUM_THREADS=str(args.threads), MKL_NUM_THREADS=str(args.threads))
    threads = args.threads or "default"

    from ymir_base.sample.generator import generate
    from ymir_openmmlab.config import load_config, test_size

    work = Path(args.out or ROOT / "bench-out" / f"openmmlab-{args.image}-{model}")
    given = {}
    if args.package:  # read first: it may lie in the work folder of an earlier run
        given = {name: (Path(args.package) / name).read_bytes() for name in ("best.pth", "config.py")}
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    start = time.perf_counter()
    if given:
        package = work / "package"
        package.mkdir()
        for name, data in given.items():
            (package / name).write_bytes(data)
    else:
        package = train_package(args.image, model, work, args.train_epochs,
                                dict(item.split("=", 1) for item in args.train_set))
    size = test_size(load_config(package / "config.py"))
    print(f"model package {package} ({time.perf_counter() - start:.0f} s), inference size {size}", flush=True)

    common = {"workers_per_gpu": args.workers, "img_size": 0}
    # an image whose infer and mining templates set the NMS IoU (mmrotate: the seed's 0.65, not the
    # DOTA config's 0.1) hands the same value to the reference
    iou = template_value(args.image, "infer", "iou_threshold")
    folders = {task: generate(work / f"in-{task}", task=task, object_type=OBJECT_TYPE.get(args.image, "detection"),
                              fmt="ark",
                              images=args.images, seed=7, size=(640, 480), models={"best": package},
                              extra_config=common)
               for task in ("infer", "mining")}  # same seed: the same images
    in_dir = folders["infer"]
    image_list = work / "images.txt"
    image_list.write_text("\n".join(str(in_dir / line.removeprefix("/in/"))
                                    for line in (in_dir / "candidate-index.tsv").read_text().split()) + "\n")
    boxes: dict[str, float] = {}
    child_results: list[dict[str, Any]] = []

    def ours(key: str, task: str, conf: float, batch: int, algorithm: str | None = None) -> Timing:
        out = work / f"out-{key.replace(' ', '-')}"
        shutil.rmtree(out, ignore_errors=True)
        sets = {"conf_threshold": conf, "samples_per_gpu": batch, **({"mining_algorithm": algorithm}
                                                                      if algorithm else {})}
        timing, _ = timed_with_load(exec_run(args.image, folders[task], out, sets), LOADED)
        if task == "infer":
            boxes[key] = boxes_per_image(out / "infer-result.json")
        return timing

    def reference(key: str, conf: float) -> Timing:
        result = work / "inferencer.json"
        wall, cpu, end_clock, _ = run_timed([sys.executable, str(Path(__file__).resolve()), "_inferencer",
                                             str(package), scope, str(conf), str(iou or ""), str(image_list),
                                             str(result)])
        child = json.loads(result.read_text())
        child_results.append({"key": key, **child})
        n = max(1, child["images"])
        boxes[key] = child["kept"] / n
        boxes[f"{key} raw"] = child["boxes"] / n
        return Timing(wall, cpu, end_clock - child["loaded_clock"])

    base_batch = args.batch[0]
    commands: Commands = {}
    for b in args.batch:
        commands[f"infer b{b}"] = (f"infer (ours, batch {b}, conf {args.conf})", "inferencer",
                                   lambda b=b: ours(f"infer b{b}", "infer", args.conf, b))
    commands["inferencer"] = (f"DetInferencer (reference, batch 1, conf {args.conf})", "inferencer",
                              lambda: reference("inferencer", args.conf))
    commands["baseline"] = (f"infer (ours, batch {base_batch}, conf {mining_conf}; mining baseline)",
                            "inferencer low", lambda: ours("baseline", "infer", mining_conf, base_batch))
    commands["inferencer low"] = (f"DetInferencer (reference, batch 1, conf {mining_conf})", "inferencer low",
                                  lambda: reference("inferencer low", mining_conf))
    for algorithm in ALGORITHMS:
        commands[algorithm] = (f"mining {algorithm} (batch {base_batch}, conf {mining_conf})", "baseline",
                               lambda a=algorithm: ours(f"mining {a}", "mining", mining_conf, base_batch, a))
    rounds = Rounds(commands, args.repeat)

    print(f"\n{args.image} {model}: {args.images} images 640x480, inference at {size} px (the config's size), "
          f"NMS IoU {iou or 'of the config'} on both sides, "
          f"CPU ({os.cpu_count()} cores, torch threads {threads}), our workers_per_gpu {args.workers}, "
          f"median of {args.repeat}; whole commands on both sides (process start, imports, model load, "
          f"inference, results); load average during the runs {rounds.load_range()}\n")
    print(rounds.table("boxes/image", {key: f"{value:.1f}" for key, value in boxes.items()}))
    print(f"\nratio: our infer rows vs DetInferencer at the same conf; mining rows vs our infer at conf "
          f"{mining_conf} (mining baseline). after model load: from our predictor's 'loaded' log line, or "
          "the DetInferencer object's construction, to the command's end. boxes/image: as "
          "infer-result.json holds them (a box of zero size after clipping to the image is dropped; "
          f"DetInferencer returned {boxes['inferencer raw']:.1f} at conf {args.conf} and "
          f"{boxes['inferencer low raw']:.1f} at conf {mining_conf} before that)")
    (work / "results.json").write_text(json.dumps({
        "image": args.image, "model": model, "images": args.images, "img_size": size, "conf": args.conf,
        "mining_conf": mining_conf, "workers_per_gpu": args.workers, "threads": threads,
        **rounds.as_dict(), "boxes_per_image": boxes, "inferencer_inside": child_results}, indent=2))


if __name__ == "__main__":
    main()
