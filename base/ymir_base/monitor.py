"""``/out/monitor.txt`` (protocol §6): progress, running state, and the error code on failure.

Line format, tab separated: ``task_id  timestamp  percent  state  code[  message]`` then free
text lines. The executor writes state 2 (running) and 4 (error) only; YMIR writes 3 itself.
Only rank 0 writes. Percent is kept monotonic and phases map to sub-ranges of [0, 1].
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from ymir_base.errors import ErrorCode
from ymir_base.ranks import is_rank_zero
from ymir_base.results.atomic import write_text_atomic

LOG = logging.getLogger(__name__)

STATE_RUNNING = 2
STATE_ERROR = 4
MAX_DETAIL_LINES = 90  # YMIR shows at most ~100 lines


class Monitor:
    def __init__(self, path: Path, task_id: str, *, min_interval: float = 1.0,
                 clock: Callable[[], float] = time.time):
        self.path = Path(path)
        self.clock = clock  # wall-clock seconds; tests pass their own
        self.task_id = task_id.replace("\t", " ") or "unknown"
        self.min_interval = min_interval
        self.percent = 0.0
        self._range = (0.0, 1.0)
        self._last_write = 0.0
        self.enabled = is_rank_zero()

    # ---- progress -------------------------------------------------------------------------
    @contextmanager
    def phase(self, start: float, end: float) -> Iterator[Monitor]:
        """Map progress reported inside the block to [start, end] of the parent range."""
        lo, hi = self._range
        outer = self._range
        self._range = (lo + (hi - lo) * start, lo + (hi - lo) * end)
        try:
            yield self
        finally:
            self._range = outer

    def progress(self, fraction: float, *, force: bool = False) -> None:
        fraction = min(max(float(fraction), 0.0), 1.0)
        lo, hi = self._range
        percent = max(self.percent, lo + (hi - lo) * fraction)
        now = self.clock()
        if not force and percent < 1.0 and now - self._last_write < self.min_interval:
            self.percent = percent
            return
        self.percent = percent
        self._write(STATE_RUNNING, ErrorCode.NO_ERROR)

    def start(self) -> None:
        self._write(STATE_RUNNING, ErrorCode.NO_ERROR)

    def done(self) -> None:
        """Results are written: 100 %, still state running (YMIR marks the task done)."""
        self.percent = 1.0
        self._write(STATE_RUNNING, ErrorCode.NO_ERROR)

    def error(self, code: int, message: str, details: list[str] | None = None) -> None:
        self._write(STATE_ERROR, code, message, details or [])

    # ---- output ---------------------------------------------------------------------------
    def _write(self, state: int, code: int, message: str = "", details: list[str] | None = None) -> None:
        if not self.enabled:
            return
        ts = self.clock()
        if ts <= self._last_write:  # YMIR only notices an update when the timestamp changes
            ts = self._last_write + 1e-6
        fields = [self.task_id, f"{ts:.6f}", f"{self.percent:.4f}", str(state), str(int(code))]
        if message:
            fields.append(" ".join(message.split()))
        lines = ["\t".join(fields)]
        lines += [d.rstrip("\n") for d in (details or [])][-MAX_DETAIL_LINES:]
        text = "\n".join(lines) + "\n"
        try:
            write_text_atomic(self.path, text)
        except OSError as exc:  # a monitor failure must not kill the task
            if not self._write_in_place(text):
                LOG.warning("cannot write %s: %s", self.path, exc)
        self._last_write = ts

    def _write_in_place(self, text: str) -> bool:
        """Overwrite an existing monitor.txt in place: YMIR creates the file before the task
        starts, so it may be writable in an /out folder that is not (no atomic rename there)."""
        if not self.path.is_file():
            return False
        try:
            with open(self.path, "r+", encoding="utf-8") as fh:
                fh.write(text)
                fh.truncate()
            return True
        except OSError:
            return False
