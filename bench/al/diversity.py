"""The diversity option's effect on a pool with near-duplicates, measured on the rankings alone:
for each miner and diversity weight, one mining task with the same round-0 model (the loop's, so a
run of the same plan reuses it), and the near-duplicate picks in the top 10, 25, 50 and 100 of its
``result.tsv`` (picks sharing a ``group`` with a labelled image or an earlier pick).

Cheap next to learning curves (no training per setting), and what the option is meant to change;
whether fewer near-duplicates also buy mAP is what the loop's curves with ``NAME:WEIGHT`` miners
answer.
"""

from __future__ import annotations

import json
from pathlib import Path

from al.loop import PREFIXES, Loop, Miner
from ymir_base.results.atomic import write_text_atomic

TABLE = "diversity.md"


def study(loop: Loop, seed: int, miners: list[str], weights: list[float]) -> list[dict]:
    """One row per (miner, weight): the near-duplicate picks per prefix and the mining seconds."""
    base = loop.folder / f"seed{seed}"
    labelled = loop.initial_set(seed)
    _, model = loop.train_and_evaluate(base / "round0", seed, labelled, 0, None)
    rows = []
    for name in miners:
        for weight in weights:
            miner = Miner(name, weight)
            done = loop.mine(base / "diversity" / miner.label, model, labelled, miner)
            rows.append({"miner": name, "diversity": weight, "redundant_at": done["redundant_at"],
                         "seconds": done["seconds"]})
    return rows


def table(rows: list[dict], labelled: int, pool: int, groups_in_pool: int) -> str:
    lines = [f"Near-duplicate picks in the top n of each ranking ({labelled} labelled, {pool} unlabelled images, "
             f"{groups_in_pool} images of the pool share a near-duplicate group):", "",
             "| miner | diversity | " + " | ".join(f"top {n}" for n in PREFIXES) + " | mining s |",
             "|---|---:|" + "---:|" * (len(PREFIXES) + 1)]
    for row in rows:
        cells = [str(row["redundant_at"].get(str(n), "-")) for n in PREFIXES]
        lines.append(f"| {row['miner']} | {row['diversity']:g} | " + " | ".join(cells) + f" | {row['seconds']:.0f} |")
    return "\n".join(lines)


def write_study(loop: Loop, seed: int, miners: list[str], weights: list[float]) -> Path:
    rows = study(loop, seed, miners, weights)
    pool = loop.dataset.pool
    sizes: dict[int, int] = {}
    for item in pool.values():
        sizes[item.group] = sizes.get(item.group, 0) + 1
    shared = sum(1 for item in pool.values() if sizes[item.group] > 1)
    labelled = len(loop.initial_set(seed))
    text = table(rows, labelled, len(pool) - labelled, shared)
    out = loop.folder / f"seed{seed}" / TABLE
    write_text_atomic(out, text + "\n")
    write_text_atomic(out.with_suffix(".json"), json.dumps(rows, indent=1))
    return out
