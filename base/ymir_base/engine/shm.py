"""How many data loader worker processes ``/dev/shm`` can feed.

PyTorch's loader workers hand every batch to the trainer through shared memory. Docker gives a
container 64 MiB of ``/dev/shm`` unless told otherwise (``--shm-size``); too little, and a worker
dies with a bus error or "No space left on device" in the middle of an epoch. The trainers ask
:func:`loader_workers` before they start their loaders and run fewer workers (or none, loading in
the training process) when the batches in flight would not fit, with a warning that says so.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from pathlib import Path

LOG = logging.getLogger(__name__)

SHM = Path("/dev/shm")
PREFETCH = 2     # batches each worker keeps ready: torch DataLoader's default prefetch_factor
MARGIN = 1.5     # labels, padding, the tensors' own headers, and other users of /dev/shm


def batch_bytes(batch_size: int, img_size: int, channels: int = 3) -> int:
    """The size of one batch of uint8 ``img_size`` x ``img_size`` images."""
    return max(1, int(batch_size)) * channels * max(1, int(img_size)) ** 2


def loader_workers(requested: int, bytes_per_worker: int, *, processes: int = 1, shm: Path = SHM,
                   statvfs: Callable[[str], os.statvfs_result] | None = None) -> int:
    """``requested`` workers, or as many as ``shm`` has room for when each holds
    ``bytes_per_worker`` (its prefetched batches, over all the loaders it serves) times MARGIN;
    ``processes`` training processes (one per GPU) share it."""
    requested = max(0, int(requested))
    if requested == 0:
        return 0
    try:
        stat = (statvfs or os.statvfs)(str(shm))
    except OSError:  # no /dev/shm (not Linux): torch shares memory another way
        return requested
    free = stat.f_bavail * stat.f_frsize // max(1, processes)
    need = max(1, int(bytes_per_worker * MARGIN))
    fit = min(requested, free // need)
    if fit < requested:
        LOG.warning("%s has %.1f MiB free per training process, and each data loader worker needs about "
                    "%.1f MiB for the batches it prepares: using %d worker(s) instead of %d%s. Give the container "
                    "more shared memory (docker run --shm-size) to load with all of them.", shm, free / 2**20,
                    need / 2**20, fit, requested, " (loading in the training process)" if fit == 0 else "")
    return int(fit)
