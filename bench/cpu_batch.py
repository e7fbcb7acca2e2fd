"""Benchmark: the images per forward pass and torch threads an executor should use on a CPU.

For each model, thread count and batch size: the forward pass's CPU seconds per image (user +
system of this process: steady on a shared machine) and its wall seconds per image (the minimum
over rounds: the least disturbed). ``CPU_FORWARD_BATCH`` in ymir_base/engine/device.py is chosen
from this table.

    .venv/bin/python bench/cpu_batch.py [--models yolov5n,yolov5s] [--threads 1,2] [--batches 1,4,16]
"""

from __future__ import annotations

import argparse
import time

import torch


def per_image(net: torch.nn.Module, batch: int, size: int, images: int, rounds: int) -> tuple[float, float]:
    """(CPU seconds, wall seconds) per image of forward passes over ``images`` images."""
    x = torch.rand(batch, 3, size, size)
    passes = max(1, images // batch)
    cpu = wall = float("inf")
    with torch.inference_mode():
        net(x)  # warm-up: allocations, one-time kernel choices
        for _ in range(rounds):
            c, w = time.process_time(), time.perf_counter()
            for _ in range(passes):
                net(x)
            cpu = min(cpu, (time.process_time() - c) / (passes * batch))
            wall = min(wall, (time.perf_counter() - w) / (passes * batch))
    return cpu, wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="yolov5n,yolov5s")
    parser.add_argument("--threads", default="1,2")
    parser.add_argument("--batches", default="1,4,16")
    parser.add_argument("--img-size", type=int, default=640)
    parser.add_argument("--images", type=int, default=16, help="images per round")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()

    from yolov5.models.yolo import Model

    import ymir_yolov5lib  # noqa: F401 - prepares the yolov5 runtime
    from ymir_yolov5lib import models

    print(f"{args.img_size} px, {args.images} images per round, best of {args.rounds}; "
          f"{torch.get_num_threads()} torch threads by default here")
    print("| model | threads | batch | CPU ms / image | wall ms / image |\n|---|---:|---:|---:|---:|")
    for name in args.models.split(","):
        torch.manual_seed(0)
        net = Model(str(models.model_yaml(name)), ch=3, nc=3).eval()
        for threads in (int(t) for t in args.threads.split(",")):
            torch.set_num_threads(threads)
            for batch in (int(b) for b in args.batches.split(",")):
                cpu, wall = per_image(net, batch, args.img_size, args.images, args.rounds)
                print(f"| {name} | {threads} | {batch} | {cpu * 1000:.0f} | {wall * 1000:.0f} |", flush=True)


if __name__ == "__main__":
    main()
