"""Hypothesis profiles for the fuzzed parser tests, and a watchdog against hangs.

``make test`` runs the ``ci`` profile: a bounded, derandomized number of examples per test (the
same inputs on every run, so CI never flakes) and no example database. ``make fuzz`` sets
``YMIR_FUZZ_PROFILE=fuzz``: many more examples from random seeds, with a per-example deadline that
flags slow inputs. ``YMIR_FUZZ_EXAMPLES`` overrides the number of examples of either profile.
"""

from __future__ import annotations

import faulthandler
import os
import sys
from datetime import timedelta

import pytest
from hypothesis import HealthCheck, settings

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

# a test that has not finished after this long is stuck somewhere a Python signal cannot reach
# (a C loop): dump every thread's stack and end the process rather than hang CI
WATCHDOG_S = 3600 if PROFILE == "fuzz" else 300


@pytest.fixture(autouse=True)
def _watchdog():
    faulthandler.dump_traceback_later(WATCHDOG_S, exit=True, file=sys.stderr)
    yield
    faulthandler.cancel_dump_traceback_later()
