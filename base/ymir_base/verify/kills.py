"""Kills at random moments: a real task of an image is SIGKILLed (its whole process group, as
`docker rm -f` stops a container) at K moments drawn from a seeded generator, and after each kill
the ``/out`` it left is held to what YMIR may read at any time:

* every result file present parses completely and is valid: ``models/result.yaml`` (with every
  file it lists, and the weight files at the top of ``models/``), ``infer-result.json``,
  ``result.tsv``; ``result.yaml`` lists only files that exist, none of them a temporary file;
* ``monitor.txt`` is absent, empty or a well-formed running/error line (never state 3).

Then the same task runs again on the same ``/out`` (YMIR restarts a stopped task with the same
id): it must finish (exit 0, monitor at 100 %, results valid), and a training killed after a
stage was saved must resume its run (the trainer says so in its log) instead of starting over.

``bench/kill_bench.py`` runs this for every installed image and kind; tests/kill runs a small K.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ymir_base.engine.registry import backend_class
from ymir_base.sample.generator import generate
from ymir_base.verify import checks

TASKS = ("training", "infer", "mining", "mining+infer")
# what the trainers log when a rerun picks up the killed run of the same task, or finds it done
RESUMED = "resuming the killed run"
ALREADY_FINISHED = "already finished in an earlier run"
WEIGHT_SUFFIXES = (".pt", ".pth")
RUN_TIMEOUT_S = 1800


@dataclass
class Kill:
    """One kill and the rerun after it."""

    moment: float                # seconds after the start at which SIGKILL was sent
    killed: bool                 # False: the task had ended by then (nothing was killed)
    found: str = ""              # what the kill left on /out
    problems: list[str] = field(default_factory=list)         # invariants broken after the kill
    rerun_code: int | None = None
    rerun_problems: list[str] = field(default_factory=list)   # the finished rerun's checks
    resumed: str = "n/a"         # "yes", "no", or "n/a" (no stage was saved before the kill)

    @property
    def rerun_finished(self) -> bool:
        return self.rerun_code == 0 and not self.rerun_problems


@dataclass
class TaskKills:
    """The kills of one image x kind x task."""

    image: str
    kind: str
    task: str
    k: int
    duration: float = 0.0        # seconds the uninterrupted run took (or the estimate used)
    baseline_problems: list[str] = field(default_factory=list)
    kills: list[Kill] = field(default_factory=list)
    skipped: str = ""            # why nothing ran

    @property
    def landed(self) -> int:
        return sum(k.killed for k in self.kills)

    @property
    def invariant_failures(self) -> int:
        return sum(bool(k.problems) for k in self.kills)

    @property
    def reruns_finished(self) -> int:
        return sum(k.rerun_finished for k in self.kills)

    @property
    def resumes(self) -> tuple[int, int]:
        """(resumed, kills after which a resume was due)."""
        due = [k for k in self.kills if k.resumed != "n/a"]
        return sum(k.resumed == "yes" for k in due), len(due)

    @property
    def ok(self) -> bool:
        return (not self.skipped and not self.baseline_problems and self.invariant_failures == 0
                and self.reruns_finished == len(self.kills) and self.resumes[0] == self.resumes[1])


# ---- the invariants ---------------------------------------------------------------------------

def check_monitor_readable(path: Path) -> list[str]:
    """monitor.txt as YMIR's monitor service may read it mid-task: absent (YMIR creates it), empty
    (skipped by the service), or a first line of 4-6 tab-separated fields in the protocol's format
    with state 2 (running) or 4 (error)."""
    if not path.is_file():
        return []
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        return [f"{path.name} is unreadable: {exc}"]
    if not text:
        return []
    first = text.splitlines()[0] if text.splitlines() else ""
    if not checks.MONITOR_LINE.match(first):
        return [f"first line of {path.name} is not 'task_id<TAB>ts<TAB>percent<TAB>state[<TAB>code]': {first!r}"]
    state = int(first.split("\t")[3])
    return [] if state in (2, 4) else [f"{path.name}: state {state} (the executor writes 2 or 4 only)"]


def check_file_complete(path: Path) -> list[str]:
    """A result file whole by its own format: torch's zip checkpoints by their CRCs, JSON and
    YAML by parsing, config.py by compiling, ONNX by its checker; anything else non-empty."""
    name = path.name
    if name.startswith(".") or name.endswith((".tmp", ".part")):
        return [f"{path}: a temporary file is listed as a result"]
    try:
        if path.stat().st_size == 0:
            return [f"{path} is empty"]
        if path.suffix in WEIGHT_SUFFIXES:
            with zipfile.ZipFile(path) as archive:
                bad = archive.testzip()
            return [f"{path}: member {bad} is corrupt"] if bad else []
        if path.suffix == ".json":
            json.loads(path.read_text(encoding="utf-8"))
        elif path.suffix in (".yaml", ".yml"):
            yaml.safe_load(path.read_text(encoding="utf-8"))
        elif path.suffix == ".py":
            compile(path.read_text(encoding="utf-8"), str(path), "exec")
        elif path.suffix == ".onnx":
            return _check_onnx(path)
    except (OSError, ValueError, SyntaxError, yaml.YAMLError, zipfile.BadZipFile) as exc:
        return [f"{path} is incomplete or invalid: {type(exc).__name__}: {exc}"]
    return []


def _check_onnx(path: Path) -> list[str]:
    try:
        import onnx
    except ImportError:  # not installed: the size check above is all
        return []
    try:
        onnx.checker.check_model(onnx.load(str(path)))
    except Exception as exc:  # the checker raises its own and protobuf's errors
        return [f"{path} is not a valid ONNX model: {type(exc).__name__}: {exc}"]
    return []


def listed_files(models_dir: Path) -> list[Path]:
    """The files result.yaml lists (stage files where they are, attachments), existing or not;
    empty when result.yaml is absent or unreadable."""
    data = _result_yaml(models_dir)
    paths = []
    for name, stage in (data.get("model_stages") or {}).items():
        files = stage.get("files") if isinstance(stage, dict) else None
        for f in files if isinstance(files, list) else []:
            inside, top = models_dir / str(name) / str(f), models_dir / str(f)
            paths.append(top if top.is_file() and not inside.is_file() else inside)
    for section, names in (data.get("attachments") or {}).items():
        paths += [models_dir / "attachments" / str(section) / str(f) for f in names or []]
    return paths


def check_out(out_dir: Path, *, candidates: list[str], class_names: list[str], kind: str = "detection",
              object_type: int = 2) -> list[str]:
    """The invariants of an ``/out`` that a kill may have cut short at any moment (see the module
    docstring). Every result file that is present must be whole; none has to be present."""
    out_dir = Path(out_dir)
    problems = check_monitor_readable(out_dir / "monitor.txt")
    models = out_dir / "models"
    if (models / "result.yaml").exists():
        problems += checks.check_training_result(models, object_type)
        listed = listed_files(models)
        top = [p for p in models.glob("*") if p.is_file() and p.suffix in WEIGHT_SUFFIXES
               and not p.name.startswith(".")]
        for path in dict.fromkeys(listed + top):
            if path.is_file():
                problems += check_file_complete(path)
    for name, check in (("infer-result.json", lambda p: checks.check_infer_result(p, candidates, class_names, kind)),
                        ("result.tsv", lambda p: checks.check_mining_result(p, candidates))):
        path = out_dir / name
        if path.exists():
            try:
                problems += check(path)
            except (OSError, UnicodeDecodeError, ValueError) as exc:
                problems.append(f"{path} is unreadable: {type(exc).__name__}: {exc}")
    return problems


def check_finished(out_dir: Path, task: str, *, candidates: list[str], class_names: list[str],
                   kind: str = "detection", object_type: int = 2) -> list[str]:
    """What a task that ran to its end must have left: the monitor at 100 %, and its results."""
    out_dir = Path(out_dir)
    problems = checks.check_monitor(out_dir / "monitor.txt")
    problems += check_out(out_dir, candidates=candidates, class_names=class_names, kind=kind,
                          object_type=object_type)
    if task == "training":
        problems += checks.check_training_result(out_dir / "models", object_type, out_dir / "tensorboard")
    if "infer" in task and not (out_dir / "infer-result.json").is_file():
        problems.append("infer-result.json was not written")
    if "mining" in task and not (out_dir / "result.tsv").is_file():
        problems.append("result.tsv was not written")
    return list(dict.fromkeys(problems))


def describe_out(out_dir: Path) -> str:
    """What is on /out, in a few words: monitor percent, stages listed, result files."""
    out_dir = Path(out_dir)
    parts = []
    monitor = out_dir / "monitor.txt"
    if monitor.is_file() and monitor.stat().st_size:
        fields = monitor.read_text(encoding="utf-8", errors="replace").split("\n", 1)[0].split("\t")
        parts.append(f"monitor {fields[2]}" if len(fields) > 2 else "monitor ?")
    stages = stages_listed(out_dir)
    if stages:
        parts.append("stages " + ",".join(stages))
    parts += [name for name in ("infer-result.json", "result.tsv") if (out_dir / name).exists()]
    return "; ".join(parts) or "nothing"


def stages_listed(out_dir: Path) -> list[str]:
    return list(_result_yaml(Path(out_dir) / "models").get("model_stages") or {})


def _result_yaml(models_dir: Path) -> dict[str, Any]:
    """result.yaml as a mapping; empty when it is absent, unreadable or not a mapping (a kill
    may have left anything)."""
    try:
        data = yaml.safe_load((models_dir / "result.yaml").read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return {}
    return data if isinstance(data, dict) else {}


# ---- running and killing ----------------------------------------------------------------------

def task_command(image: str, in_dir: Path, out_dir: Path) -> list[str]:
    """``ymir-exec run`` in a process of its own, as the container's start script runs the task."""
    return [sys.executable, "-m", "ymir_base.cli", "run", image, "--in", str(in_dir), "--out", str(out_dir)]


