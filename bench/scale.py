"""Growth curves: time and peak memory of index and annotation parsing, infer, mining and result
writing as the candidate pool and the index files grow, with the fitted growth exponent.

    .venv/bin/python bench/scale.py                 # pools of 1k/10k/100k, files of 10k/100k/1M lines
    .venv/bin/python bench/scale.py --quick         # 100 and 1000 lines, in-process steps only (seconds)
    .venv/bin/python bench/scale.py --steps infer mining-entropy --pool 1000 10000

Every measurement is one child process, so its peak RSS (``wait4``'s ``ru_maxrss``) is that
step's own. Time must grow linearly (exponent b of t ~ n^b at most 1.1) and memory no faster
than the result the step produces (see ``memory_flag``). The inputs are made once under
``--cache`` (bench/scale_data.py). Tables are printed and written to ``OUT/report.md``, the
numbers to ``OUT/results.json``.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))

from timing import ENV, exec_run  # noqa: E402

MAX_EXPONENT = 1.1
# Bytes per item that a step may hold beyond its result: what keeping one entry per candidate
# costs in Python whatever the entry (a str header of 49 bytes, a dict slot, a float object).
MEMORY_SLACK = 512
MIB = 2**20


@dataclass(frozen=True)
class Step:
    label: str
    sizes: str               # which size list it runs at: "lines", "coco" or "pool"
    task: str = ""           # ymir-exec steps: the task folder's task
    sets: tuple[tuple[str, object], ...] = ()


# the executor steps run yolov5n (random init) at 64 px on 64x64 images; at conf 0.004 it keeps
# 2-3 boxes per image, at 0.001 (the mining conf of bench/infer_bench.py) about 24
_EXEC_SETS = (("img_size", 64), ("batch_size_per_gpu", 32), ("num_workers_per_gpu", 2), ("iou_thres", 0.45))
STEPS = {
    "index-candidates": Step("candidate index (read_candidates)", "lines"),
    "index-train": Step("training index, 2 columns (read_pairs)", "lines"),
    "ark-dataset": Step("training split, ark file per image + image headers (load_split)", "lines"),
    "coco-dataset": Step("training split, one COCO json (load_split)", "coco"),
    "write-infer": Step("infer-result.json writing, 3 boxes/image (write_outputs)", "lines"),
    "write-mining": Step("result.tsv writing (write_outputs)", "lines"),
    "infer": Step("ymir-exec infer, conf 0.004", "pool", "infer", (*_EXEC_SETS, ("conf_thres", 0.004))),
    "mining-random": Step("ymir-exec mining random", "pool", "mining",
                          (*_EXEC_SETS, ("mining_algorithm", "random"))),
    "mining-entropy": Step("ymir-exec mining entropy, conf 0.001", "pool", "mining",
                           (*_EXEC_SETS, ("conf_thres", 0.001), ("mining_algorithm", "entropy"))),
}
FULL = {"lines": (10_000, 100_000, 1_000_000), "coco": (10_000, 100_000, 1_000_000), "pool": (1_000, 10_000, 100_000)}
QUICK = {"lines": (100, 1_000), "coco": (100, 1_000), "pool": (100, 1_000)}
QUICK_STEPS = tuple(name for name, step in STEPS.items() if not step.task)

_LOG_TIME = r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}) INFO "
_STARTED = {"model": re.compile(_LOG_TIME + r"ymir_yolov5lib\.predictor: loaded ", re.M),
            "kind": re.compile(_LOG_TIME + r"ymir: object kind ", re.M)}


@dataclass
class Measurement:
    step: str
    n: int
    seconds: float        # wall seconds of the step's own work (after imports; ymir-exec: after start-up)
    cpu: float            # CPU seconds of the same
    process: float        # wall seconds of the whole child process
    peak_bytes: int       # its peak RSS
    result_bytes: int     # the file it wrote (parsing: the files it read)

    @property
    def micros_per_item(self) -> float:
        return 1e6 * self.seconds / self.n


def fit_exponent(ns: Sequence[float], values: Sequence[float]) -> float:
    """b of ``values ~ c * n^b``: the least-squares slope of log(values) against log(n)."""
    if len(ns) < 2 or min(values) <= 0:
        return math.nan
    return float(np.polyfit(np.log(ns), np.log(values), 1)[0])


def fit_slope(ns: Sequence[float], values: Sequence[float]) -> float:
    """The least-squares slope of ``values`` against ``n`` (per item)."""
    if len(ns) < 2:
        return math.nan
    return float(np.polyfit(np.asarray(ns, float), np.asarray(values, float), 1)[0])


def memory_flag(peak_per_item: float, result_per_item: float) -> bool:
    """Whether the peak RSS grows beyond the result: by more than MEMORY_SLACK bytes per item
    above the result's own bytes per item."""
    return peak_per_item - result_per_item > MEMORY_SLACK


