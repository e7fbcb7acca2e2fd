"""YMIR executor error codes and the exceptions that carry them.

Every failure an executor can diagnose is raised as an :class:`ExecutorError` subclass; the
engine writes its code and message into ``monitor.txt`` (state 4) and exits non-zero.
"""

from __future__ import annotations

import reprlib
from enum import IntEnum


class ErrorCode(IntEnum):
    """Codes from YMIR's executor SDK (``ymir_exc/code.py``, 2.x numbering)."""

    NO_ERROR = 0
    CONFIG = 300001
    DATASET = 300002
    IMAGE_FORMAT = 300003
    MODEL = 300004
    OBJECT_TYPE = 300005
    CUDA_GPU = 300101
    NO_GPU = 300102
    OOM = 300103
    NAN = 300201
    NETWORK = 300301
    CONTAINER = 160004


class ExecutorError(Exception):
    """An error YMIR should show to the user with a specific code."""

    code: ErrorCode = ErrorCode.CONTAINER

    def __init__(self, message: str, *, code: ErrorCode | None = None):
        super().__init__(message)
        if code is not None:
            self.code = code

    @property
    def message(self) -> str:
        return str(self)


_BRIEF = reprlib.Repr()
_BRIEF.maxstring = _BRIEF.maxother = 60
_BRIEF.maxlevel, _BRIEF.maxlist, _BRIEF.maxtuple, _BRIEF.maxdict, _BRIEF.maxset = 2, 4, 4, 4, 4
_BRIEF_MAX = 100


def brief(value: object) -> str:
    """``repr(value)`` cut short, for quoting user input in an error message: a megabyte line or a
    deeply nested (or alias-bombed YAML) value must not become a megabyte ``monitor.txt``."""
    try:
        text = _BRIEF.repr(value)
    except ValueError:  # an int too long for repr()
        return f"<{type(value).__name__}>"
    return text if len(text) <= _BRIEF_MAX else text[:_BRIEF_MAX - 3] + "..."


class ConfigError(ExecutorError):
    code = ErrorCode.CONFIG


class DatasetError(ExecutorError):
    code = ErrorCode.DATASET


class ImageFormatError(ExecutorError):
    code = ErrorCode.IMAGE_FORMAT


class ModelError(ExecutorError):
    code = ErrorCode.MODEL


class ObjectTypeError(ExecutorError):
    code = ErrorCode.OBJECT_TYPE


class NoGpuError(ExecutorError):
    code = ErrorCode.NO_GPU


class NanError(ExecutorError):
    code = ErrorCode.NAN


class OutputError(ExecutorError):
    """/out cannot take the results (not writable, full). YMIR has no code of its own for this:
    the container error, with a message that says what to fix."""

    code = ErrorCode.CONTAINER


def classify_exception(exc: BaseException) -> tuple[ErrorCode, str]:
    """Map any exception to a YMIR code and a one-line message.

    Upstream libraries raise plain RuntimeErrors; the text is the only clue to CUDA
    out-of-memory, driver mismatches and NaN losses.
    """
    if isinstance(exc, ExecutorError):
        return exc.code, exc.message
    text = f"{type(exc).__name__}: {exc}"
    low = text.lower()
    if isinstance(exc, MemoryError) or "out of memory" in low:
        return ErrorCode.OOM, text
    if "no cuda gpus are available" in low or "found no nvidia driver" in low:
        return ErrorCode.NO_GPU, text
    if "cuda" in low and ("driver" in low or "no kernel image" in low or "capability" in low):
        return ErrorCode.CUDA_GPU, text
    if " nan" in low or "nan " in low or "non-finite" in low or "is not finite" in low:
        return ErrorCode.NAN, text
    if any(k in low for k in ("urlopen error", "connectionerror", "name or service not known",
                              "temporary failure in name resolution", "max retries exceeded")):
        return ErrorCode.NETWORK, text
    return ErrorCode.CONTAINER, text