def run(cmd: list[str], log: Path, kill_at: float | None = None, timeout: float = RUN_TIMEOUT_S) -> tuple[int, float]:
    """Run ``cmd`` in a new session with its output in ``log``; with ``kill_at``, SIGKILL its whole
    process group that many seconds after the start. Returns (exit code, seconds)."""
    log.parent.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    with open(log, "wb") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
                                env={**os.environ, "NO_ALBUMENTATIONS_UPDATE": "1"})  # no network wait
        try:
            try:
                code = proc.wait(kill_at if kill_at is not None else timeout)
            except subprocess.TimeoutExpired:
                if kill_at is None:
                    raise
                os.killpg(proc.pid, signal.SIGKILL)
                code = proc.wait()
        finally:
            with contextlib.suppress(ProcessLookupError):  # data loader workers, a killed run's children
                os.killpg(proc.pid, signal.SIGKILL)
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    return code, time.monotonic() - started


def kill_moments(k: int, duration: float, seed: int | str) -> list[float]:
    """``k`` moments in (2 %, 98 %) of ``duration``, from a generator seeded with ``seed``."""
    rng = random.Random(str(seed))
    return [round(duration * rng.uniform(0.02, 0.98), 2) for _ in range(k)]


@dataclass
class TaskSpec:
    """One task of an image on sample data: its /in and what its outputs are checked against."""

    image: str
    kind: str
    task: str
    in_dir: Path
    candidates: list[str]
    class_names: list[str]
    object_type: int

    def command(self, out_dir: Path) -> list[str]:
        return task_command(self.image, self.in_dir, out_dir)

    def check_out(self, out_dir: Path) -> list[str]:
        return check_out(out_dir, candidates=self.candidates, class_names=self.class_names, kind=self.kind,
                         object_type=self.object_type)

    def check_finished(self, out_dir: Path) -> list[str]:
        return check_finished(out_dir, self.task, candidates=self.candidates, class_names=self.class_names,
                              kind=self.kind, object_type=self.object_type)