@dataclass
class Growth:
    step: str
    sizes: list[int]
    exponent: float          # b of the wall seconds
    cpu_exponent: float      # b of the CPU seconds (steadier on a shared machine)
    peak_per_item: float     # bytes of peak RSS per item (slope)
    result_per_item: float   # bytes of the result per item (slope)

    @property
    def flags(self) -> list[str]:
        flags = []
        worst = max(self.exponent, self.cpu_exponent)
        if worst > MAX_EXPONENT:
            flags.append(f"time grows as n^{worst:.2f}")
        if memory_flag(self.peak_per_item, self.result_per_item):
            flags.append("memory grows beyond the result")
        return flags


def growth(measurements: Sequence[Measurement]) -> list[Growth]:
    """One Growth per step, over its sizes."""
    out = []
    for step in dict.fromkeys(m.step for m in measurements):
        rows = sorted((m for m in measurements if m.step == step), key=lambda m: m.n)
        ns = [m.n for m in rows]
        out.append(Growth(step, ns, fit_exponent(ns, [m.seconds for m in rows]),
                          fit_exponent(ns, [m.cpu for m in rows]), fit_slope(ns, [m.peak_bytes for m in rows]),
                          fit_slope(ns, [m.result_bytes for m in rows])))
    return out


def _per_1k(bytes_per_item: float) -> str:
    return "-" if math.isnan(bytes_per_item) else f"{bytes_per_item * 1000 / MIB:.3f}"


