"""Type coercion for values YMIR's web UI mangles (protocol §4.5).

Booleans come back as "true"/"False"/0/1, numbers as strings, lists as comma strings.
Each function raises ValueError with a short reason; callers add the key name.
"""

from __future__ import annotations

from typing import Any

_TRUE = {"t", "true", "1", "yes", "y", "on"}
_FALSE = {"f", "false", "0", "no", "n", "off", ""}


def to_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
        return value.strip().lower() in _TRUE
    raise ValueError(f"expected a boolean (true/false), got {value!r}")


def to_int(value: Any) -> int:
    if isinstance(value, bool):
        raise ValueError(f"expected an integer, got {value!r}")
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str):
        text = value.strip()
        try:
            return int(text)
        except ValueError:
            try:
                as_float = float(text)
            except ValueError:
                pass
            else:
                if as_float.is_integer():
                    return int(as_float)
    raise ValueError(f"expected an integer, got {value!r}")


def to_float(value: Any) -> float:
    if isinstance(value, bool):
        raise ValueError(f"expected a number, got {value!r}")
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value.strip())
        except ValueError:
            pass
    raise ValueError(f"expected a number, got {value!r}")


def to_str(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str | int | float | bool):
        return str(value)
    raise ValueError(f"expected a string, got {type(value).__name__} {value!r}")


def to_str_list(value: Any) -> list[str]:
    """A list of strings from a YAML list, a single string or a comma-separated string."""
    if value is None or value == "":
        return []
    if isinstance(value, str):
        return [v.strip() for v in value.split(",") if v.strip()]
    if isinstance(value, list | tuple):
        return [to_str(v) for v in value]
    raise ValueError(f"expected a list of strings, got {value!r}")


COERCERS = {"bool": to_bool, "int": to_int, "float": to_float, "str": to_str, "list": to_str_list}