def prepare(image: str, kind_name: str, task: str, in_dir: Path, *, images: int = 12,
            settings: dict[str, Any] | None = None, models: dict[str, Path] | None = None) -> TaskSpec:
    """Write the sample /in of ``task`` for the image's kind with the image's quick settings
    (``settings`` replaces them), the model of ``models`` for infer and mining."""
    backend = backend_class(image)
    kind = next((k for k in backend.served() if k.name == kind_name), None)
    if kind is None:
        raise ValueError(f"{image} does not serve {kind_name!r}; it serves {[k.name for k in backend.served()]}")
    if task not in TASKS:
        raise ValueError(f"task {task!r} is not one of {TASKS}")
    quick = backend.quick_settings_for(kind)
    if settings is None:
        settings = dict(quick.get("training" if task == "training" else "infer" if task == "infer" else "mining", {}))
    shutil.rmtree(in_dir, ignore_errors=True)
    generate(in_dir, task=task, object_type=kind.sample, fmt="coco" if kind.name in ("semantic", "instance") else "ark",
             images=images, seed=1, extra_config=settings, models=None if task == "training" else models)
    config = yaml.safe_load((in_dir / "config.yaml").read_text())
    index = in_dir / "candidate-index.tsv"
    candidates = [ln.strip() for ln in index.read_text().splitlines() if ln.strip()] if index.is_file() else []
    return TaskSpec(image, kind.name, task, Path(in_dir), candidates, list(config["class_names"]), kind.object_type)


