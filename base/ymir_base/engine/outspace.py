"""The ``/out`` folder as a resource: writable at the start, and never too full to report.

A task fails early, with a message that names the folder, when /out cannot take a file. While it
runs, a small reserve file holds some space: when a write fails on a full /out, the engine deletes
the reserve before it writes the error to monitor.txt, so that the failure still reaches YMIR with
its code, and the message says that /out is full instead of the library's own words
(``PytorchStreamWriter failed writing file data/3: file write failed``).
"""

from __future__ import annotations

import errno
import logging
import os
import tempfile
from collections.abc import Callable
from pathlib import Path

from ymir_base.errors import OutputError

LOG = logging.getLogger(__name__)

RESERVE_NAME = ".ymir-space-reserve"
RESERVE_BYTES = 256 * 1024
# below this much free space a failed task blames a full /out (a write needs at least a block)
NEARLY_FULL_BYTES = 1024 * 1024
_FULL_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT})


def check_writable(out_dir: Path, shown: str = "/out") -> None:
    """OutputError unless a file can be created in ``out_dir`` (``shown``: its name for the user),
    which is made when missing (a host folder; YMIR mounts /out)."""
    try:
        Path(out_dir).mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=".ymir-write-probe-", dir=out_dir)
    except OSError as exc:
        raise OutputError(f"the output folder {shown} ({out_dir}) is not writable: {exc.strerror or exc}; "
                          "YMIR must mount it read-write for the task's user") from exc
    os.close(fd)
    os.unlink(probe)


class SpaceReserve:
    """``RESERVE_BYTES`` held in ``out_dir`` until :meth:`release` (best effort: a /out too full
    to take it gets none)."""

    def __init__(self, out_dir: Path):
        self.path = Path(out_dir) / RESERVE_NAME

    def take(self) -> None:
        try:
            with open(self.path, "wb") as fh:
                fh.write(b"\0" * RESERVE_BYTES)
                fh.flush()
                os.fsync(fh.fileno())
        except OSError as exc:
            LOG.warning("cannot reserve %d bytes in %s (%s)", RESERVE_BYTES, self.path.parent, exc)
            self.release()

    def release(self) -> None:
        try:
            self.path.unlink(missing_ok=True)
        except OSError as exc:
            LOG.warning("cannot delete %s: %s", self.path, exc)


def full_message(exc: BaseException, out_dir: Path, message: str, *, coded: bool = False, shown: str = "/out",
                 statvfs: Callable[[str], os.statvfs_result] = os.statvfs) -> str | None:
    """The message for a failure caused by a full ``out_dir``, else None: an ENOSPC/EDQUOT anywhere
    in the exception's chain, or, for a failure without a code of its own (``coded`` false; the
    libraries' write errors say nothing about space), less than ``NEARLY_FULL_BYTES`` left."""
    try:
        stat = statvfs(str(out_dir))
        free, total = stat.f_bavail * stat.f_frsize, stat.f_blocks * stat.f_frsize
    except OSError:
        return None
    if not (_chain_has_full_errno(exc) or (not coded and free < NEARLY_FULL_BYTES)):
        return None
    return (f"the output folder {shown} is full ({free / 2**20:.1f} MiB free of {total / 2**20:.1f} MiB): give the "
            f"task more space for its results and work files; the write that failed: {message}")


def _chain_has_full_errno(exc: BaseException | None) -> bool:
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, OSError) and exc.errno in _FULL_ERRNOS:
            return True
        exc = exc.__cause__ or exc.__context__
    return False
