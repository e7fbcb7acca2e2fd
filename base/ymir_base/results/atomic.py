"""Atomic file replacement: a reader (YMIR, or a hard kill) never sees half a file."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any


def link_or_copy_atomic(source: Path, target: Path, *, symlink: bool = False) -> None:
    """Make ``target`` the same file as ``source``, replaced atomically: a hard link, a copy where
    that fails (across file systems). ``symlink``: a symbolic link to ``source`` first (cheap
    across file systems; for views of files that outlive the target, such as /in's images)."""
    target = Path(target)
    tmp = target.parent / f".{target.name}.tmp"
    tmp.unlink(missing_ok=True)
    for make_link in (os.symlink, os.link) if symlink else (os.link,):
        try:
            make_link(source, tmp)
            break
        except OSError:
            continue
    else:
        try:
            shutil.copyfile(source, tmp)
        except BaseException:  # a full disk: no half copy left behind
            tmp.unlink(missing_ok=True)
            raise
    os.replace(tmp, target)


def write_text_atomic(path: Path, text: str) -> None:
    write_bytes_atomic(path, text.encode("utf-8"))


def write_bytes_atomic(path: Path, data: bytes) -> None:
    with open_atomic(path, binary=True) as fh:
        fh.write(data)


@contextmanager
def open_atomic(path: Path, *, binary: bool = False) -> Iterator[IO[Any]]:
    """A file handle (UTF-8 text, or bytes) whose content replaces ``path`` at once when the block
    ends; on any error the partial file is removed and ``path`` stays as it was. For results too
    big to build as one string first."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") if binary else os.fdopen(fd, "w", encoding="utf-8", newline="") as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
