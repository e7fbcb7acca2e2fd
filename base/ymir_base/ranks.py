"""Which process this is when a task runs as several: ranks started by torchrun for multi-GPU
training, or by the engine's sharded prediction launcher. Both set ``RANK``, ``LOCAL_RANK`` and
``WORLD_SIZE``; a single process has none of them."""

from __future__ import annotations

import os


def rank() -> int:
    return int(os.environ.get("RANK", "0"))


def world_size() -> int:
    return int(os.environ.get("WORLD_SIZE", "1"))


def is_distributed_child() -> bool:
    """True inside a rank started by a launcher (torchrun or the prediction shards)."""
    return "WORLD_SIZE" in os.environ


def is_rank_zero() -> bool:
    """The process that writes monitor.txt, stages and result files (-1: yolov5's "no DDP")."""
    return os.environ.get("RANK", "0") in ("0", "-1") and os.environ.get("LOCAL_RANK", "0") in ("0", "-1")
