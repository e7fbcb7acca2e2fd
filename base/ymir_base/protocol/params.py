"""An image's hyper-parameter schema: every documented parameter with type, default and choices.

Each image ships ``params.yaml`` (per task: ``training``, ``mining``, ``infer``). The /img-man
templates YMIR shows in its UI are checked against it by the tests; at run time it fills the
values YMIR dropped (falsy rows vanish from mining/infer forms) and validates what the user typed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ymir_base.errors import ConfigError, brief
from ymir_base.protocol.coerce import COERCERS

TASKS = ("training", "mining", "infer")


@dataclass(frozen=True)
class ParamSpec:
    name: str
    type: str
    default: Any
    choices: tuple[Any, ...] | None = None
    minimum: float | None = None
    maximum: float | None = None
    help: str = ""
    platform: bool = False  # interpreted by YMIR itself (shm_size, export_format)

    def coerce(self, value: Any) -> Any:
        try:
            result = COERCERS[self.type](value)
        except ValueError as exc:
            raise ConfigError(f"config key '{self.name}': {exc}") from None
        if self.choices is not None:
            match = _match_choice(result, self.choices)
            if match is None:
                options = ", ".join(str(c) for c in self.choices)
                raise ConfigError(f"config key '{self.name}': {brief(value)} is not one of: {options}")
            result = match
        if self.minimum is not None and result < self.minimum:
            raise ConfigError(f"config key '{self.name}': {brief(value)} is below the minimum {self.minimum}")
        if self.maximum is not None and result > self.maximum:
            raise ConfigError(f"config key '{self.name}': {brief(value)} is above the maximum {self.maximum}")
        return result


def _match_choice(value: Any, choices: tuple[Any, ...]) -> Any:
    if value in choices:
        return value
    if isinstance(value, str):  # case-insensitive for names such as RSAL / rsal
        for choice in choices:
            if isinstance(choice, str) and choice.lower() == value.lower():
                return choice
    return None


@dataclass
class ParamSchema:
    tasks: dict[str, dict[str, ParamSpec]] = field(default_factory=dict)

    @classmethod
    def load(cls, path: Path) -> ParamSchema:
        raw = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
        tasks: dict[str, dict[str, ParamSpec]] = {}
        for task in TASKS:
            specs = {}
            for name, spec in (raw.get(task) or {}).items():
                if spec["type"] not in COERCERS:
                    raise ValueError(f"{path}: {task}.{name}: unknown type {spec['type']!r}")
                specs[name] = ParamSpec(
                    name=name,
                    type=spec["type"],
                    default=spec.get("default"),
                    choices=tuple(spec["choices"]) if spec.get("choices") else None,
                    minimum=spec.get("min"),
                    maximum=spec.get("max"),
                    help=spec.get("help", ""),
                    platform=bool(spec.get("platform", False)),
                )
            tasks[task] = specs
        return cls(tasks)

    def for_task(self, task: str) -> dict[str, ParamSpec]:
        return self.tasks.get(task, {})

    def defaults(self, task: str) -> dict[str, Any]:
        return {name: spec.default for name, spec in self.for_task(task).items()}
