"""yolov5's trainers save their resume checkpoint with ``torch.save(ckpt, last)``, which truncates
``last.pt`` before it writes the new one (and strip it the same way at the end). A kill in between
leaves neither the previous epoch's checkpoint nor this one's: the rerun of the task finds no
checkpoint to resume from and trains from the start, although result.yaml lists the killed run's
stages. While :func:`atomic_torch_saves` is active, a ``torch.save`` to a path writes a temporary
file beside it and renames it over the target, so the file is always one whole checkpoint. The
fault point ``saved:<file name>`` follows each save (ymir_base.faults)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch

from ymir_base import faults


@contextmanager
def atomic_torch_saves() -> Iterator[None]:
    original = torch.save

    def save(obj: Any, f: Any, *args: Any, **kwargs: Any) -> None:
        if not isinstance(f, str | os.PathLike):  # a file object: the caller's business
            original(obj, f, *args, **kwargs)
            return
        target = Path(f)
        tmp = target.with_name(f".{target.name}.tmp")  # one name: a killed save's is reused
        try:
            original(obj, tmp, *args, **kwargs)
            os.replace(tmp, target)
        finally:
            tmp.unlink(missing_ok=True)
        faults.reached(f"saved:{target.name}")

    torch.save = save
    try:
        yield
    finally:
        torch.save = original
