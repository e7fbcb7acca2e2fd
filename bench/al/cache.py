"""Where prepared datasets live and how one is written: into ``<name>.tmp``, renamed into place,
``READY`` last, so a reader never sees a half-written folder as complete."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

READY = "READY"


def cache_root() -> Path:
    """``$YMIR_AL_CACHE``, else ``~/.cache/ymir-al``."""
    env = os.environ.get("YMIR_AL_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "ymir-al"


def is_ready(folder: Path) -> bool:
    return (folder / READY).is_file()


@contextlib.contextmanager
def dataset_writer(folder: Path) -> Iterator[Path]:
    """Yields ``<folder>.tmp`` (emptied) to write the dataset into; when the block ends without an
    exception, an old ``folder`` is replaced by it and ``READY`` is written in it last. On an
    exception the temporary folder stays for inspection and ``folder`` is untouched."""
    folder = Path(folder)
    tmp = folder.with_name(folder.name + ".tmp")
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    yield tmp
    if folder.exists():
        shutil.rmtree(folder)
    tmp.rename(folder)
    (folder / READY).write_text("complete\n")


def write_coco(path: Path, info: dict[str, Any], images: Sequence[dict[str, Any]],
               annotations: Sequence[dict[str, Any]], categories: Sequence[dict[str, Any]]) -> Path:
    """A COCO detection file with the contract's keys (one record a line, so diffs stay readable)."""
    parts = [f'"info": {json.dumps(info, sort_keys=True)}']
    for key, records in (("images", images), ("annotations", annotations), ("categories", categories)):
        body = ",\n".join("  " + json.dumps(r, sort_keys=True) for r in records)
        parts.append(f'"{key}": [\n{body}\n]' if records else f'"{key}": []')
    path = Path(path)
    path.write_text("{\n" + ",\n".join(parts) + "\n}\n")
    return path


class CocoSplit:
    """The records of one split, with 1-based ids (pycocotools' evaluator takes an annotation id
    of 0 for "unmatched", so ids start at 1). ``first_image_id`` lets two splits keep their image
    ids apart."""

    def __init__(self, first_image_id: int = 1) -> None:
        self.images: list[dict[str, Any]] = []
        self.annotations: list[dict[str, Any]] = []
        self._next_image = first_image_id

    def add_image(self, file_name: str, width: int, height: int, group: int | None = None) -> int:
        """Adds an image; ``group`` defaults to its own id (no near-duplicates)."""
        image_id = self._next_image
        self._next_image += 1
        self.images.append({"id": image_id, "file_name": file_name, "width": int(width), "height": int(height),
                            "group": image_id if group is None else int(group)})
        return image_id

    def add_box(self, image_id: int, category_id: int, xyxy: Sequence[float], **extra: Any) -> None:
        """Adds a box given as ``x1, y1, x2, y2`` (pixels, x2/y2 exclusive); ``extra`` holds a
        variant's keys (``segmentation``, ``rbox``)."""
        x1, y1, x2, y2 = (float(v) for v in xyxy)
        w, h = x2 - x1, y2 - y1
        self.annotations.append({"id": len(self.annotations) + 1, "image_id": image_id,
                                 "category_id": int(category_id), "bbox": [x1, y1, w, h], "area": w * h,
                                 "iscrowd": 0, **extra})
