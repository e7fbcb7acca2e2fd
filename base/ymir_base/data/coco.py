"""Parse YMIR COCO json annotations (``coco`` / ``seg-coco`` export formats).

One ``coco-annotations.json`` covers every exported image; index lines are matched to its
``images`` by basename (``file_name`` == basename of the image path). ``categories`` only give
id -> name (YMIR lists present classes only, ids from 0); names are mapped to class ids through
``class_names`` and objects of other classes are dropped with a warning, like the VOC reader.
The parsed file is cached per (path, mtime, size, class_names), so a 10k-image dataset parses it
once.
"""

from __future__ import annotations

import json
import logging
import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import replace
from functools import lru_cache
from pathlib import Path
from typing import Any

from ymir_base.data.types import ObjectAnnotation
from ymir_base.errors import DatasetError

logger = logging.getLogger(__name__)


def coco_objects(path: Path, class_names: Sequence[str], image_name: str) -> list[ObjectAnnotation]:
    """Objects of the image whose ``file_name`` basename is ``image_name``."""
    path = Path(path).absolute()
    try:
        stat = path.stat()
    except OSError as exc:
        raise DatasetError(f"cannot read annotation file {path}: {exc.strerror or exc}") from exc
    by_image = _load(path, stat.st_mtime_ns, stat.st_size, tuple(class_names))
    if image_name not in by_image:
        raise DatasetError(f"annotation {path}: no entry in 'images' has file_name {image_name!r}")
    return [replace(obj) for obj in by_image[image_name]]


@lru_cache(maxsize=4)
def _load(path: Path, _mtime_ns: int, _size: int,
          class_names: tuple[str, ...]) -> dict[str, list[ObjectAnnotation]]:
    try:
        with open(path, encoding="utf-8-sig") as f:
            data = json.load(f)
    except (OSError, ValueError) as exc:
        raise DatasetError(f"cannot parse annotation file {path}: {exc}") from exc
    if not isinstance(data, dict) or not isinstance(data.get("images"), list):
        raise DatasetError(f"annotation {path}: not a COCO json (no 'images' list)")
    try:
        return _index(data, class_names, path)
    except (KeyError, TypeError, ValueError) as exc:
        raise DatasetError(f"annotation {path}: malformed COCO json ({type(exc).__name__}: {exc})") from exc


def _index(data: dict[str, Any], class_names: tuple[str, ...],
           path: Path) -> dict[str, list[ObjectAnnotation]]:
    names: dict[Any, str] = {}
    sizes: dict[Any, list[int]] = {}
    by_image: dict[str, list[ObjectAnnotation]] = {}
    for image in data["images"]:
        name = str(image["file_name"]).rsplit("/", 1)[-1]
        if name in by_image:
            raise DatasetError(f"annotation {path}: file_name {name!r} appears twice in 'images'")
        names[image["id"]] = name
        by_image[name] = []
        if "height" in image and "width" in image:
            sizes[image["id"]] = [int(image["height"]), int(image["width"])]
    categories = {c["id"]: str(c["name"]) for c in data.get("categories") or []}
    class_index = {name: i for i, name in enumerate(class_names)}
    dropped: Counter[str] = Counter()
    for number, ann in enumerate(data.get("annotations") or [], start=1):
        where = f"annotation {path} annotation id {ann.get('id', number)}"
        if ann["image_id"] not in names:
            raise DatasetError(f"{where}: image_id {ann['image_id']!r} is not in 'images'")
        if ann["category_id"] not in categories:
            raise DatasetError(f"{where}: category_id {ann['category_id']!r} is not in 'categories'")
        category = categories[ann["category_id"]]
        if category not in class_index:
            dropped[category] += 1
            continue
        polygons, rle = _segmentation(ann.get("segmentation"), sizes.get(ann["image_id"]), where)
        x, y, w, h = _bbox(ann.get("bbox"), where)
        by_image[names[ann["image_id"]]].append(ObjectAnnotation(
            class_id=class_index[category], bbox=(x, y, x + w, y + h), polygons=polygons, rle=rle,
            iscrowd=int(ann.get("iscrowd", 0))))
    if dropped:
        logger.warning("annotation %s: dropped %d object(s) of classes not in class_names: %s",
                       path, sum(dropped.values()), ", ".join(sorted(dropped)))
    return by_image


def _bbox(bbox: Any, where: str) -> list[float]:
    if not isinstance(bbox, list) or len(bbox) != 4:
        raise DatasetError(f"{where}: bbox must be [x, y, w, h], got {bbox!r}")
    values = [float(v) for v in bbox]
    if not all(math.isfinite(v) for v in values):
        raise DatasetError(f"{where}: bbox {bbox!r} is not finite")
    return values


def _segmentation(seg: Any, image_size: list[int] | None,
                  where: str) -> tuple[list[list[float]] | None, dict[str, Any] | None]:
    """``(polygons, rle)``; ``{}``, ``[]`` and a missing key mean a plain box."""
    if not seg:
        return None, None
    if isinstance(seg, dict):
        counts, size = seg.get("counts"), seg.get("size")
        if not isinstance(counts, str | list) or not isinstance(size, list) or len(size) != 2:
            raise DatasetError(f"{where}: RLE segmentation needs 'counts' (str or list) and 'size' [h, w]")
        size = [int(v) for v in size]
        if image_size is not None and size != image_size:
            raise DatasetError(f"{where}: RLE size {size} differs from the image size [h, w] {image_size}")
        return None, {"size": size, "counts": counts}
    if isinstance(seg, list) and all(isinstance(p, list) for p in seg):
        if any(len(p) < 6 or len(p) % 2 for p in seg):
            raise DatasetError(f"{where}: each polygon needs an even number (>= 6) of coordinates")
        return [[float(v) for v in p] for p in seg], None
    raise DatasetError(f"{where}: segmentation must be a list of polygons or an RLE dict")
