#!/usr/bin/env python3
"""Fetch an image's pretrained weights at Docker build time and check each file's sha256.

A weights manifest (images/<image>/weights.yaml) is a YAML list of entries::

    - name: yolov5s
      url: https://github.com/ultralytics/yolov5/releases/download/v7.0/yolov5s.pt
      sha256: "8b3b…"          # 64 lowercase hex digits, or null when no hash is known yet
      path: /weights/yolov5/yolov5s.pt

An entry gives exactly one of ``sha256`` and ``sha256_prefix``. ``sha256_prefix`` (8 to 63
lowercase hex digits) pins only the start of the hash: the download's sha256 must begin with it.
It exists for OpenMMLab checkpoints, whose file names end in ``-<first 8 hex digits of the
file's sha256>.pth``; for a download.openmmlab.com URL of that form the manifest is rejected
unless the prefix (or the full sha256) agrees with the file name. A prefix counts as pinned, but
it is a weaker check: the full computed hash is printed so that it can be pinned later.

Usage::

    fetch_weights.py MANIFEST                    # download every file, verify, write atomically
    fetch_weights.py MANIFEST --check            # validate the manifest only (offline)
    fetch_weights.py MANIFEST --allow-unpinned   # accept entries whose sha256 is null
    fetch_weights.py MANIFEST --source local --local-dir DIR   # the same files from DIR, checked
    fetch_weights.py MANIFEST --source none      # bake nothing: models train from random init

``--source local`` takes each file from ``DIR`` at its manifest path relative to ``/weights``
(``/weights/yolov5/yolov5s.pt`` from ``DIR/yolov5/yolov5s.pt``), for builds that cannot reach the
URLs; the same hash rules apply, and a missing file fails the run.

A file already in place with the right hash is kept. A download whose hash differs is deleted and
the run fails; so does any entry with ``sha256: null`` that is to be fetched (download or local)
unless ``--allow-unpinned`` is given (its computed hash is then printed so that it can be pinned),
and so does a download whose hash does not start with the entry's ``sha256_prefix``. Exit status:
0 done, 1 a download or a hash failed, 2 the manifest is invalid or has unpinned entries to fetch.
"""

from __future__ import annotations

import argparse
import hashlib
import http.client
import os
import re
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any, BinaryIO

import yaml

FIELDS = ("name", "url", "sha256", "path")
HASH_FIELDS = ("sha256", "sha256_prefix")  # an entry has exactly one of them
KNOWN_FIELDS = (*FIELDS, "sha256_prefix")
WEIGHTS_ROOT = PurePosixPath("/weights")
SHA256_RE = re.compile(r"[0-9a-f]{64}")
SHA256_PREFIX_RE = re.compile(r"[0-9a-f]{8,63}")
# OpenMMLab's publish script names a checkpoint <name>-<first 8 hex digits of its sha256>.pth
OPENMMLAB_URL_RE = re.compile(r"https://download\.openmmlab\.com/\S*-(?P<prefix>[0-9a-f]{8})\.pth")
SOURCES = ("download", "local", "none")
CHUNK = 1 << 20
TIMEOUT_S = 60

Opener = Callable[..., BinaryIO]


class ManifestError(ValueError):
    """The manifest is malformed; the message lists every problem."""


class FetchError(RuntimeError):
    """A file could not be downloaded, or its hash is not the pinned one."""


@dataclass(frozen=True)
class Entry:
    name: str
    url: str
    sha256: str | None
    path: PurePosixPath
    sha256_prefix: str | None = None

    @property
    def pinned(self) -> bool:
        return bool(self.sha256 or self.sha256_prefix)


def manifest_problems(raw: Any) -> list[str]:
    """Every problem of a parsed manifest (empty when it is well formed)."""
    if not isinstance(raw, list) or not raw:
        return ["the manifest must be a non-empty YAML list of {name, url, sha256 or sha256_prefix, path}"]
    problems: list[str] = []
    for index, item in enumerate(raw):
        problems += [f"entry {index}: {p}" for p in _entry_problems(item)]
    for field in ("name", "path"):
        values = [item.get(field) for item in raw if isinstance(item, dict)]
        duplicates = sorted({str(v) for v in values if values.count(v) > 1})
        problems += [f"duplicate {field}: {value}" for value in duplicates]
    return problems


