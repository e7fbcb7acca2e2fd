"""``/out/models/result.yaml`` (protocol §7.1), rewritten after every evaluation.

Stages are validated before the file is replaced: names are identifiers, files exist under
``/out/models/<stage>/`` or ``/out/models/``, metrics are plain floats in [0, 1] (a backend whose
evaluator reports percentages converts them with :meth:`TrainingResult.from_percent`; add_stage
never guesses). A stage's full evaluation (every number its evaluator gives) can go with it as
the attachment ``attachments/metrics/<stage>.json``. A hard kill at any moment leaves a valid
file that lists only files that exist.
"""

from __future__ import annotations

import json
import math
import numbers
import re
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ymir_base import faults
from ymir_base.results.atomic import link_or_copy_atomic, write_text_atomic
from ymir_base.tasks.kinds import KINDS

STAGE_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
# stage metrics per YMIR object type, main one first: the task map's (rotated shares type 2's)
METRICS = {kind.object_type: kind.metrics for kind in KINDS.values()}
MAIN_METRIC = {object_type: metrics[0] for object_type, metrics in METRICS.items()}
COUNTS = ("tp", "fp", "fn")
MAX_RECENT_STAGES = 10  # plus the best one, as YMIR's SDK keeps
METRICS_SECTION = "metrics"  # attachments/metrics/<stage>.json: a stage's whole evaluation


@dataclass
class Stage:
    name: str
    files: list[str]
    metrics: dict[str, float]
    timestamp: int = field(default_factory=lambda: int(time.time()))


