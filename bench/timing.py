"""What the benchmarks share: whole commands timed in rounds, and the medians and ratios of the
printed tables. Every command runs once per round in a fixed order, so all of them see the same
machine state; the ratios are taken within one run."""

from __future__ import annotations

import os
import re
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

# the same environment for both sides; albumentations' update check would add a network wait
ENV = {**os.environ, "NO_ALBUMENTATIONS_UPDATE": "1"}


def loaded_pattern(logger: str) -> re.Pattern[str]:
    """Our predictor's log line once the model is loaded (ymir_base.engine.task.setup_logging's
    format), for the logger ``logger`` (e.g. ``ymir_openmmlab.predictor``)."""
    return re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}) INFO " + re.escape(logger) + ": loaded ", re.M)


@dataclass
class Timing:
    wall: float  # seconds of the whole command
    cpu: float  # user + system seconds of its processes
    after_load: float | None  # seconds from "model loaded" to the command's end (None: no model)


def exec_run(image: str, in_dir: Path | str, out_dir: Path | str, sets: Mapping[str, Any] | None = None) -> list[str]:
    """The command of ``ymir-exec run IMAGE`` on an /in and an /out folder, each of ``sets`` a
    ``--set KEY=VALUE`` override, run by this interpreter."""
    return [sys.executable, "-m", "ymir_base.cli", "run", image, "--in", str(in_dir), "--out", str(out_dir),
            *[x for k, v in (sets or {}).items() for x in ("--set", f"{k}={v}")]]


def run_timed(cmd: list[str], *, merge_stderr: bool = False) -> tuple[float, float, float, str]:
    """Wall seconds, CPU seconds (user + system of the command's processes), the wall clock at
    its end, and its stdout (with stderr when ``merge_stderr``, for tools that log there). On a
    shared machine the CPU seconds are the steadier of the two."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT if merge_stderr else subprocess.PIPE,
                          text=True, env=ENV)
    elapsed, end_clock = time.perf_counter() - start, time.time()
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode:
        sys.exit(f"command failed ({proc.returncode}): {' '.join(cmd)}\n"
                 f"{proc.stdout[-6000:]}{(proc.stderr or '')[-6000:]}")
    return elapsed, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime), end_clock, proc.stdout


def timed_with_load(cmd: list[str], loaded: re.Pattern[str]) -> tuple[Timing, str]:
    """A command of ours: its timing, with the seconds after the ``loaded`` log line, and stdout."""
    wall, cpu, end_clock, stdout = run_timed(cmd)
    match = loaded.search(stdout)
    after = end_clock - datetime.strptime(match.group(1), "%Y-%m-%d %H:%M:%S,%f").timestamp() if match else None
    return Timing(wall, cpu, after), stdout


# label, the key of the command its ratio is taken against, the command
Commands = dict[str, tuple[str, str, Callable[[], Timing]]]


class Rounds:
    """Runs ``commands`` ``repeat`` times in order and keeps every timing and load average."""

    def __init__(self, commands: Commands, repeat: int):
        self.commands = commands
        self.timings: dict[str, list[Timing]] = {k: [] for k in commands}
        self.loads: list[float] = []
        for r in range(repeat):
            for key, (_, _, command) in commands.items():
                t = command()
                self.timings[key].append(t)
                self.loads.append(os.getloadavg()[0])
                after = f", {t.after_load:.1f} s after model load" if t.after_load is not None else ""
                print(f"round {r + 1}/{repeat} {key}: {t.wall:.1f} s{after}, {t.cpu:.1f} CPU s, "
                      f"load {self.loads[-1]:.1f}", flush=True)

    def median(self, key: str, field: str) -> float | None:
        values = [getattr(t, field) for t in self.timings[key]]
        return statistics.median(values) if None not in values else None

    def ratio(self, key: str, field: str) -> str:
        """The median of ``key`` over the median of the command it is compared with."""
        a, b = self.median(key, field), self.median(self.commands[key][1], field)
        return f"{a / b:.2f}" if a is not None and b else "-"

    def load_range(self) -> str:
        return f"{min(self.loads):.1f}-{max(self.loads):.1f}"

    def table(self, column: str = "", values: dict[str, str] | None = None) -> str:
        """The markdown table, with one more ``column`` filled from ``values`` (by key) if named."""
        values = values or {}
        head = "| command | seconds | ratio | after model load (s) | ratio | CPU seconds |"
        rows = [head + f" {column} |" * bool(column), "|---|---:|---:|---:|---:|---:|" + "---:|" * bool(column)]
        for key, (label, _, _) in self.commands.items():
            wall, after, cpu = (self.median(key, f) for f in ("wall", "after_load", "cpu"))
            row = (f"| {label} | {wall:.2f} | {self.ratio(key, 'wall')} | {'-' if after is None else f'{after:.2f}'} | "
                   f"{self.ratio(key, 'after_load')} | {cpu:.2f} |")
            rows.append(row + (f" {values.get(key, '-')} |" * bool(column)))
        return "\n".join(rows)

    def as_dict(self) -> dict[str, object]:
        return {"timings": {k: [vars(t) for t in v] for k, v in self.timings.items()}, "load_average": self.loads}