def _entry_problems(item: Any) -> list[str]:
    if not isinstance(item, dict):
        return ["not a mapping"]
    problems = [f"unknown key {key!r}" for key in item if key not in KNOWN_FIELDS]
    problems += [f"missing key {key!r}" for key in ("name", "url", "path") if key not in item]
    hashes = [key for key in HASH_FIELDS if key in item]
    if not hashes:
        problems.append("missing key 'sha256' (or 'sha256_prefix'): give one, or sha256: null")
    elif len(hashes) > 1:
        problems.append("give either sha256 or sha256_prefix, not both")
    name, url, sha256, path = (item.get(key) for key in FIELDS)
    prefix = item.get("sha256_prefix")
    if not isinstance(name, str) or not name:
        problems.append("name must be a non-empty string")
    if not isinstance(url, str) or not re.fullmatch(r"https://[^/\s]+/\S+", url):
        problems.append(f"url must be an https URL, got {url!r}")
    if sha256 is not None and not (isinstance(sha256, str) and SHA256_RE.fullmatch(sha256)):
        problems.append(f"sha256 must be 64 lowercase hex digits (quoted) or null, got {sha256!r}")
    if "sha256_prefix" in item and not (isinstance(prefix, str) and SHA256_PREFIX_RE.fullmatch(prefix)):
        problems.append(f"sha256_prefix must be 8 to 63 lowercase hex digits (quoted), got {prefix!r}")
    if not isinstance(path, str) or not _is_weights_path(path):
        problems.append(f"path must be an absolute, normalised path under {WEIGHTS_ROOT}/, got {path!r}")
    problems += _openmmlab_problems(url, sha256, prefix)
    return problems


def openmmlab_prefix(url: Any) -> str | None:
    """The 8 hex digits that end an OpenMMLab checkpoint's file name: the start of its sha256."""
    match = OPENMMLAB_URL_RE.fullmatch(url) if isinstance(url, str) else None
    return match.group("prefix") if match else None


def _openmmlab_problems(url: Any, sha256: Any, prefix: Any) -> list[str]:
    """A pinned hash must agree with the hash prefix in an OpenMMLab file name (catches typos)."""
    expected = openmmlab_prefix(url)
    if expected is None:
        return []
    given = next((value for value in (prefix, sha256) if isinstance(value, str)), None)
    if given is None or given.startswith(expected):
        return []
    return [f"the OpenMMLab file name ends in -{expected}.pth, the first hex digits of its sha256, "
            f"but the entry pins {given!r}"]


def _is_weights_path(path: str) -> bool:
    pure = PurePosixPath(path)
    return (
        pure.is_absolute()
        and str(pure) == path
        and ".." not in pure.parts
        and WEIGHTS_ROOT in pure.parents
    )


def load_manifest(path: Path) -> list[Entry]:
    """Parse and validate a manifest; raise ManifestError listing every problem."""
    raw = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    problems = manifest_problems(raw)
    if problems:
        raise ManifestError(f"{path}: " + "; ".join(problems))
    return [
        Entry(i["name"], i["url"], i.get("sha256"), PurePosixPath(i["path"]), i.get("sha256_prefix")) for i in raw
    ]


def unpinned(entries: Sequence[Entry]) -> list[Entry]:
    return [entry for entry in entries if not entry.pinned]


def prefix_only(entries: Sequence[Entry]) -> list[Entry]:
    return [entry for entry in entries if entry.sha256 is None and entry.sha256_prefix]


def hash_matches(actual: str, sha256: str | None, prefix: str | None) -> bool:
    """Whether a computed hash satisfies the pin (True when nothing is pinned)."""
    if sha256 is not None:
        return actual == sha256
    return prefix is None or actual.startswith(prefix)


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(CHUNK):
            digest.update(block)
    return digest.hexdigest()


def download(
    url: str,
    dest: Path,
    expected: str | None,
    *,
    expected_prefix: str | None = None,
    opener: Opener = urllib.request.urlopen,
) -> str:
    """Stream ``url`` into a temp file beside ``dest``, check it, then rename it into place.

    Returns the file's sha256. Nothing unverified ever lands at ``dest``: on a hash mismatch (the
    full ``expected`` hash, or else ``expected_prefix``) the temp file is removed and FetchError
    raised.
    """
    dest.parent.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256()
    fd, tmp_name = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".part", dir=dest.parent)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as out, opener(url, timeout=TIMEOUT_S) as response:
            while block := response.read(CHUNK):
                digest.update(block)
                out.write(block)
        actual = digest.hexdigest()
        if expected is not None and actual != expected:
            raise FetchError(f"sha256 mismatch for {url}: expected {expected}, got {actual}")
        if expected is None and expected_prefix is not None and not actual.startswith(expected_prefix):
            raise FetchError(f"sha256 mismatch for {url}: expected a hash starting {expected_prefix}, got {actual}")
        tmp.chmod(0o644)  # readable by the --user uid:gid the container runs as
        os.replace(tmp, dest)
    finally:
        tmp.unlink(missing_ok=True)
    return actual


