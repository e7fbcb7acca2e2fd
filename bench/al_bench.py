"""The active-learning benchmark's one command (issue 14).

    .venv/bin/python bench/al_bench.py data {trees,fashion} [--preview OUT.png]
"""

from __future__ import annotations

import argparse
import sys

from al import data


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="al_bench.py", description=__doc__.splitlines()[0])
    subparsers = parser.add_subparsers(dest="command", required=True)
    data.add_parser(subparsers)
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
