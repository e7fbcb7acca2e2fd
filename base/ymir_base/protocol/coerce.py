"""Type coercion for values YMIR's web UI mangles (protocol §4.5).

Booleans come back as "true"/"False"/0/1, numbers as strings, lists as comma strings.
Each function raises ValueError with a short reason (the value quoted through errors.brief);
callers add the key name. NaN and infinities are no number a hyper-parameter can take.
"""

from __future__ import annotations

import math
from typing import Any

from ymir_base.errors import brief

_TRUE = {"t", "true", "1", "yes", "y", "on"}
_FALSE = {"f", "false", "0", "no", "n", "off", ""}


def to_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
        return value.strip().lower() in _TRUE
    raise ValueError(f"expected a boolean (true/false), got {brief(value)}")


def to_int(value: Any) -> int:
    if isinstance(value, bool):
        raise ValueError(f"expected an integer, got {brief(value)}")
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
    raise ValueError(f"expected an integer, got {brief(value)}")


def to_float(value: Any) -> float:
    if isinstance(value, bool):
        raise ValueError(f"expected a number, got {brief(value)}")
    number = None
    if isinstance(value, int | float):
        try:
            number = float(value)
        except OverflowError:  # an int beyond float
            number = math.inf
    elif isinstance(value, str):
        try:
            number = float(value.strip())
        except ValueError:
            pass
    if number is None:
        raise ValueError(f"expected a number, got {brief(value)}")
    if not math.isfinite(number):
        raise ValueError(f"expected a finite number, got {brief(value)}")
    return number


def to_str(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str | int | float | bool):
        return str(value)
    raise ValueError(f"expected a string, got {type(value).__name__} {brief(value)}")


def to_str_list(value: Any) -> list[str]:
    """A list of strings from a YAML list, a single string or a comma-separated string."""
    if value is None or value == "":
        return []
    if isinstance(value, str):
        return [v.strip() for v in value.split(",") if v.strip()]
    if isinstance(value, list | tuple):
        return [to_str(v) for v in value]
    raise ValueError(f"expected a list of strings, got {brief(value)}")


COERCERS = {"bool": to_bool, "int": to_int, "float": to_float, "str": to_str, "list": to_str_list}