def kill_task(spec: TaskSpec, work: Path, k: int, *, seed: int | str = 0, duration: float | None = None,
              echo: Any = None) -> TaskKills:
    """Run ``spec`` once uninterrupted to time it (unless ``duration`` is given), then ``k`` times
    from scratch, each SIGKILLed at a seeded random fraction of that time, checked, rerun to its
    end on the same /out and checked again. ``work`` gets baseline/ and kill-<i>/ folders."""
    say = echo or (lambda line: None)
    report = TaskKills(spec.image, spec.kind, spec.task, k)
    if duration is None:
        out = work / "baseline" / "out"
        shutil.rmtree(out.parent, ignore_errors=True)
        code, report.duration = run(spec.command(out), out.parent / "run.log")
        report.baseline_problems = ([f"exit code {code}"] if code else []) + spec.check_finished(out)
        say(f"{spec.image} {spec.kind} {spec.task}: uninterrupted run {report.duration:.1f} s"
            + (f", problems: {report.baseline_problems[:3]}" if report.baseline_problems else ""))
    else:
        report.duration = duration
    for i, moment in enumerate(kill_moments(k, report.duration, f"{seed}/{spec.image}/{spec.kind}/{spec.task}"), 1):
        folder = work / f"kill-{i}"
        shutil.rmtree(folder, ignore_errors=True)
        out = folder / "out"
        code, _ = run(spec.command(out), folder / "run.log", kill_at=moment)
        kill = Kill(moment, killed=code == -signal.SIGKILL)
        kill.found = describe_out(out)
        kill.problems = spec.check_out(out)
        stages_before = stages_listed(out)
        kill.rerun_code, _ = run(spec.command(out), folder / "rerun.log")
        kill.rerun_problems = ([f"exit code {kill.rerun_code}"] if kill.rerun_code else []) + spec.check_finished(out)
        if spec.task == "training" and kill.killed and stages_before:
            text = (folder / "rerun.log").read_text(encoding="utf-8", errors="replace")
            kill.resumed = "yes" if RESUMED in text or ALREADY_FINISHED in text else "no"
        report.kills.append(kill)
        say(f"  kill {i} at {moment:.1f} s ({'killed' if kill.killed else 'had ended'}; on /out: {kill.found}): "
            f"{'ok' if not kill.problems else kill.problems[:3]}; rerun "
            f"{'finished' if kill.rerun_finished else kill.rerun_problems[:3]}; resumed {kill.resumed}")
    return report


def best_stage(out_dir: Path) -> Path | None:
    """The best stage's folder of a finished training's /out (the model for infer and mining)."""
    name = _result_yaml(Path(out_dir) / "models").get("best_stage_name")
    folder = Path(out_dir) / "models" / str(name)
    return folder if name and folder.is_dir() else None


# ---- the report -------------------------------------------------------------------------------

HEADER = ("| image | kind | task | K | T (s) | kills landed | invariant failures | reruns finished | resumed |\n"
          "|---|---|---|---:|---:|---:|---:|---:|---:|\n")


def table(reports: list[TaskKills]) -> str:
    """The summary table, one row per image x kind x task (markdown)."""
    rows = []
    for r in reports:
        if r.skipped:
            rows.append(f"| {r.image} | {r.kind} | {r.task} | {r.k} | - | skipped: {r.skipped} | | | |")
            continue
        resumed, due = r.resumes
        base = " (baseline FAILED)" if r.baseline_problems else ""
        rows.append(f"| {r.image} | {r.kind} | {r.task} | {r.k} | {r.duration:.0f}{base} | {r.landed}/{len(r.kills)} "
                    f"| {r.invariant_failures} | {r.reruns_finished}/{len(r.kills)} | "
                    + (f"{resumed}/{due}" if due else "n/a") + " |")
    return HEADER + "\n".join(rows) + "\n"


def details(reports: list[TaskKills]) -> str:
    """Every kill: moment, what it left on /out, the checks, the rerun (markdown)."""
    lines = ["| image | kind | task | kill | moment (s) | on /out at the kill | checks | rerun | resumed |",
             "|---|---|---|---:|---:|---|---|---|---|"]
    for r in reports:
        for i, kill in enumerate(r.kills, 1):
            moment = f"{kill.moment:.1f}" + ("" if kill.killed else " (had ended)")
            found = "; ".join(kill.problems[:3]).replace("|", "/") if kill.problems else "pass"
            rerun = "finished" if kill.rerun_finished else "; ".join(kill.rerun_problems[:3]).replace("|", "/")
            lines.append(f"| {r.image} | {r.kind} | {r.task} | {i} | {moment} | {kill.found} | {found} | {rerun} "
                         f"| {kill.resumed} |")
        for problem in r.baseline_problems[:3]:
            lines.append(f"| {r.image} | {r.kind} | {r.task} | baseline | | | {problem.replace('|', '/')} | | |")
    return "\n".join(lines) + "\n"
