"""What every fuzzed reader must do, and the building blocks of near-valid inputs.

The property: any input gives either a parsed result or an :class:`ExecutorError` of the expected
YMIR code whose message names the file (and the line or key where the test knows it). Anything
else (an uncaught exception of another type, a run past the time limit) fails the test.

Importing this module loads the hypothesis profile: ``make test`` runs ``ci``, a bounded,
derandomized number of examples per test (the same inputs on every run, so CI never flakes) and no
example database; ``make fuzz`` sets ``YMIR_FUZZ_PROFILE=fuzz``: many more examples from random
seeds, with a per-example deadline that flags slow inputs. ``YMIR_FUZZ_EXAMPLES`` overrides the
number of examples of either profile. (Not a conftest.py: the other test folders import their
helpers as ``conftest``, which a second conftest module would shadow.)
"""

from __future__ import annotations

import itertools
import math
import os
import signal
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

from ymir_base.errors import ErrorCode, ExecutorError

PROFILE = os.environ.get("YMIR_FUZZ_PROFILE", "ci")
_EXAMPLES = os.environ.get("YMIR_FUZZ_EXAMPLES")
_SLOW_OK = [HealthCheck.too_slow, HealthCheck.data_too_large]

settings.register_profile("ci", max_examples=50, derandomize=True, database=None, deadline=None,
                          suppress_health_check=_SLOW_OK, print_blob=True)
settings.register_profile("fuzz", max_examples=5000, derandomize=False, database=None,
                          deadline=timedelta(seconds=2), suppress_health_check=_SLOW_OK, print_blob=True)
settings.load_profile(PROFILE)
if _EXAMPLES:
    settings.register_profile(f"{PROFILE}-n", settings.get_profile(PROFILE), max_examples=int(_EXAMPLES))
    settings.load_profile(f"{PROFILE}-n")

# one call of a reader on one example; far above what any input here needs (milliseconds)
TIME_LIMIT_S = 10.0
# an error message stays readable whatever the input held (no megabyte repr of a value)
MAX_MESSAGE = 2000


class Hang(AssertionError):
    """A reader call ran past TIME_LIMIT_S."""


@contextmanager
def time_limit(seconds: float = TIME_LIMIT_S) -> Iterator[None]:
    def expire(_signum: int, _frame: Any) -> None:
        raise Hang(f"no result after {seconds} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def parsed_or_typed(call: Callable[[], Any], code: ErrorCode | Sequence[ErrorCode],
                    mentions: Sequence[str] = ()) -> tuple[Any, ExecutorError | None]:
    """``(result, None)`` or ``(None, error)``; the error must carry ``code`` (one of them) and
    mention every string of ``mentions`` (the file, the line, the key)."""
    codes = (code,) if isinstance(code, ErrorCode) else tuple(code)
    try:
        with time_limit():
            return call(), None
    except ExecutorError as exc:
        text = str(exc)
        assert exc.code in codes, f"code {exc.code!r}, expected {codes}: {text}"
        for fragment in mentions:
            assert fragment in text, f"the message does not name {fragment!r}: {text}"
        assert len(text) <= MAX_MESSAGE, f"a {len(text)}-character message: {text[:300]}..."
        return None, exc


_counter = itertools.count()


def write(folder: Path, suffix: str, data: bytes | str) -> Path:
    """A new file per example (readers may cache by path, mtime and size)."""
    path = folder / f"f{next(_counter)}{suffix}"
    path.write_bytes(data.encode("utf-8", "surrogatepass") if isinstance(data, str) else data)
    return path


# ---- building blocks -----------------------------------------------------------------------

HUGE_INT = 10**400  # beyond float
odd_floats = st.sampled_from([math.nan, math.inf, -math.inf, 1e308, -1e308, 5e-324, -0.0])
odd_ints = st.sampled_from([HUGE_INT, -HUGE_INT, 2**63, -(2**63) - 1, 2**31])
scalars = st.one_of(
    st.none(), st.booleans(), st.integers(), odd_ints, st.floats(), odd_floats, st.text(max_size=20),
)
# JSON/YAML-like junk: what a mangled document may hold where a scalar was expected
junk = st.recursive(scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=4)), max_leaves=12)

# the text of a number as a careless exporter or a hand edit writes it
number_texts = st.one_of(
    st.integers(-10**6, 10**6).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.sampled_from(["", " ", "nan", "NaN", "inf", "-inf", "Infinity", "1e999", "-1e999", "1_000", "0x10",
                     "١٢", "１２", "+5", "5.", ".5", "1e5", "9" * 5000, "--1", "1,5", "\u00a05", "5\x00",
                     "true", "None", "null", "-0"]),
    st.text(max_size=12),
)

# pieces of YAML that PyYAML's constructors trip on, or that build huge values from little text
yaml_values = st.one_of(
    st.sampled_from([
        "2001-13-01", "2001-02-30 25:61:00", "!!timestamp x", "!!float x", "!!int x", "!!binary ===", "!!bool maybe",
        "!!python/object/apply:os.system ['true']", "!!set {a, b}", "!!omap [a]", "&a [*a]", "*nowhere", ".nan",
        ".inf", "-.inf", "1e999", "0x1g", "0o9", "1_000", "12:30:45", "~", "null", "yes", "No", "'", '"\\x"', "[",
        "{", "? [a, b]\n: 1", "{<<: 5}", "[" * 600 + "]" * 600, "|\n  text", "! x",
    ]),
    st.text(max_size=12),
)


@st.composite
def yaml_ish(draw: st.DrawFn, keys: list[str]) -> str:
    """Text that looks like a YAML mapping of ``keys``, some values odd, indentation sometimes off."""
    lines = []
    for _ in range(draw(st.integers(0, 6))):
        indent = draw(st.sampled_from(["", "", "  ", "\t"]))
        lines.append(f"{indent}{draw(st.sampled_from(keys))}: {draw(yaml_values)}")
    return draw(st.sampled_from(["\n", "\r\n"])).join(lines)
