"""What a run of the loop shows: learning curves (mean ± std over seeds, one line per miner), the
table of mAP@0.5 per round, the area under the curve and the gain over random with its spread, the
wall time per round, and a markdown report linking the plots.

The area under the curve is the trapezoid area of mAP@0.5 over the labelled-image count divided by
the count's range: the curve's mean mAP. The gain over random is taken per seed (same initial set,
same round-0 model) and then averaged, so the spread is that of the paired differences.

A run with ``--full-pool`` also has, per seed, a model trained on the whole pool: the level that
labelling everything gives. Each miner's final point is then also read as a share of it (paired
per seed), the figure active-learning papers quote ("93.9 % of full-data performance").
"""

from __future__ import annotations

import json
import statistics
from pathlib import Path
from typing import Any

import numpy as np

REPORT = "report.md"
LOW_LEVEL = 0.05  # below this mAP on every point, the table shows four decimals instead of three


def auc(labelled: list[int], values: list[float]) -> float:
    x, y = np.asarray(labelled, float), np.asarray(values, float)
    if len(x) < 2 or x[-1] == x[0]:
        return float(y.mean()) if len(y) else 0.0
    return float(((y[1:] + y[:-1]) / 2 * np.diff(x)).sum() / (x[-1] - x[0]))


def _mean_std(values: list[float]) -> tuple[float, float]:
    return statistics.fmean(values), statistics.stdev(values) if len(values) > 1 else 0.0


def whole_pool(results: dict[str, Any], metric: str = "map50") -> tuple[int, tuple[float, float]] | None:
    """The whole-pool models' labelled count and ``metric`` (mean, std over seeds), if the run has them."""
    full = results.get("full_pool") or {}
    if not full:
        return None
    return next(iter(full.values()))["labelled"], _mean_std([p[metric] for p in full.values()])


def summarise(results: dict[str, Any], metric: str = "map50") -> dict[str, dict[str, Any]]:
    """Per miner: labelled counts, the mean and std of ``metric`` per round, the AUC and final value
    (mean, std), their gains over random (mean, std over seeds), the final value's share of the
    whole-pool model's (mean, std over the seeds that have both; None without one) and the mean
    seconds per round."""
    curves = results["curves"]
    full = {s: p[metric] for s, p in (results.get("full_pool") or {}).items() if p[metric] > 0}
    random = curves.get("random", {})
    summary = {}
    for miner, seeds in curves.items():
        runs = [seeds[s] for s in sorted(seeds, key=int)]
        labelled = [p["labelled"] for p in runs[0]]
        per_round = [[run[r][metric] for run in runs] for r in range(len(labelled))]
        aucs = {s: auc(labelled, [p[metric] for p in seeds[s]]) for s in seeds}
        finals = {s: seeds[s][-1][metric] for s in seeds}
        paired = [s for s in seeds if s in random]
        gain_auc = [aucs[s] - auc(labelled, [p[metric] for p in random[s]]) for s in paired]
        gain_final = [finals[s] - random[s][-1][metric] for s in paired]
        shares = [finals[s] / full[s] for s in seeds if s in full]
        seconds: dict[str, float] = {}
        for run in runs:
            for point in run[1:]:
                for key, value in point["seconds"].items():
                    seconds[key] = seconds.get(key, 0.0) + value / (len(runs) * (len(run) - 1))
        redundant = sum(p.get("redundant", 0) for run in runs for p in run[1:]) / len(runs)
        mined = [p.get("tied", False) for run in runs for p in run[1:]]
        summary[miner] = {"labelled": labelled, "rounds": [_mean_std(v) for v in per_round], "redundant": redundant,
                          "tied": (sum(mined), len(mined)),
                          "auc": _mean_std(list(aucs.values())), "final": _mean_std(list(finals.values())),
                          "gain_auc": _mean_std(gain_auc) if gain_auc else None,
                          "gain_final": _mean_std(gain_final) if gain_final else None,
                          "share_final": _mean_std(shares) if shares else None,
                          "seconds": seconds, "seeds": len(runs)}
    return summary


def step_seconds(results: dict[str, Any]) -> float:
    """Every step's seconds summed (a seed's round 0 once, though every miner's curve starts with it).
    Unlike the wall time of one invocation, this is the run's cost however often it was resumed and
    however many jobs ran at once."""
    points: dict[tuple[str, ...], dict[str, Any]] = {}
    for miner, seeds in results["curves"].items():
        for seed, run in seeds.items():
            points[(seed, "round0")] = run[0]
            points.update({(seed, miner, str(r)): point for r, point in enumerate(run[1:], 1)})
    points.update({(seed, "full-pool"): point for seed, point in (results.get("full_pool") or {}).items()})
    return sum(sum(point["seconds"].values()) for point in points.values())


