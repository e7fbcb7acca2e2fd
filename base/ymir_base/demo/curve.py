"""The training curve (loss and mAP per epoch) from the scalars a training task writes to
``/out/tensorboard``, as a PNG."""

from __future__ import annotations

from pathlib import Path

Series = dict[str, list[tuple[int, float]]]


def read_scalars(tensorboard_dir: Path) -> Series:
    """Every scalar tag in the folder's event files -> ``[(step, value), ...]`` sorted by step
    (a later event of the same step, e.g. after a resume, replaces the earlier one)."""
    from tensorboard.backend.event_processing.event_accumulator import SCALARS, EventAccumulator

    series: dict[str, dict[int, float]] = {}
    for events in sorted(Path(tensorboard_dir).rglob("events.out.tfevents.*")):
        acc = EventAccumulator(str(events), size_guidance={SCALARS: 0})
        acc.Reload()
        for tag in acc.Tags().get("scalars", []):
            for event in acc.Scalars(tag):
                series.setdefault(tag, {})[int(event.step)] = float(event.value)
    return {tag: sorted(values.items()) for tag, values in sorted(series.items())}


def loss_tags(series: Series) -> list[str]:
    """Training-loss tags (validation losses are left out)."""
    return [t for t in series if "loss" in t.lower() and not t.lower().startswith("val")]


def plot_training_curve(series: Series, map_tag: str, out_png: Path, *, title: str = "") -> Path:
    """Training losses (left axis) and ``map_tag`` (right axis, 0..1) against the epoch."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if map_tag not in series:
        raise KeyError(f"no scalar {map_tag!r} in the training's tensorboard events "
                       f"(found: {', '.join(series) or 'none'})")
    fig, ax = plt.subplots(figsize=(7, 4), dpi=110)
    for tag in loss_tags(series):
        steps, values = zip(*series[tag], strict=True)
        ax.plot(steps, values, label=tag, linewidth=1.2)
    ax.set_xlabel("epoch")
    ax.set_ylabel("training loss")
    ax.grid(alpha=0.3)
    right = ax.twinx()
    steps, values = zip(*series[map_tag], strict=True)
    right.plot(steps, values, color="black", marker="o", markersize=3, linewidth=2, label=map_tag)
    right.set_ylim(0, 1)
    right.set_ylabel(map_tag)
    handles = ax.get_legend_handles_labels()[0] + right.get_legend_handles_labels()[0]
    labels = ax.get_legend_handles_labels()[1] + right.get_legend_handles_labels()[1]
    ax.legend(handles, labels, loc="center left", fontsize=8)
    if title:
        ax.set_title(title, fontsize=10)
    fig.tight_layout()
    out_png = Path(out_png)
    out_png.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out_png)
    plt.close(fig)
    return out_png