def tables(measurements: Sequence[Measurement]) -> str:
    """The markdown of both tables: every measurement, then each step's growth."""
    rows = ["| step | n | seconds | CPU s | µs/item | process s | peak MiB | result MiB |",
            "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for m in measurements:
        rows.append(f"| {m.step} | {m.n} | {m.seconds:.3f} | {m.cpu:.3f} | {m.micros_per_item:.1f} | {m.process:.2f} | "
                    f"{m.peak_bytes / MIB:.1f} | {m.result_bytes / MIB:.2f} |")
    rows += ["", "| step | sizes | b (wall) | b (CPU) | peak RSS MiB per 1k items | result MiB per 1k items | "
             "peak beyond result, MiB per 1k | flag |", "|---|---|---:|---:|---:|---:|---:|---|"]
    for g in growth(measurements):
        rows.append(f"| {g.step} | {'/'.join(map(str, g.sizes))} | {g.exponent:.2f} | {g.cpu_exponent:.2f} | "
                    f"{_per_1k(g.peak_per_item)} | {_per_1k(g.result_per_item)} | "
                    f"{_per_1k(g.peak_per_item - g.result_per_item)} | {'; '.join(g.flags) or 'ok'} |")
    return "\n".join(rows)


def _proc_cpu(pid: int) -> float:
    """CPU seconds (user + system, all threads) a live process has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@dataclass
class Child:
    wall: float              # seconds of the whole process
    cpu: float               # its CPU seconds
    peak: int                # its peak RSS, bytes
    end: float               # the wall clock at its end
    cpu_at_marker: float     # its CPU seconds when the marker line appeared in its log (0: no marker)


def _run_child(cmd: list[str], log: Path, env: dict[str, str], marker: re.Pattern[str] | None = None) -> Child:
    """Run one child process, its output to ``log``. ``wait4`` gives the child's own usage; while
    it runs, the log is polled for ``marker`` to take its CPU seconds at that point."""
    cpu_at_marker = 0.0
    with open(log, "w") as out:
        start = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=ROOT)
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            if marker is not None and not cpu_at_marker and marker.search(log.read_text(errors="replace")):
                cpu_at_marker = _proc_cpu(proc.pid)
            time.sleep(0.05)
        wall, end = time.perf_counter() - start, time.time()
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode:
        sys.exit(f"command failed ({proc.returncode}): {' '.join(cmd)}\n{log.read_text()[-6000:]}")
    return Child(wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss * 1024, end, cpu_at_marker)


def _clock(match: re.Match[str]) -> float:
    return datetime.strptime(match.group(1), "%Y-%m-%d %H:%M:%S,%f").timestamp()


def measure(name: str, n: int, cache: Path, work: Path, env: dict[str, str]) -> Measurement:
    import scale_data

    step = STEPS[name]
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    log = work / "log.txt"
    if not step.task:  # inputs made here, so that the child's peak is the step's alone
        {"index-candidates": scale_data.candidate_index, "coco-dataset": scale_data.coco_index}.get(
            name, scale_data.train_index)(cache, n)
        if name.startswith("write-"):
            scale_data.task_folder(cache, "infer" if name == "write-infer" else "mining", 1)
        cmd = [sys.executable, str(ROOT / "bench" / "scale_steps.py"), name, str(n), str(cache), str(work)]
        child = _run_child(cmd, log, env)
        result = json.loads(log.read_text().strip().splitlines()[-1])
        return Measurement(name, n, result["seconds"], result["cpu"], child.wall, child.peak, result["result_bytes"])
    in_dir = scale_data.task_folder(cache, step.task, n)
    out = work / "out"
    marker = _STARTED["kind" if name == "mining-random" else "model"]
    child = _run_child(exec_run("yolov5", in_dir, out, dict(step.sets)), log, env, marker)
    match = marker.search(log.read_text())
    if match is None or not child.cpu_at_marker:
        raise SystemExit(f"{name} {n}: no log line {marker.pattern!r} in {log}")
    result = out / ("infer-result.json" if step.task == "infer" else "result.tsv")
    _check_result(result, n)
    return Measurement(name, n, child.end - _clock(match), child.cpu - child.cpu_at_marker, child.wall, child.peak,
                       result.stat().st_size)


def _check_result(path: Path, n: int) -> None:
    """One entry per candidate, as the protocol wants."""
    if path.suffix == ".tsv":
        with open(path, "rb") as f:
            count = sum(1 for _ in f)
    else:
        count = len(json.loads(path.read_text())["detection"])
    if count != n:
        raise SystemExit(f"{path} holds {count} entries for {n} candidates")


def main(argv: Sequence[str] | None = None) -> list[Measurement]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="sizes 100 and 1000, in-process steps only")
    parser.add_argument("--steps", nargs="+", choices=list(STEPS), help="default: all (--quick: in-process ones)")
    parser.add_argument("--lines", nargs="+", type=int, help="index/annotation sizes (default 10k 100k 1M)")
    parser.add_argument("--coco", nargs="+", type=int, help="COCO images (default: as --lines)")
    parser.add_argument("--pool", nargs="+", type=int, help="candidate pools of ymir-exec (default 1k 10k 100k)")
    parser.add_argument("--cache", type=Path, help="inputs (default ~/.cache/ymir-scale, --quick: OUT/cache)")
    parser.add_argument("--out", type=Path, default=ROOT / "bench-out" / "scale")
    parser.add_argument("--threads", type=int, default=1, help="torch/OpenMP threads of the children")
    parser.add_argument("--reuse", action="store_true", help="keep the measurements of OUT/results.json "
                        "and run only the missing (step, n)")
    args = parser.parse_args(argv)

    sizes = dict(QUICK if args.quick else FULL)
    sizes.update({k: tuple(v) for k, v in (("lines", args.lines), ("coco", args.coco or args.lines),
                                           ("pool", args.pool)) if v})
    steps = args.steps or (QUICK_STEPS if args.quick else tuple(STEPS))
    cache = args.cache or (args.out / "cache" if args.quick else Path.home() / ".cache" / "ymir-scale")
    cache.mkdir(parents=True, exist_ok=True)
    args.out.mkdir(parents=True, exist_ok=True)
    env = {**ENV, **{k: str(args.threads) for k in ("OMP_NUM_THREADS", "MKL_NUM_THREADS")}}
    done: dict[tuple[str, int], Measurement] = {}
    saved = args.out / "results.json"
    if args.reuse and saved.is_file():
        done = {(m["step"], m["n"]): Measurement(**m) for m in json.loads(saved.read_text())["measurements"]}
    measurements = []
    for name in steps:
        for n in sizes[STEPS[name].sizes]:
            m = done.get((name, n)) or measure(name, n, cache, args.out / "work", env)
            measurements.append(m)
            done[(name, n)] = m
            print(f"{name} n={n}: {m.seconds:.3f} s ({m.micros_per_item:.1f} µs/item), peak {m.peak_bytes / MIB:.1f} "
                  f"MiB, result {m.result_bytes / MIB:.2f} MiB, load {os.getloadavg()[0]:.1f}", flush=True)
            saved.write_text(json.dumps({"measurements": [asdict(v) for v in done.values()]}, indent=1))
    shutil.rmtree(args.out / "work", ignore_errors=True)
    text = tables(measurements)
    print("\n" + text)
    steps_text = "\n".join(f"- `{name}`: {STEPS[name].label}" for name in steps)
    (args.out / "report.md").write_text(f"# Growth curves (bench/scale.py)\n\n{steps_text}\n\n{text}\n")
    return measurements


if __name__ == "__main__":
    main()
