"""What every image's trainer shares: the task marker that lets a killed run resume, the epoch
journal that lets it catch up on the stages a kill cut off, and the NaN/inf loss check. (The
choice of starting weights is ``Backend.starting_weights``.)"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np

from ymir_base.errors import NanError
from ymir_base.results.atomic import write_text_atomic

TASK_MARKER = "ymir-task-id"
FINISHED_MARKER = "ymir-finished"
EPOCH_JOURNAL = "ymir-epochs.json"


class TaskMarker:
    """A file in a run folder holding the id of the task that wrote it. YMIR starts a stopped
    task again with the same id: a run folder marked with this task's id is its killed run and
    may be resumed; one without a marker, or another task's, never is."""

    def __init__(self, folder: Path, name: str = TASK_MARKER):
        self.path = Path(folder) / name

    def write(self, task_id: str) -> None:
        write_text_atomic(self.path, task_id)

    def matches(self, task_id: str) -> bool:
        return self.path.is_file() and self.path.read_text(encoding="utf-8").strip() == task_id

    def clear(self) -> None:
        self.path.unlink(missing_ok=True)


class EpochJournal:
    """The last epoch a trainer evaluated, with the numbers of that evaluation, and the last epoch
    whose stages were written, in a run folder. A kill can land after the trainer checkpointed an
    epoch but before the stages of that epoch were written: the resumed run starts after that epoch
    and would never write them. ``pending`` then hands back what the stages need."""

    def __init__(self, folder: Path, name: str = EPOCH_JOURNAL):
        self.path = Path(folder) / name

    def _read(self) -> dict[str, Any]:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}

    def evaluated(self, epoch: int, evaluation: Any) -> None:
        """Epoch ``epoch`` (1-based) was evaluated; ``evaluation`` is JSON-serialisable."""
        data = self._read()
        write_text_atomic(self.path, json.dumps({"evaluated": epoch, "evaluation": evaluation,
                                                 "staged": data.get("staged", 0)}))

    def staged(self, epoch: int) -> None:
        """The stages of epoch ``epoch`` are written."""
        write_text_atomic(self.path, json.dumps({**self._read(), "staged": epoch}))

    def last_staged(self) -> int:
        """The last epoch whose stages were written (0: none)."""
        return int(self._read().get("staged", 0))

    def pending(self, epoch: int) -> Any | None:
        """The evaluation of ``epoch`` when it was evaluated but its stages were not written."""
        data = self._read()
        if data.get("evaluated") == epoch and int(data.get("staged", 0)) < epoch:
            return data.get("evaluation")
        return None

    def clear(self) -> None:
        self.path.unlink(missing_ok=True)


def check_finite_loss(loss: Any, iteration: int, hint: str = "") -> None:
    """Raise NanError (300201) when any of the loss values (a number, a tensor or a list of
    them) is NaN or infinite; ``hint`` tells the user where this image sets the learning rate."""
    if loss is None:
        return
    if all(math.isfinite(v) for v in _floats(loss)):
        return
    raise NanError(f"training loss became NaN/inf at iteration {iteration}: check for degenerate boxes, "
                   f"or lower the learning rate{f' ({hint})' if hint else ''}")


def _floats(value: Any) -> list[float]:
    if hasattr(value, "detach"):  # a torch tensor
        value = value.detach().float().cpu().numpy()
    if isinstance(value, list | tuple):
        return [f for v in value for f in _floats(v)]
    return [float(v) for v in np.ravel(np.asarray(value, dtype=np.float64))]