def plot(results: dict[str, Any], out_png: Path, metric: str = "map50") -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    summary = summarise(results, metric)
    fig, ax = plt.subplots(figsize=(6.4, 4.2), dpi=110)
    for miner, s in summary.items():
        mean = np.array([m for m, _ in s["rounds"]])
        std = np.array([d for _, d in s["rounds"]])
        line, = ax.plot(s["labelled"], mean, marker="o", label=f"{miner} (AUC {s['auc'][0]:.3f}, {s['seeds']} seeds)",
                        linestyle="--" if miner == "random" else "-")
        ax.fill_between(s["labelled"], mean - std, mean + std, alpha=0.15, color=line.get_color())
    reference = whole_pool(results, metric)
    if reference:
        count, (level, spread) = reference
        ax.axhline(level, color="0.4", linestyle=":", label=f"whole pool labelled ({count} images)")
        ax.axhspan(level - spread, level + spread, color="0.4", alpha=0.1)
    data = results["dataset"]
    ax.set_xlabel("labelled images")
    ax.set_ylabel("mAP@0.5 on the test set" if metric == "map50" else "mAP@0.5:0.95 on the test set")
    # a run cut short has fewer finished seeds for some miners than the plan names: the legend says
    ax.set_title(f"{results['plan']['image']} on {data['name']}: mean ± std over the finished seeds", fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    out_png.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out_png)
    plt.close(fig)
    return out_png


def table(results: dict[str, Any], metric: str = "map50") -> str:
    summary = summarise(results, metric)
    labelled = next(iter(summary.values()))["labelled"]
    reference = whole_pool(results, metric)
    head = ("| miner | " + " | ".join(f"L={n}" for n in labelled)
            + " | AUC | gain AUC vs random | gain final vs random |" + (" final / whole pool |" if reference else "")
            + " near-duplicate picks | tied rankings | s/round (mine+train+eval) | seeds |")
    rows = [head, "|---|" + "---:|" * (len(labelled) + 7 + bool(reference))]
    # a model that barely detects (mAP@0.5 near 0.01) shows its differences only in the fourth decimal
    n = 4 if max(m for s in summary.values() for m, _ in s["rounds"]) < LOW_LEVEL else 3
    for miner, s in summary.items():
        cells = [f"{m:.{n}f} ± {d:.{n}f}" for m, d in s["rounds"]]
        gains = [("-" if g is None or miner == "random" else f"{g[0]:+.{n}f} ± {g[1]:.{n}f}")
                 for g in (s["gain_auc"], s["gain_final"])]
        if reference:
            share = s["share_final"]
            gains.append("-" if share is None else f"{100 * share[0]:.0f} ± {100 * share[1]:.0f} %")
        per_round = sum(s["seconds"].values())
        parts = "+".join(f"{s['seconds'].get(k, 0):.0f}" for k in ("mine", "train", "eval"))
        rows.append(f"| {miner} | " + " | ".join(cells) + f" | {s['auc'][0]:.{n}f} ± {s['auc'][1]:.{n}f} | "
                    + " | ".join(gains) + f" | {s['redundant']:.1f} | {s['tied'][0]}/{s['tied'][1]} "
                    f"| {per_round:.0f} ({parts}) | {s['seeds']} |")
    if reference:
        count, (level, spread) = reference
        seeds = len(results["full_pool"])
        rows += ["", f"Whole pool labelled ({count} images): {level:.{n}f} ± {spread:.{n}f} over {seeds} "
                     f"seed{'s' * (seeds > 1)}."]
    return "\n".join(rows)


def write_report(root: Path) -> Path:
    """``root/report.md`` (and a curve PNG next to each results.json) for every run under ``root``."""
    root = Path(root)
    sections = ["# Active-learning benchmark runs", "",
                "mAP@0.5 on the held-out test set after each round (mean ± std over seeds); AUC: the curve's "
                "mean mAP@0.5 over the labelled counts; gains are paired per seed against random; near-duplicate "
                "picks: picks per run that share a near-duplicate group with a labelled image or an earlier pick; tied "
                "rankings: mining steps where every candidate got the same score (the picks are then the "
                "candidate index's order, asset ids: as by chance). "
                "Made by `bench/al_bench.py report`.", ""]
    found = sorted(root.rglob("results.json"))
    for path in found:
        results = json.loads(path.read_text(encoding="utf-8"))
        png = plot(results, path.parent / "curve.png")
        plan, data = results["plan"], results["dataset"]
        derived = " (derived data)" if data.get("derived") else ""
        sections += [f"## {plan['image']} on {data['name']}{derived}", "",
                     f"pool {data['pool']}, test {data['test']} images, classes {len(data['classes'])}; initial "
                     f"{plan['initial']}, k {plan['k']}, {plan['rounds']} rounds, seeds {plan['seeds']}, scale "
                     f"{plan['scale']}; training {_settings(results['settings']['training'])}; every step's "
                     f"time summed {step_seconds(results) / 60:.0f} min, the last invocation's wall time "
                     f"{results['seconds'] / 60:.0f} min.", "",
                     f"![curve]({png.relative_to(root)})", "", table(results), ""]
    if not found:
        sections.append("No results.json under this folder yet.")
    out = root / REPORT
    out.write_text("\n".join(sections) + "\n", encoding="utf-8")
    return out


def _settings(training: dict[str, Any]) -> str:
    return ", ".join(f"{k} {v}" for k, v in training.items() if k != "args_options")