class TrainingResult:
    def __init__(self, models_dir: Path, object_type: int = 2, result_file: Path | None = None):
        self.models_dir = Path(models_dir)
        self.object_type = object_type
        self.main_metric = MAIN_METRIC.get(object_type, "mAP")
        self.result_file = result_file or self.models_dir / "result.yaml"
        self.stages: dict[str, Stage] = {}
        self.attachments: dict[str, list[str]] = {}
        self.evaluate_config: dict[str, float] = {}
        # the stage the trainer itself calls best wins ties of the main metric
        self.preferred_stage: str | None = None

    # ---- building -------------------------------------------------------------------------
    def stage_dir(self, name: str) -> Path:
        self._check_name(name)
        path = self.models_dir / name
        path.mkdir(parents=True, exist_ok=True)
        return path

    @staticmethod
    def from_percent(value: Any) -> float:
        """A metric its evaluator reports as a percentage in [0, 100] (e.g. mmseg's mIoU 55.1) as
        the fraction YMIR requires (0.551). The caller knows its evaluator's unit and converts
        explicitly; add_stage rejects anything outside [0, 1] instead of guessing."""
        number = float(value)
        if math.isfinite(number) and not 0.0 <= number <= 100.0:
            raise ValueError(f"percentage {number} is outside [0, 100]")
        return number / 100.0

    def add_stage(self, name: str, files: list[str | Path], metrics: dict[str, Any],
                  timestamp: int | None = None, *, details: dict[str, Any] | None = None) -> Stage:
        """Add (or replace) a stage and rewrite result.yaml. ``details``: the stage's whole
        evaluation, written to ``attachments/metrics/<name>.json`` and listed with the stage."""
        self._check_name(name)
        basenames = []
        for f in files:
            base = Path(f).name
            if not ((self.models_dir / name / base).is_file() or (self.models_dir / base).is_file()):
                raise FileNotFoundError(f"stage {name}: file {base} is in neither {self.models_dir / name} "
                                        f"nor {self.models_dir}")
            basenames.append(base)
        if not basenames:
            raise ValueError(f"stage {name} has no files")
        stage = Stage(name, basenames, self._clean_metrics(metrics),
                      int(time.time() if timestamp is None else timestamp))
        if details is not None:
            self._write_details(name, details)
        self.stages.pop(name, None)
        self.stages[name] = stage
        dropped = self._prune()
        self.write()
        for path in dropped:
            path.unlink(missing_ok=True)
        faults.reached(f"stage:{name}")
        return stage

    def remove_stage(self, name: str) -> None:
        """Drop a stage that is no longer kept and delete its folder."""
        if self.stages.pop(name, None) is None:
            return
        dropped = self._drop_details([name])
        self.write()
        shutil.rmtree(self.models_dir / name, ignore_errors=True)
        for path in dropped:
            path.unlink(missing_ok=True)

    def expose_top_level(self, name: str, filename: str) -> None:
        """Link a stage file at the top of /out/models too: the official verifier passes only
        top-level files of /out/models to the next task (protocol §9.5). Replaced atomically."""
        link_or_copy_atomic(self.models_dir / name / filename, self.models_dir / filename)

    def attachment_dir(self, section: str) -> Path:
        path = self.models_dir / "attachments" / section
        path.mkdir(parents=True, exist_ok=True)
        return path

    def add_attachment(self, section: str, files: list[str | Path], *, write: bool = True) -> None:
        """List files of ``attachments/<section>/`` (those that exist) in result.yaml, after the
        ones the section already lists."""
        folder = self.models_dir / "attachments" / section
        names = [Path(f).name for f in files if (folder / Path(f).name).is_file()]
        if names:
            listed = self.attachments.get(section, [])
            self.attachments[section] = listed + [n for n in dict.fromkeys(names) if n not in listed]
            if write:
                self.write()

    def _write_details(self, name: str, details: dict[str, Any]) -> None:
        path = self.attachment_dir(METRICS_SECTION) / f"{name}.json"
        write_text_atomic(path, json.dumps({"stage": name, **_plain(details)}, indent=1, allow_nan=False) + "\n")
        self.add_attachment(METRICS_SECTION, [path], write=False)

    def _drop_details(self, names: list[str]) -> list[Path]:
        """Unlist the metrics attachments of dropped stages; returns their files to delete once
        result.yaml no longer lists them."""
        gone = {f"{n}.json" for n in names}
        listed = self.attachments.get(METRICS_SECTION)
        if not listed or not gone & set(listed):
            return []
        kept = [f for f in listed if f not in gone]
        if kept:
            self.attachments[METRICS_SECTION] = kept
        else:
            del self.attachments[METRICS_SECTION]
        return [self.models_dir / "attachments" / METRICS_SECTION / f for f in listed if f in gone]

    def _clean_metrics(self, metrics: dict[str, Any]) -> dict[str, float | int]:
        clean: dict[str, float | int] = {}
        for key, value in metrics.items():
            if key in COUNTS:
                clean[key] = max(0, int(value))
                continue
            value = float(value)
            if not math.isfinite(value):
                value = 0.0
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"metric {key}={value} is outside [0, 1] (convert a percentage with "
                                 "TrainingResult.from_percent)")
            clean[key] = value
        clean.setdefault(self.main_metric, 0.0)
        return clean

    @staticmethod
    def _check_name(name: str) -> None:
        if not STAGE_NAME.match(name):
            raise ValueError(f"stage name {name!r} is not an identifier ([A-Za-z_][A-Za-z0-9_]*)")

    def best_stage(self) -> Stage | None:
        if not self.stages:
            return None
        return max(self.stages.values(), key=lambda s: (s.metrics.get(self.main_metric, 0.0),
                                                         s.name == self.preferred_stage, s.timestamp))

    def _prune(self) -> list[Path]:
        """Keep the best and the latest stages; returns the metrics attachments to delete."""
        best = self.best_stage()
        recent = sorted(self.stages.values(), key=lambda s: s.timestamp)[-MAX_RECENT_STAGES:]
        keep = {s.name for s in recent} | ({best.name} if best else set())
        dropped = [k for k in self.stages if k not in keep]
        self.stages = {k: v for k, v in self.stages.items() if k in keep}
        return self._drop_details(dropped)

    # ---- output ---------------------------------------------------------------------------
    def as_dict(self) -> dict[str, Any]:
        best = self.best_stage()
        data: dict[str, Any] = {
            "best_stage_name": best.name if best else "",
            self.main_metric: best.metrics.get(self.main_metric, 0.0) if best else 0.0,
            "model_stages": {
                s.name: {"stage_name": s.name, "files": list(s.files), "timestamp": s.timestamp, **s.metrics}
                for s in self.stages.values()
            },
        }
        if self.attachments:
            data["attachments"] = {k: list(v) for k, v in self.attachments.items()}
        if self.evaluate_config:
            data["evaluate_config"] = {k: float(v) for k, v in self.evaluate_config.items()}
        return data

    def write(self) -> None:
        if not self.stages:
            return
        write_text_atomic(self.result_file, yaml.safe_dump(self.as_dict(), sort_keys=False, allow_unicode=True))

    def reload(self) -> None:
        """Take the stages another process (a DDP rank) wrote to result.yaml."""
        fresh = self.load(self.models_dir, self.object_type)
        self.stages, self.attachments = fresh.stages, fresh.attachments
        self.evaluate_config = fresh.evaluate_config or self.evaluate_config

    @classmethod
    def load(cls, models_dir: Path, object_type: int = 2) -> TrainingResult:
        """Re-open an earlier (killed) run's result.yaml, keeping only stages whose files exist."""
        result = cls(models_dir, object_type)
        if not result.result_file.is_file():
            return result
        data = yaml.safe_load(result.result_file.read_text(encoding="utf-8")) or {}
        for name, raw in (data.get("model_stages") or {}).items():
            files = [f for f in raw.get("files", [])
                     if (result.models_dir / name / f).is_file() or (result.models_dir / f).is_file()]
            if files and len(files) == len(raw.get("files", [])) and STAGE_NAME.match(name):
                metrics = {k: v for k, v in raw.items() if k not in ("stage_name", "files", "timestamp")}
                result.stages[name] = Stage(name, files, metrics, int(raw.get("timestamp", 0)))
        for section, names in (data.get("attachments") or {}).items():
            result.add_attachment(str(section), list(names or []), write=False)
        result.evaluate_config = dict(data.get("evaluate_config") or {})
        return result


def _plain(value: Any) -> Any:
    """JSON-ready: numpy/torch scalars as floats, NaN/inf as null."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if value is None or isinstance(value, bool | str):
        return value
    if isinstance(value, numbers.Integral):
        return int(value)
    number = float(value)
    return number if math.isfinite(number) else None