def fetch(
    entry: Entry,
    dest: Path,
    *,
    retries: int = 3,
    opener: Opener = urllib.request.urlopen,
    sleep: Callable[[float], None] = time.sleep,
) -> str:
    """Put the entry's file at ``dest`` and return its sha256; raise FetchError on failure.

    Network errors and server errors (5xx) are retried with a growing pause; a client error (4xx)
    or a hash mismatch fails at once.
    """
    if entry.pinned and dest.is_file():
        actual = sha256_of(dest)
        if hash_matches(actual, entry.sha256, entry.sha256_prefix):
            return actual
    attempt = 1
    while True:
        try:
            return download(entry.url, dest, entry.sha256, expected_prefix=entry.sha256_prefix, opener=opener)
        except urllib.error.HTTPError as exc:
            if exc.code < 500 or attempt >= retries:
                raise FetchError(f"{entry.name}: {entry.url}: HTTP {exc.code} {exc.reason}") from exc
            error: Exception = exc
        except (OSError, http.client.HTTPException) as exc:
            if attempt >= retries:
                raise FetchError(f"{entry.name}: download of {entry.url} failed: {exc}") from exc
            error = exc
        print(f"  {entry.name}: attempt {attempt} failed ({error}), retrying", file=sys.stderr)
        sleep(2.0**attempt)
        attempt += 1


def destination(entry: Entry, root: Path) -> Path:
    return root / entry.path.relative_to("/")


def fetch_all(entries: Sequence[Entry], root: Path, *, opener: Opener = urllib.request.urlopen) -> None:
    for entry in entries:
        dest = destination(entry, root)
        print(f"{entry.name}: {entry.url} -> {dest}", flush=True)
        actual = fetch(entry, dest, opener=opener)
        if entry.sha256:
            print(f"  verified sha256 {actual}", flush=True)
        elif entry.sha256_prefix:
            print(
                f"  verified sha256 prefix {entry.sha256_prefix} only (a weaker check than a full hash); "
                f"pin the full hash with sha256: {actual}",
                flush=True,
            )
        else:
            print(f"  UNPINNED, pin it with sha256 {actual}", flush=True)


def copy_local(entry: Entry, local_dir: Path, dest: Path) -> str:
    """Copy the entry's file from ``local_dir`` into place, checked like a download."""
    source = local_dir / entry.path.relative_to(WEIGHTS_ROOT)
    if not source.is_file():
        raise FetchError(f"{entry.name}: {source} does not exist (--source local takes every file of the manifest)")
    with open(source, "rb") as handle:
        return download(source.as_uri(), dest, entry.sha256, expected_prefix=entry.sha256_prefix,
                        opener=lambda _url, timeout: handle)


def copy_all(entries: Sequence[Entry], root: Path, local_dir: Path) -> None:
    for entry in entries:
        dest = destination(entry, root)
        print(f"{entry.name}: {local_dir / entry.path.relative_to(WEIGHTS_ROOT)} -> {dest}", flush=True)
        actual = copy_local(entry, local_dir, dest)
        print(f"  sha256 {actual}" + ("" if entry.sha256 else " (pin it: only a prefix or nothing was pinned)"),
              flush=True)


def _parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "manifest", type=Path, help="weights manifest (YAML list of name/url/sha256 or sha256_prefix/path)"
    )
    parser.add_argument("--check", action="store_true", help="only validate the manifest, download nothing")
    parser.add_argument(
        "--allow-unpinned", action="store_true", help="accept entries whose sha256 is null (not verified)"
    )
    parser.add_argument(
        "--source", choices=SOURCES, default="download",
        help="download from the URLs (default), copy from --local-dir, or bake none",
    )
    parser.add_argument("--local-dir", type=Path, help="with --source local: a folder laid out like /weights")
    parser.add_argument("--root", type=Path, default=Path("/"), help="prefix of the manifest paths (default /)")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = _parse_args(argv)
    try:
        entries = load_manifest(args.manifest)
    except (OSError, yaml.YAMLError, ManifestError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    loose = unpinned(entries)
    # --check validates, --source none fetches nothing: only a fetch must refuse unverified files
    if loose and not args.allow_unpinned and not args.check and args.source != "none":
        names = ", ".join(entry.name for entry in loose)
        print(
            f"error: {args.manifest}: no sha256 for {names}: pin them, or build with "
            "ALLOW_UNPINNED_WEIGHTS=1 (fetch_weights.py --allow-unpinned) to accept unverified files",
            file=sys.stderr,
        )
        return 2
    if args.check:
        weak = prefix_only(entries)
        note = f" ({len(weak)} by sha256 prefix only, a weaker check)" if weak else ""
        if loose:
            note += f"; no sha256 for {', '.join(entry.name for entry in loose)}: a download refuses them " \
                    "unless --allow-unpinned"
        print(f"{args.manifest}: {len(entries)} entries, {len(entries) - len(loose)} pinned{note}")
        return 0
    if args.source == "none":
        print(f"{args.manifest}: --source none: no weights baked, models train from random init "
              "unless the task gives weights")
        return 0
    if args.source == "local" and args.local_dir is None:
        print("error: --source local needs --local-dir", file=sys.stderr)
        return 2
    try:
        if args.source == "local":
            copy_all(entries, args.root, args.local_dir)
        else:
            fetch_all(entries, args.root)
    except FetchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
