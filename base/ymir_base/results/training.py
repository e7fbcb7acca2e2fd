"""``/out/models/result.yaml`` (protocol §7.1), rewritten after every evaluation.

Stages are validated before the file is replaced: names are identifiers, files exist under
``/out/models/<stage>/`` or ``/out/models/``, metrics are plain floats in [0, 1]. A hard kill at
any moment leaves a valid file that lists only files that exist.
"""

from __future__ import annotations

import math
import re
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ymir_base import faults
from ymir_base.results.atomic import link_or_copy_atomic, write_text_atomic

STAGE_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
MAIN_METRIC = {2: "mAP", 3: "mIoU", 4: "maskAP"}
METRICS = {2: ("mAP", "mAR"), 3: ("mIoU", "mAcc"), 4: ("maskAP", "boxAP")}
COUNTS = ("tp", "fp", "fn")
MAX_RECENT_STAGES = 10  # plus the best one, as YMIR's SDK keeps


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

    def add_stage(self, name: str, files: list[str | Path], metrics: dict[str, Any],
                  timestamp: int | None = None) -> Stage:
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
        self.stages.pop(name, None)
        self.stages[name] = stage
        self._prune()
        self.write()
        faults.reached(f"stage:{name}")
        return stage

    def remove_stage(self, name: str) -> None:
        """Drop a stage that is no longer kept and delete its folder."""
        if self.stages.pop(name, None) is None:
            return
        self.write()
        shutil.rmtree(self.models_dir / name, ignore_errors=True)

    def expose_top_level(self, name: str, filename: str) -> None:
        """Link a stage file at the top of /out/models too: the official verifier passes only
        top-level files of /out/models to the next task (protocol §9.5). Replaced atomically."""
        link_or_copy_atomic(self.models_dir / name / filename, self.models_dir / filename)

    def add_attachment(self, section: str, files: list[str | Path]) -> None:
        folder = self.models_dir / "attachments" / section
        names = [Path(f).name for f in files if (folder / Path(f).name).is_file()]
        if names:
            self.attachments[section] = names
            self.write()

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
                raise ValueError(f"metric {key}={value} is outside [0, 1]")
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

    def _prune(self) -> None:
        best = self.best_stage()
        recent = sorted(self.stages.values(), key=lambda s: s.timestamp)[-MAX_RECENT_STAGES:]
        keep = {s.name for s in recent} | ({best.name} if best else set())
        self.stages = {k: v for k, v in self.stages.items() if k in keep}

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
        result.attachments = dict(data.get("attachments") or {})
        result.evaluate_config = dict(data.get("evaluate_config") or {})
        return result
