"""Multi-GPU training: re-run the very command under torchrun, one process per GPU."""

from __future__ import annotations

import logging
import socket
import subprocess
import sys

LOG = logging.getLogger(__name__)


def launch_torchrun(nproc: int) -> None:
    """Block until ``nproc`` ranks of this command finish; raise if any failed."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nnodes", "1", "--nproc_per_node",
           str(nproc), "--master_port", str(port), *sys.argv]
    LOG.info("launching DDP training: %s", " ".join(cmd))
    code = subprocess.call(cmd)
    if code:
        raise RuntimeError(f"DDP training exited with code {code}; see the rank logs above")
