"""Map the container paths YMIR writes (``/in/...``, ``/out/...``) onto host folders.

Inside the container ``--in /in --out /out`` makes this the identity. On a host, every path
found in env.yaml, config.yaml and the index files is rewritten, so the same code runs both.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path, PurePosixPath

IN_ROOT = PurePosixPath("/in")
OUT_ROOT = PurePosixPath("/out")


@dataclass(frozen=True)
class PathMapper:
    in_dir: Path = Path(IN_ROOT)
    out_dir: Path = Path(OUT_ROOT)

    def host(self, path: str | PurePosixPath) -> Path:
        """The host path for a container path; other paths pass through unchanged."""
        p = PurePosixPath(str(path))
        for root, target in ((IN_ROOT, self.in_dir), (OUT_ROOT, self.out_dir)):
            if p == root or root in p.parents:
                return Path(target).joinpath(*p.relative_to(root).parts)
        return Path(str(path))

    def container(self, path: str | Path) -> str:
        """The container path for a host path under the mapped folders (inverse of host())."""
        p = Path(path).absolute()
        for root, target in ((IN_ROOT, self.in_dir), (OUT_ROOT, self.out_dir)):
            t = Path(target).absolute()
            if p == t or t in p.parents:
                return str(root.joinpath(*p.relative_to(t).parts))
        return str(path)


def outside(path: str, root: PurePosixPath) -> str | None:
    """Why the container path ``path`` is not a file or folder below ``root``, or None when it is.
    Checked on the text alone (no ``..``, no NUL, absolute, strictly below ``root``), so a host
    folder mapped onto /in may still hold symbolic links."""
    if "\0" in path:
        return "it contains a NUL byte"
    p = PurePosixPath(path)
    if not p.is_absolute():
        return f"it is not an absolute path below {root}"
    if ".." in p.parts:
        return "it contains '..'"
    if root not in p.parents:
        return f"it is not below {root}"
    return None


def file_name(name: str, what: str) -> str:
    """``name`` when it can be a file name inside an output folder: one path component, not
    ``.`` or ``..``, no NUL; DatasetError naming ``what`` otherwise. For names taken from inputs
    (asset names) that become output file names."""
    from ymir_base.errors import DatasetError

    if not name or name in (".", "..") or "/" in name or "\0" in name:
        raise DatasetError(f"{what} {name!r} cannot be an output file name (it must be one path component, "
                         "not '.' or '..', without NUL)")
    return name
