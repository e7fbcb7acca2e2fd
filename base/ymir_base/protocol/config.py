"""``/in/config.yaml`` merged with the image's templates and schema (protocol §4).

Order, later wins: schema defaults < /img-man template < config.yaml < ``--set`` overrides.
YMIR already put the template into config.yaml, but mining/infer forms drop falsy values, so the
defaults must come back from somewhere. Platform keys are coerced and checked here too.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ymir_base.errors import ConfigError, ObjectTypeError, brief
from ymir_base.protocol.coerce import to_int, to_str, to_str_list
from ymir_base.protocol.params import ParamSpec

OBJECT_TYPES = {2: "detection", 3: "semantic", 4: "instance", 50: "multi-modal"}
# manifest/template folder for each object type when the manifest lists several (protocol §8.2)
OBJECT_TYPE_DIRS = {2: "det", 3: "semantic-seg", 4: "instance-seg", 50: "multi-modal"}


def merge_config(
    specs: Mapping[str, ParamSpec],
    template: Mapping[str, Any] | None,
    user: Mapping[str, Any],
    overrides: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The effective hyper-parameters: every schema key present, typed and validated."""
    merged: dict[str, Any] = {name: spec.default for name, spec in specs.items()}
    for layer in (template or {}, user, overrides or {}):
        merged.update(layer)
    for name, spec in specs.items():
        value = merged.get(name)
        if value is None:
            value = spec.default
        merged[name] = spec.coerce(value)
    _coerce_platform_keys(merged)
    return merged


def _coerce_platform_keys(cfg: dict[str, Any]) -> None:
    def fix(key: str, fn: Any) -> None:
        if key in cfg:
            try:
                cfg[key] = fn(cfg[key])
            except ValueError as exc:
                raise ConfigError(f"config key '{key}': {exc}") from None

    fix("task_id", to_str)
    fix("class_names", to_str_list)
    fix("gpu_id", lambda v: "" if v is None else ",".join(x.strip() for x in to_str(v).split(",") if x.strip()))
    fix("gpu_count", to_int)
    fix("pretrained_model_params", to_str_list)
    fix("model_params_path", to_str_list)
    if "object_type" in cfg and cfg["object_type"] not in (None, ""):
        fix("object_type", to_int)


def object_type_of(cfg: Mapping[str, Any], supported: list[int]) -> int:
    """The task's object type: config.yaml's (YMIR 2.4+) or the image's only one."""
    value = cfg.get("object_type")
    if value is None or value == "":
        if len(supported) == 1:
            return supported[0]
        raise ObjectTypeError(
            f"config key 'object_type' is missing and this image supports several ({supported})")
    try:
        value = to_int(value)  # the UI may send "2"
    except ValueError:
        value = brief(value)
    if value not in supported:
        raise ObjectTypeError(f"config key 'object_type': {value} is not supported by this image "
                              f"(supported: {', '.join(f'{t} {OBJECT_TYPES.get(t, t)}' for t in supported)})")
    return int(value)


def parse_overrides(items: list[str]) -> dict[str, Any]:
    """``key=value`` pairs from the command line; values are parsed as YAML scalars."""
    import yaml

    result: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--set expects key=value, got {brief(item)}")
        result[key.strip()] = yaml.safe_load(value) if value.strip() else ""
    return result
