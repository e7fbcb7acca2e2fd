"""Benchmark: the seg-in-one image's semantic infer through our executor vs mmsegmentation's own
``MMSegInferencer`` on the same images, checkpoint and config; and each semantic mining
algorithm's cost relative to plain infer. Ratios are measured in one run, on this machine, as
whole commands (process start, imports, model load, reading images, inference, results).

    .venv/bin/python bench/seg_bench.py [--model fast_scnn|fcn_hr18s_40k|...] [--images 16]
                                        [--img-size 512] [--repeat 3] [--batch 4 1] [--threads 1]

The model package comes from a short training run through our executor on generated 640x480
semantic data (``/out/models/best/``: ``best.pth`` + the run's ``config.py``, its sizes scaled by
``--img-size``; 0 keeps the Cityscapes 2048x1024 test scale). Both sides infer with exactly this
package, so both run the config's test pipeline at the same size.
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

from timing import ENV, Commands, Rounds, Timing, exec_run, loaded_pattern, run_timed, timed_with_load

ROOT = Path(__file__).resolve().parents[1]
IMAGE = "seg-in-one"
LOADED = loaded_pattern("ymir_seginone.predictor")


def train_package(model: str, img_size: int, work: Path) -> Path:
    """Two training iterations through our executor (random initialisation: nothing is baked in
    on the host, and speed does not depend on the weights)."""
    from ymir_base.sample.generator import generate
    from ymir_seginone.models import MODELS

    extra = {"config_file": f"configs/{MODELS[model]}", "max_iters": 2, "interval": 2, "img_size": img_size,
             "samples_per_gpu": 2, "workers_per_gpu": 0}
    in_dir = generate(work / "in-training", task="training", object_type="semantic", fmt="coco", images=6, seed=3,
                      size=(640, 480), extra_config=extra)
    out = work / "out-training"
    proc = subprocess.run([sys.executable, "-m", "ymir_base.cli", "run", IMAGE, "--in", str(in_dir), "--out",
                           str(out)], capture_output=True, text=True, env=ENV)
    package = out / "models" / "best"
    if proc.returncode or not (package / "best.pth").is_file():
        sys.exit(f"training the model package failed ({proc.returncode})\n{proc.stdout[-4000:]}{proc.stderr[-4000:]}")
    return package


def inferencer_child(argv: list[str]) -> None:
    """The reference side, as its own process: ``MMSegInferencer`` with the package's config and
    checkpoint on CPU, batch 1, no drawing, no files."""
    package, images_file, result_file = argv
    t0 = time.perf_counter()
    from mmseg.apis import MMSegInferencer

    inferencer = MMSegInferencer(model=str(Path(package) / "config.py"), weights=str(Path(package) / "best.pth"),
                                 device="cpu")
    t1, loaded_clock = time.perf_counter(), time.time()
    images = Path(images_file).read_text().split()
    out = inferencer(images, batch_size=1, show=False, out_dir="")
    predictions = out["predictions"] if isinstance(out["predictions"], list) else [out["predictions"]]
    Path(result_file).write_text(json.dumps({"images": len(predictions), "load_s": t1 - t0,
                                             "infer_s": time.perf_counter() - t1, "loaded_clock": loaded_clock}))


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="fast_scnn", help="a key of ymir_seginone.models.MODELS")
    parser.add_argument("--images", type=int, default=16)
    parser.add_argument("--img-size", type=int, default=512, help="the package's test-scale long side (0: 2048)")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--batch", type=int, nargs="+", default=[4, 1],
                        help="our samples_per_gpu values; the first one also runs the mining rows")
    parser.add_argument("--workers", type=int, default=2, help="our workers_per_gpu (image reading threads)")
    parser.add_argument("--threads", type=int, default=0, help="OMP_NUM_THREADS / MKL_NUM_THREADS of every "
                                                               "command (0: torch's default)")
    parser.add_argument("--out", help="work folder (default: bench-out/seg-MODEL)")
    return parser.parse_args()


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "_inferencer":
        inferencer_child(sys.argv[2:])
        return
    args = parse_args()
    if args.threads:
        ENV.update(OMP_NUM_THREADS=str(args.threads), MKL_NUM_THREADS=str(args.threads))
    from ymir_base.sample.generator import generate
    from ymir_openmmlab.config import load_config, test_size

    work = Path(args.out or ROOT / "bench-out" / f"seg-{args.model}")
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    start = time.perf_counter()
    package = train_package(args.model, args.img_size, work)
    size = test_size(load_config(package / "config.py"))
    print(f"model package {package} ({time.perf_counter() - start:.0f} s), test scale long side {size}", flush=True)
    folders = {task: generate(work / f"in-{task}", task=task, object_type="semantic", fmt="coco", images=args.images,
                              seed=7, size=(640, 480), models={"best": package},
                              extra_config={"workers_per_gpu": args.workers, "fp16": False})
               for task in ("infer", "mining")}  # same seed: the same images
    image_list = work / "images.txt"
    image_list.write_text("\n".join(str(folders["infer"] / line.removeprefix("/in/")) for line in
                                    (folders["infer"] / "candidate-index.tsv").read_text().split()) + "\n")

    def ours(key: str, task: str, batch: int, algorithm: str | None = None) -> Timing:
        out = work / f"out-{key.replace(' ', '-')}"
        shutil.rmtree(out, ignore_errors=True)
        sets = {"samples_per_gpu": batch, **({"mining_algorithm": algorithm} if algorithm else {})}
        return timed_with_load(exec_run(IMAGE, folders[task], out, sets), LOADED)[0]

    def reference() -> Timing:
        result = work / "inferencer.json"
        wall, cpu, end_clock, _ = run_timed([sys.executable, str(Path(__file__).resolve()), "_inferencer",
                                             str(package), str(image_list), str(result)])
        child = json.loads(result.read_text())
        assert child["images"] == args.images, child
        return Timing(wall, cpu, end_clock - child["loaded_clock"])

    base = args.batch[0]
    commands: Commands = {}
    for b in args.batch:
        commands[f"infer b{b}"] = (f"infer (ours, batch {b})", "inferencer",
                                   lambda b=b: ours(f"infer b{b}", "infer", b))
    commands["inferencer"] = ("MMSegInferencer (reference, batch 1)", "inferencer", reference)
    from ymir_seginone.semantic import semantic_miners

    for algorithm in semantic_miners():
        commands[algorithm] = (f"mining {algorithm} (batch {base})", f"infer b{base}",
                               lambda a=algorithm: ours(f"mining {a}", "mining", base, a))
    rounds = Rounds(commands, args.repeat)

    print(f"\nseg-in-one {args.model}: {args.images} images 640x480, test scale long side {size}, CPU "
          f"({os.cpu_count()} cores, torch threads {args.threads or 'default'}), our workers_per_gpu {args.workers}, "
          f"median of {args.repeat}; whole commands on both sides; load average {rounds.load_range()}\n")
    print(rounds.table())
    print(f"\nratio: our infer rows vs MMSegInferencer; mining rows vs our infer at batch {base}. after model load: "
          "from our predictor's 'loaded' log line, or the inferencer's construction, to the command's end.")
    (work / "results.json").write_text(json.dumps({
        "model": args.model, "images": args.images, "img_size": size, "workers_per_gpu": args.workers,
        "threads": args.threads, **rounds.as_dict()}, indent=2))


if __name__ == "__main__":
    main()
