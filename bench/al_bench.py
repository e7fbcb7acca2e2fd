"""The active-learning benchmark's one command (issue 14).

    .venv/bin/python bench/al_bench.py data {trees,fashion} [--variant ...] [--preview OUT.png]
    .venv/bin/python bench/al_bench.py run DATASET_DIR --image IMAGE --miners random,entropy,aldd,cald [...]
    .venv/bin/python bench/al_bench.py pretrain SOURCE_DIR --image IMAGE [--scale gpu --model yolov5n]
    .venv/bin/python bench/al_bench.py convert YOLOV5_MODEL_DIR --out MMYOLO_MODEL_DIR
    .venv/bin/python bench/al_bench.py diversity DATASET_DIR --image IMAGE [--weights 0,0.25,0.5,1]
    .venv/bin/python bench/al_bench.py report [OUT]
"""

from __future__ import annotations

import argparse
import sys

from al import commands, data


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="al_bench.py", description=__doc__.splitlines()[0])
    subparsers = parser.add_subparsers(dest="command", required=True)
    data.add_parser(subparsers)
    commands.add_run(subparsers)
    commands.add_pretrain(subparsers)
    commands.add_convert(subparsers)
    commands.add_diversity(subparsers)
    commands.add_report(subparsers)
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
