"""The torch device a prediction process runs on, and how much of the CPU it uses there."""

from __future__ import annotations

import logging
import math
import os
from pathlib import Path

import torch

from ymir_base.errors import NoGpuError
from ymir_base.protocol.context import TaskContext

LOG = logging.getLogger(__name__)

# Images per forward pass on a CPU, whatever batch_size_per_gpu / samples_per_gpu say (they are
# per GPU). Measured on yolov5n/s at 640 px (bench/README.md, infer_bench): one thread spends the same CPU
# time per image at batch 1 and 4 and 30 % more at 16 (the activations of 16 images leave the
# caches); two threads on a loaded machine spend 2.7x less wall time per image at 4 than at 1.
CPU_FORWARD_BATCH = 4
CGROUP = Path("/sys/fs/cgroup")


def select_device(ctx: TaskContext) -> torch.device:
    """``YMIR_DEVICE`` (set per rank by the sharded launcher) > the first GPU of gpu_id > CPU."""
    if os.environ.get("YMIR_DEVICE"):
        return torch.device(os.environ["YMIR_DEVICE"])
    if ctx.gpu_ids:
        if not torch.cuda.is_available():
            raise NoGpuError(f"config gpu_id '{ctx.config.get('gpu_id')}' asks for a GPU but CUDA sees none")
        return torch.device("cuda", 0)
    return torch.device("cpu")


def forward_batch(requested: int, device: torch.device) -> int:
    """Images per forward pass: ``requested`` on a GPU, at most :data:`CPU_FORWARD_BATCH` on a CPU."""
    if device.type != "cpu" or requested <= CPU_FORWARD_BATCH:
        return requested
    LOG.info("on the CPU: %d images per forward pass instead of the %d asked per GPU (measured faster)",
             CPU_FORWARD_BATCH, requested)
    return CPU_FORWARD_BATCH


def usable_cpus(cgroup: Path = CGROUP) -> int:
    """The CPUs this process may run on: its affinity, capped by a cgroup CPU quota (``docker run
    --cpus``), which the affinity does not show."""
    count = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    quota = _cgroup_quota(cgroup)
    return max(1, min(count, math.ceil(quota))) if quota else count


def _cgroup_quota(cgroup: Path) -> float | None:
    """CPUs of the quota: cgroup v2 ``cpu.max`` ("max 100000" or "200000 100000"), else v1's
    cfs_quota_us / cfs_period_us; None without a quota or a readable file."""
    try:
        quota, period = (cgroup / "cpu.max").read_text().split()[:2]
        if quota == "max":
            return None
        return int(quota) / int(period)
    except (OSError, ValueError):
        pass
    try:
        quota_us = int((cgroup / "cpu" / "cpu.cfs_quota_us").read_text())
        period_us = int((cgroup / "cpu" / "cpu.cfs_period_us").read_text())
    except (OSError, ValueError):
        return None
    return quota_us / period_us if quota_us > 0 and period_us > 0 else None


def limit_threads(cgroup: Path = CGROUP) -> int:
    """Cap torch's CPU threads at the usable CPUs: its default is every core of the host, which
    under a container's CPU quota oversubscribes the quota (threads waiting on each other at every
    parallel region). Returns the thread count in use."""
    usable = usable_cpus(cgroup)
    if torch.get_num_threads() > usable:
        LOG.info("torch CPU threads: %d (the CPUs this container may use), not %d", usable, torch.get_num_threads())
        torch.set_num_threads(usable)
    return torch.get_num_threads()
