"""Fault injection kills at the named point, and only there."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

from ymir_base import faults

SCRIPT = "from ymir_base import faults; faults.reached('stage:a'); print('after a', flush=True); " \
         "faults.reached('stage:b'); print('after b', flush=True)"


def _run(point: str | None) -> subprocess.CompletedProcess:
    env = {} if point is None else {faults.KILL_AFTER: point}
    return subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=60,
                          env={**{k: v for k, v in os.environ.items() if k != faults.KILL_AFTER}, **env})


def test_the_process_dies_at_the_named_point():
    proc = _run("stage:b")
    assert proc.returncode == -signal.SIGKILL
    assert proc.stdout == "after a\n"


def test_other_points_and_no_setting_pass_through():
    assert _run("stage:c").stdout == "after a\nafter b\n"
    proc = _run(None)
    assert proc.returncode == 0 and proc.stdout == "after a\nafter b\n"
