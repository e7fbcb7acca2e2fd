"""TaskContext: everything the engine and a backend need about one task, typed and validated."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ymir_base.errors import ConfigError, ModelError, ObjectTypeError
from ymir_base.protocol.config import OBJECT_TYPE_DIRS, merge_config, object_type_of
from ymir_base.protocol.env import EnvConfig, load_env, load_yaml
from ymir_base.protocol.params import ParamSchema, ParamSpec
from ymir_base.protocol.paths import PathMapper

LOG = logging.getLogger(__name__)


@dataclass
class TaskContext:
    env: EnvConfig
    config: dict[str, Any]
    mapper: PathMapper
    object_type: int
    img_man_dir: Path
    extra: dict[str, Any] = field(default_factory=dict)

    # ---- the task -------------------------------------------------------------------------
    @property
    def task_id(self) -> str:
        return str(self.config.get("task_id") or self.env.task_id)

    @property
    def task_name(self) -> str:
        if self.env.run_training:
            return "training"
        return "+".join(t for t, on in (("mining", self.env.run_mining), ("infer", self.env.run_infer)) if on)

    @property
    def class_names(self) -> list[str]:
        return list(self.config.get("class_names") or [])

    @property
    def gpu_ids(self) -> list[int]:
        raw = str(self.config.get("gpu_id") or "")
        try:
            return [int(x) for x in raw.split(",") if x.strip()]
        except ValueError:
            raise ConfigError(f"config key 'gpu_id': {raw!r} is not a comma-separated list of ids") from None

    @property
    def gpu_count(self) -> int:
        return len(self.gpu_ids)

    # ---- paths (host side) ----------------------------------------------------------------
    def host(self, container_path: str) -> Path:
        return self.mapper.host(container_path)

    @property
    def out_dir(self) -> Path:
        return self.host(self.env.output.root_dir)

    @property
    def models_out(self) -> Path:
        return self.host(self.env.output.models_dir)

    @property
    def tensorboard_dir(self) -> Path:
        return self.host(self.env.output.tensorboard_dir)

    @property
    def work_dir(self) -> Path:
        """Scratch space under /out (converted datasets, caches); /in is read-only."""
        path = self.out_dir / "work"
        path.mkdir(parents=True, exist_ok=True)
        return path

    def model_files(self, suffixes: tuple[str, ...]) -> list[Path]:
        """Weight files the platform passed, best first.

        Training gets ``pretrained_model_params``, mining/infer ``model_params_path``. YMIR
        lists every file of the chosen stage; the verifier passes flat files, and its second
        run may not list the stage folder: fall back to searching /in/models.
        """
        key = "pretrained_model_params" if self.env.run_training else "model_params_path"
        listed = [self.host(p) for p in self.config.get(key) or []]
        found = [p for p in listed if p.is_file() and p.suffix in suffixes]
        missing = [p for p in listed if not p.exists()]
        for p in missing:
            LOG.warning("%s lists %s, which does not exist", key, p)
        if not found:
            models_dir = self.host(self.env.input.models_dir)
            if models_dir.is_dir():
                found = sorted(p for p in models_dir.rglob("*") if p.is_file() and p.suffix in suffixes)
        return sorted(found, key=_weight_priority)

    def require_model_files(self, suffixes: tuple[str, ...]) -> list[Path]:
        files = self.model_files(suffixes)
        if not files:
            key = "model_params_path"
            raise ModelError(f"no model weights ({', '.join(suffixes)}) found in config key '{key}' "
                             f"{self.config.get(key)} nor under {self.env.input.models_dir}")
        return files


def _weight_priority(path: Path) -> tuple[int, str]:
    name = path.name.lower()
    rank = 0 if name.startswith("best") else 1 if name.startswith(("last", "epoch", "iter")) else 2
    return rank, name


@dataclass(frozen=True)
class ImageSpec:
    """What the engine needs to know about an image: its /img-man folder and the hyper-parameter
    schema of each object type it serves."""

    name: str
    img_man_dir: Path
    schemas: Mapping[int, ParamSchema]

    @property
    def manifest(self) -> dict[str, Any]:
        path = self.img_man_dir / "manifest.yaml"
        return (yaml.safe_load(path.read_text(encoding="utf-8")) or {}) if path.is_file() else {}

    @property
    def object_types(self) -> list[int]:
        value = self.manifest.get("object_type", 2)
        return [int(v) for v in value] if isinstance(value, list) else [int(value)]

    @property
    def per_type_templates(self) -> bool:
        """YMIR 2.4+ reads the templates of a manifest whose object_type is a list (even of one
        type) from one folder per type (protocol §8.2), of an int from /img-man itself."""
        return isinstance(self.manifest.get("object_type"), list)

    def template_dir(self, object_type: int) -> Path:
        if self.per_type_templates:
            return self.img_man_dir / OBJECT_TYPE_DIRS[object_type]
        return self.img_man_dir

    def template(self, task: str, object_type: int) -> dict[str, Any]:
        folder = self.template_dir(object_type)
        path = folder / f"{task}-template.yaml"
        if not path.is_file():
            return {}
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        return data if isinstance(data, dict) else {}

    def schema_for(self, object_type: int) -> ParamSchema:
        if object_type not in self.schemas:
            raise ObjectTypeError(f"object type {object_type} is not served by the {self.name} image, which "
                                  f"serves {', '.join(map(str, self.schemas))}")
        return self.schemas[object_type]

    def defaults(self, task: str, object_type: int) -> dict[str, Any]:
        """What YMIR shows for ``task``: the schema's defaults, then the template's values."""
        return {**self.schema_for(object_type).defaults(task), **self.template(task, object_type)}

    def specs(self, tasks: list[str], object_type: int) -> dict[str, ParamSpec]:
        specs: dict[str, ParamSpec] = {}
        for task in tasks:
            specs.update(self.schema_for(object_type).for_task(task))
        return specs


def build_context(image: ImageSpec, mapper: PathMapper, env_file: Path | None = None,
                  overrides: dict[str, Any] | None = None) -> TaskContext:
    env = load_env(env_file or mapper.host("/in/env.yaml"))
    raw = load_yaml(mapper.host(env.input.config_file), "config.yaml")
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError(f"config.yaml must be a mapping of key: value, got {type(raw).__name__}")
    object_type = object_type_of(raw, image.object_types)
    if env.run_training:
        tasks = ["training"]
    else:
        # mining+infer gets the mining template only (protocol §7.4): infer defaults fill the rest
        tasks = [t for t, on in (("infer", env.run_infer), ("mining", env.run_mining)) if on]
    template: dict[str, Any] = {}
    for task in tasks:
        template.update(image.template(task, object_type))
    config = merge_config(image.specs(tasks, object_type), template, raw, overrides)
    if env.run_training and not config.get("class_names"):
        raise ConfigError("config key 'class_names' is missing or empty")
    return TaskContext(env=env, config=config, mapper=mapper, object_type=object_type,
                       img_man_dir=image.img_man_dir)
