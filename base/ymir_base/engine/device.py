"""The torch device a prediction process runs on."""

from __future__ import annotations

import os

import torch

from ymir_base.errors import NoGpuError
from ymir_base.protocol.context import TaskContext


def select_device(ctx: TaskContext) -> torch.device:
    """``YMIR_DEVICE`` (set per rank by the sharded launcher) > the first GPU of gpu_id > CPU."""
    if os.environ.get("YMIR_DEVICE"):
        return torch.device(os.environ["YMIR_DEVICE"])
    if ctx.gpu_ids:
        if not torch.cuda.is_available():
            raise NoGpuError(f"config gpu_id '{ctx.config.get('gpu_id')}' asks for a GPU but CUDA sees none")
        return torch.device("cuda", 0)
    return torch.device("cpu")
