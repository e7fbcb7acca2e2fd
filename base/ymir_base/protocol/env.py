"""``/in/env.yaml``: task type and paths (protocol §3), every field with YMIR's default."""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from pathlib import Path, PurePosixPath
from typing import Any

import yaml

from ymir_base.errors import ConfigError, brief
from ymir_base.protocol.coerce import to_bool
from ymir_base.protocol.paths import IN_ROOT, OUT_ROOT, outside


@dataclass
class EnvInput:
    root_dir: str = "/in"
    assets_dir: str = "/in/assets"
    annotations_dir: str = "/in/annotations"
    models_dir: str = "/in/models"
    config_file: str = "/in/config.yaml"
    training_index_file: str = ""
    val_index_file: str = ""
    candidate_index_file: str = ""


@dataclass
class EnvOutput:
    root_dir: str = "/out"
    models_dir: str = "/out/models"
    tensorboard_dir: str = "/out/tensorboard"
    training_result_file: str = "/out/models/result.yaml"
    mining_result_file: str = "/out/result.tsv"
    infer_result_file: str = "/out/infer-result.json"
    monitor_file: str = "/out/monitor.txt"
    executor_log_file: str = "/out/ymir-executor-out.log"


@dataclass
class EnvConfig:
    task_id: str = "default-task"
    protocol_version: str = "0.0.1"
    run_training: bool = False
    run_mining: bool = False
    run_infer: bool = False
    manifest_file: str = "/img-man/manifest.yaml"
    input: EnvInput = field(default_factory=EnvInput)
    output: EnvOutput = field(default_factory=EnvOutput)

    @property
    def new_protocol(self) -> bool:
        """YMIR ≥ 1.2 (protocol_version ≥ 1.0.0): stages in result.yaml, ``boxes`` key."""
        try:
            return int(self.protocol_version.split(".")[0]) >= 1
        except ValueError:
            return True


def _text(value: Any, source: str, key: str) -> str:
    """A path or name field as text: null is "", a number or boolean its YAML spelling; a list or
    a mapping is a ConfigError (its str() would be a path nobody meant, and an alias-bombed one
    would never finish)."""
    if value is None:
        return ""
    if isinstance(value, str | int | float | bool):
        return str(value)
    raise ConfigError(f"{source}: key '{key}' must be a string, got {type(value).__name__} {brief(value)}")


def _section(cls: type, raw: Any, where: str, source: str) -> Any:
    if raw is None:
        return cls()
    if not isinstance(raw, dict):
        raise ConfigError(f"{source}: '{where}' must be a mapping, got {type(raw).__name__}")
    known = {f.name for f in fields(cls)}
    return cls(**{k: _text(v, source, f"{where}.{k}") for k, v in raw.items() if k in known})


def _check_roots(env: EnvConfig, source: str) -> None:
    """Every input path lies in /in and every output path in /out: nothing the task writes can
    land outside /out, however env.yaml names the result files."""
    for section, root in (("input", IN_ROOT), ("output", OUT_ROOT)):
        for f in fields(getattr(env, section)):
            value = getattr(getattr(env, section), f.name)
            if not value or PurePosixPath(value) == root:
                continue
            reason = outside(value, root)
            if reason:
                raise ConfigError(f"{source}: key '{section}.{f.name}': {brief(value)} points outside {root} "
                                  f"({reason})")


def parse_env(raw: Any, source: str = "env.yaml") -> EnvConfig:
    if not isinstance(raw, dict):
        raise ConfigError(f"{source}: expected a mapping at the top level, got {type(raw).__name__}")
    env = EnvConfig(input=_section(EnvInput, raw.get("input"), "input", source),
                    output=_section(EnvOutput, raw.get("output"), "output", source))
    _check_roots(env, source)
    for key in ("task_id", "protocol_version", "manifest_file"):
        if raw.get(key) not in (None, ""):
            setattr(env, key, _text(raw[key], source, key))
    for key in ("run_training", "run_mining", "run_infer"):
        if key in raw:
            try:
                setattr(env, key, to_bool(raw[key]))
            except ValueError as exc:
                raise ConfigError(f"{source}: key '{key}': {exc}") from None
    if not (env.run_training or env.run_mining or env.run_infer):
        raise ConfigError(f"{source}: none of run_training, run_mining, run_infer is true")
    if env.run_training and (env.run_mining or env.run_infer):
        raise ConfigError(f"{source}: run_training cannot be combined with run_mining or run_infer")
    return env


def load_yaml(path: Path, what: str) -> Any:
    """Read a YAML file; a missing or garbled file is a 300001 naming the file and line."""
    if not path.is_file():
        raise ConfigError(f"{what} not found: {path}")
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"{what} {path} cannot be read: {exc.strerror or exc}") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{what} {path} is not UTF-8 text: {exc}") from None
    # PyYAML's constructors: a date such as 2001-13-01 or a bad !!float is a ValueError, a bad
    # !!timestamp an AttributeError, an empty !!bool a KeyError, an empty !!int an IndexError,
    # nesting hundreds deep a RecursionError
    except (ValueError, TypeError, AttributeError, KeyError, IndexError, OverflowError, RecursionError) as exc:
        raise ConfigError(f"{what} {path} is not valid YAML (a value cannot be read: "
                          f"{type(exc).__name__}: {str(exc)[:200]})") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ConfigError(f"{what} {path} is not valid YAML ({problem} at{where})") from None


def load_env(path: Path) -> EnvConfig:
    return parse_env(load_yaml(path, "env.yaml"), str(path))
