"""``ymir-exec verify IMAGE``: sample data -> train -> infer -> mine with every algorithm ->
mining+infer, each output checked against the protocol. One line per check."""

from __future__ import annotations

import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ymir_base.engine.registry import backend_class
from ymir_base.engine.task import run_task
from ymir_base.sample.generator import generate
from ymir_base.verify import checks


@dataclass
class Report:
    lines: list[tuple[bool, str, str]] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)

    def add(self, name: str, problems: list[str]) -> bool:
        self.lines.append((not problems, name, "; ".join(problems[:3])))
        return not problems

    @property
    def ok(self) -> bool:
        return all(ok for ok, _, _ in self.lines)


@dataclass
class Outcome:
    """How one task run ended: its exit code, and any checks the runner itself made, by name."""

    code: int
    problems: dict[str, list[str]] = field(default_factory=dict)


Runner = Callable[[str, Path, Path], Outcome]


def in_process(image: str, in_dir: Path, out_dir: Path) -> Outcome:
    """Run the task in this process (``ymir-exec verify`` without ``--docker``)."""
    return Outcome(run_task(image, in_dir, out_dir))


def candidate_paths(in_dir: Path) -> list[str]:
    """The candidate paths of a sample /in folder, in index order."""
    return [ln.strip() for ln in (in_dir / "candidate-index.tsv").read_text().splitlines() if ln.strip()]


def verify(image: str, work_dir: Path | None = None, *, gpu_id: str = "", images: int = 12,
           overrides: dict[str, Any] | None = None, fmt: str = "ark",
           echo: Callable[[str], None] | None = None, settings: dict[str, dict[str, Any]] | None = None,
           candidates: int | None = None, candidate_seed: int = 1, object_type: int | None = None,
           runner: Runner = in_process) -> Report:
    """``images`` sample images for training (a third for validation) and ``candidates`` (default:
    as many) for infer and mining, drawn with ``candidate_seed`` (1, the training seed, gives the
    training images again). ``settings`` per task default to the backend's ``quick_settings``.
    ``object_type`` picks the entry of the image's task map (default: the first it serves);
    segmentation kinds always use seg-coco data. ``runner`` runs each task: in this process by
    default, or in a container (``verify.container.ContainerRunner``)."""
    backend = backend_class(image)
    kind = backend.kind_for(object_type) if object_type is not None else backend.served()[0]
    if kind.name in ("semantic", "instance"):
        fmt = "coco"
    quick = backend.quick_settings_for(kind) if settings is None else settings
    root = Path(work_dir) if work_dir else Path(tempfile.mkdtemp(prefix=f"ymir-verify-{image}-"))
    report = Report()
    platform = {"gpu_id": gpu_id, "gpu_count": len([g for g in gpu_id.split(",") if g])}

    def step(name: str, task: str, extra: dict[str, Any],
             models: dict[str, Path] | None = None) -> tuple[Path, Path, int]:
        in_dir, out_dir = root / name / "in", root / name / "out"
        for d in (in_dir, out_dir):
            shutil.rmtree(d, ignore_errors=True)
        out_dir.mkdir(parents=True)
        training = task == "training"
        generate(in_dir, task=task, object_type=kind.sample, fmt=fmt,
                 images=images if training or candidates is None else candidates,
                 seed=1 if training else candidate_seed, extra_config={**platform, **extra}, models=models)
        started = time.perf_counter()
        outcome = runner(image, in_dir, out_dir)
        report.timings[name] = time.perf_counter() - started
        before = len(report.lines)
        report.add(f"{name}: exit code 0", [] if outcome.code == 0 else [f"exit code {outcome.code}"])
        report.add(f"{name}: monitor.txt", checks.check_monitor(out_dir / "monitor.txt"))
        for check, problems in outcome.problems.items():
            report.add(f"{name}: {check}", problems)
        if echo:
            for ok, check, detail in report.lines[before:]:
                echo(_line(ok, check, detail))
        return in_dir, out_dir, outcome.code

    def record(name: str, problems: list[str]) -> None:
        report.add(name, problems)
        if echo:
            echo(_line(*report.lines[-1]))

    train_cfg = {**quick.get("training", {}), **(overrides or {})}
    _, train_out, _ = step("training", "training", train_cfg)
    record("training: result.yaml and model files",
           checks.check_training_result(train_out / "models", kind.object_type, train_out / "tensorboard"))
    best = _best_stage_dir(train_out / "models")
    if best is None:
        record("training: a best stage to infer and mine with", ["no stage in result.yaml"])
        return report
    models = {best.name: best}

    in_dir, out_dir, _ = step("infer", "infer", dict(quick.get("infer", {})), models)
    record("infer: infer-result.json", checks.check_infer_result(
        out_dir / "infer-result.json", candidate_paths(in_dir), train_cfg.get("class_names") or class_names_of(in_dir),
        kind.name))
    miners = backend.miners_for(kind)
    for algorithm in miners:
        name = f"mining-{algorithm}"
        in_dir, out_dir, _ = step(name, "mining", {**quick.get("mining", {}), "mining_algorithm": algorithm}, models)
        record(f"{name}: result.tsv", checks.check_mining_result(out_dir / "result.tsv", candidate_paths(in_dir)))
    algorithm = miners[-1]
    in_dir, out_dir, _ = step("mining+infer", "mining+infer",
                              {**quick.get("mining", {}), "mining_algorithm": algorithm}, models)
    record("mining+infer: result.tsv", checks.check_mining_result(out_dir / "result.tsv", candidate_paths(in_dir)))
    record("mining+infer: infer-result.json", checks.check_infer_result(
        out_dir / "infer-result.json", candidate_paths(in_dir), class_names_of(in_dir), kind.name))
    return report


def class_names_of(in_dir: Path) -> list[str]:
    import yaml

    return list(yaml.safe_load((in_dir / "config.yaml").read_text())["class_names"])


def _best_stage_dir(models_dir: Path) -> Path | None:
    import yaml

    path = models_dir / "result.yaml"
    if not path.is_file():
        return None
    best = (yaml.safe_load(path.read_text()) or {}).get("best_stage_name")
    return models_dir / best if best and (models_dir / best).is_dir() else None


def _line(ok: bool, name: str, detail: str) -> str:
    return f"{'PASS' if ok else 'FAIL'}  {name}" + (f"  ({detail})" if detail else "")
