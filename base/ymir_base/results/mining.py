"""``/out/result.tsv`` (protocol §7.3): every candidate, highest score first.

The file is written line by line: for a large pool, building it as one string (then its bytes)
first took several times the file's size on top of the scores."""

from __future__ import annotations

import math
from pathlib import Path

from ymir_base.results.atomic import open_atomic


def _ranked(scores: list[tuple[str, float]]) -> list[tuple[str, float]]:
    rows = []
    for asset, score in scores:
        if any(c.isspace() for c in asset):
            raise ValueError(f"candidate path contains white space: {asset!r}")
        score = float(score)
        if math.isnan(score):
            raise ValueError(f"score of {asset} is NaN")
        rows.append((asset, score))
    # stable sort: equal scores keep candidate order
    rows.sort(key=lambda r: -r[1])
    return rows


def _line(asset: str, score: float) -> str:
    return f"{asset}\t{score:.8g}\n"


def format_mining_result(scores: list[tuple[str, float]]) -> str:
    return "".join(_line(asset, score) for asset, score in _ranked(scores))


def write_mining_result(path: Path, scores: list[tuple[str, float]]) -> None:
    rows = _ranked(scores)  # checked before the file is opened
    with open_atomic(path) as out:
        for asset, score in rows:
            out.write(_line(asset, score))
