"""``/out/result.tsv`` (protocol §7.3): every candidate, highest score first."""

from __future__ import annotations

import math
from pathlib import Path

from ymir_base.results.atomic import write_text_atomic


def format_mining_result(scores: list[tuple[str, float]]) -> str:
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
    return "".join(f"{asset}\t{score:.8g}\n" for asset, score in rows)


def write_mining_result(path: Path, scores: list[tuple[str, float]]) -> None:
    write_text_atomic(path, format_mining_result(scores))
