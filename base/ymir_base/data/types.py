"""The in-memory dataset model every reader produces and every converter consumes."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class ObjectAnnotation:
    """One labelled object. ``bbox`` is ``x1, y1, x2, y2`` in pixels, x2/y2 exclusive
    (ark/VOC store inclusive ``xmax = x + w - 1``; readers add 1)."""

    class_id: int
    bbox: tuple[float, float, float, float]
    angle: float = 0.0                       # rotate_angle, radians (see docs/protocol.md)
    polygons: list[list[float]] | None = None  # seg-coco polygons [[x1, y1, x2, y2, ...], ...]
    rle: dict[str, Any] | None = None          # seg-coco RLE {"size": [h, w], "counts": ...}
    iscrowd: int = 0
    ann_id: str = ""                           # the object's id in its annotation file (COCO ``id``), for messages

    @property
    def width(self) -> float:
        return self.bbox[2] - self.bbox[0]

    @property
    def height(self) -> float:
        return self.bbox[3] - self.bbox[1]


@dataclass
class ImageRecord:
    """One image of a dataset split, with its objects."""

    asset: str                    # path as written in the index file (container path)
    path: Path                    # where the file really is (host-mapped)
    width: int = 0
    height: int = 0
    objects: list[ObjectAnnotation] = field(default_factory=list)
    annotation: str = ""          # annotation path as written in the index file
    line: int = 0                 # 1-based line in the index file, for error messages

    @property
    def name(self) -> str:
        """Basename, the key YMIR uses for this asset in result files."""
        return self.asset.rsplit("/", 1)[-1]


@dataclass
class Dataset:
    """Train and validation splits with the class list they are indexed by."""

    class_names: list[str]
    train: list[ImageRecord]
    val: list[ImageRecord]
