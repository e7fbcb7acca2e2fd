"""Fault injection at named points, for tests and kill harnesses.

``YMIR_KILL_AFTER=<point>`` in the environment makes the process SIGKILL itself right after that
point (``stage:<name>``: result.yaml has just listed the stage; ``saved:<file name>``: a yolov5
trainer has just saved that checkpoint; ``validate:<step>``: an MMEngine run starts validating
``epoch_<n>`` or ``iter_<n>``), the way YMIR's `docker rm -f`
stops a task. A test then kills a task at an exact moment instead of racing it with a timer.
Unset, it costs one dictionary lookup.
"""

from __future__ import annotations

import os
import signal

KILL_AFTER = "YMIR_KILL_AFTER"


def reached(point: str) -> None:
    """Called by the code at ``point``; kills this process when the environment asks for it."""
    if os.environ.get(KILL_AFTER) == point:
        os.kill(os.getpid(), signal.SIGKILL)
