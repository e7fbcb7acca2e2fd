"""Read YMIR index files (``train-index.tsv``, ``val-index.tsv``, ``candidate-index.tsv``).

Paths are returned exactly as written (container paths); callers map them with the same
:class:`PathMapper` that is used here to open the index file itself. Every path must lie under
``/in`` once ``.`` and ``..`` are resolved (no symlink is followed: ``/in/assets`` is one), and
hold no NUL byte; anything else is a DatasetError naming the index file and line, so an index
cannot make a task read a file of the host or of the container outside its input.
"""

from __future__ import annotations

import logging
import posixpath
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

from ymir_base.errors import DatasetError, brief
from ymir_base.protocol.paths import IN_ROOT, PathMapper

logger = logging.getLogger(__name__)


def read_pairs(index_file: str | Path, mapper: PathMapper) -> list[tuple[int, str, str]]:
    """``(line_no, image, annotation)`` per non-blank line of a train/val index (``iter_pairs``)."""
    return list(iter_pairs(index_file, mapper))


def iter_pairs(index_file: str | Path, mapper: PathMapper) -> Iterator[tuple[int, str, str]]:
    """``(line_no, image, annotation)`` per non-blank line of a train/val index, read one line at
    a time (a reader that builds a record per line never holds the whole index).

    A line with only an image has annotation ``""``. Trailing empty columns are tolerated.
    """
    for line_no, line in _lines(index_file, mapper):
        fields = [f.strip() for f in line.split("\t")]
        while len(fields) > 1 and not fields[-1]:
            fields.pop()
        if len(fields) > 2:
            raise DatasetError(f"index {index_file} line {line_no}: expected '<image>\\t<annotation>', "
                               f"got {len(fields)} tab-separated columns")
        if not fields[0]:
            raise DatasetError(f"index {index_file} line {line_no}: the image path is empty")
        for path in fields:
            if path:
                _check_path(path, index_file, line_no)
        yield line_no, fields[0], fields[1] if len(fields) == 2 else ""


def read_candidates(index_file: str | Path, mapper: PathMapper) -> list[str]:
    """Image paths of a candidate index, in file order. Duplicates are kept (and logged):
    the platform rejects them, so they only appear in hand-made folders."""
    paths = []
    for line_no, line in _lines(index_file, mapper):
        paths.append(_check_path(line.strip(), index_file, line_no))
    duplicates = {p: n for p, n in Counter(paths).items() if n > 1}
    if duplicates:
        example = next(iter(duplicates))
        logger.warning("candidate index %s lists %d image(s) more than once (e.g. %s, %d times)",
                       index_file, len(duplicates), example, duplicates[example])
    return paths


def _lines(index_file: str | Path, mapper: PathMapper) -> Iterator[tuple[int, str]]:
    """Non-blank lines with their 1-based numbers, one at a time (``\\n``, ``\\r\\n`` and ``\\r``
    end a line)."""
    host = mapper.host(index_file)
    if not host.is_file():
        raise DatasetError(f"index file {index_file} does not exist" +
                           (f" (looked at {host})" if str(host) != str(index_file) else ""))
    try:
        with open(host, encoding="utf-8-sig") as f:
            for line_no, line in enumerate(f, start=1):
                if line.strip():
                    yield line_no, line.removesuffix("\n")
    except (OSError, UnicodeDecodeError) as exc:
        raise DatasetError(f"cannot read index file {index_file}: {exc}") from exc


def _check_path(path: str, index_file: str | Path, line_no: int) -> str:
    """``path`` itself, after checking that it names a file under /in (see the module doc)."""
    where = f"index {index_file} line {line_no}"
    if "\0" in path:
        raise DatasetError(f"{where}: the path {brief(path)} points outside {IN_ROOT}: it holds a NUL byte")
    if not posixpath.normpath(path).startswith(f"{IN_ROOT}/"):
        why = "its '..' leads out of it" if ".." in path.split("/") else f"it is not an absolute path below {IN_ROOT}"
        raise DatasetError(f"{where}: {brief(path)} is not a path under {IN_ROOT}, it points outside {IN_ROOT} "
                           f"({why}; index files list absolute container paths such as {IN_ROOT}/assets/...)")
    return path
