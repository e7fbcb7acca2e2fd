"""Parse YMIR COCO json annotations (``coco`` / ``seg-coco`` export formats).

One ``coco-annotations.json`` covers every exported image; index lines are matched to its
``images`` by basename (``file_name`` == basename of the image path). ``categories`` only give
id -> name (YMIR lists present classes only, ids from 0); names are mapped to class ids through
``class_names`` and objects of other classes are dropped with a warning, like the VOC reader.
The parsed file is cached per (path, mtime, size, class_names, segmentation), so a 10k-image
dataset parses it once.

The caller says which export format it reads (``segmentation``), since the two differ in what an
object without a mask means:

* ``coco`` (``segmentation=False``): objects are boxes. ``segmentation: {}``, ``[]`` or a missing
  key is the normal case; a valid polygon or RLE mask is still carried along.
* ``seg-coco`` (``segmentation=True``): objects are masks. One with no usable mask (``{}``,
  ``[]``, missing, or only degenerate polygons) is dropped.

In both, a polygon with fewer than 6 numbers (fewer than 3 points; YMIR imports and exports such
polygons) is skipped, and one warning per file names the annotation ids concerned. Other
malformed segmentations (an odd number of coordinates, a coordinate that is not a finite number,
an RLE without ``counts``/``size`` or whose counts do not cover its ``h x w`` exactly) are a
DatasetError naming the file and the annotation id.
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

from ymir_base.data.rle import check_rle_counts
from ymir_base.data.types import ObjectAnnotation
from ymir_base.errors import DatasetError, brief

logger = logging.getLogger(__name__)


def coco_objects(path: Path, class_names: Sequence[str], image_name: str, *,
                 segmentation: bool) -> list[ObjectAnnotation]:
    """Objects of the image whose ``file_name`` basename is ``image_name``; ``segmentation`` is True
    for ``seg-coco`` data (objects need a mask), False for ``coco`` (objects are boxes)."""
    path = Path(path).absolute()
    try:
        stat = path.stat()
    except OSError as exc:
        raise DatasetError(f"cannot read annotation file {path}: {exc.strerror or exc}") from exc
    by_image = _load(path, stat.st_mtime_ns, stat.st_size, tuple(class_names), segmentation)
    if image_name not in by_image:
        raise DatasetError(f"annotation {path}: no entry in 'images' has file_name {brief(image_name)}")
    return [replace(obj) for obj in by_image[image_name]]


@lru_cache(maxsize=4)
def _load(path: Path, _mtime_ns: int, _size: int, class_names: tuple[str, ...],
          segmentation: bool) -> dict[str, list[ObjectAnnotation]]:
    try:
        with open(path, encoding="utf-8-sig") as f:
            data = json.load(f)
    # RecursionError: arrays nested thousands deep
    except (OSError, ValueError, RecursionError) as exc:
        raise DatasetError(f"cannot parse annotation file {path}: {_cut(str(exc))}") from exc
    if not isinstance(data, dict) or not isinstance(data.get("images"), list):
        raise DatasetError(f"annotation {path}: not a COCO json (no 'images' list)")
    try:
        return _index(data, class_names, path, segmentation)
    except (KeyError, TypeError, ValueError, OverflowError) as exc:
        raise DatasetError(f"annotation {path}: malformed COCO json ({type(exc).__name__}: {_cut(str(exc))})") from exc


def _cut(text: str, limit: int = 200) -> str:
    return text if len(text) <= limit else text[:limit] + "..."


def _items(data: dict[str, Any], key: str, path: Path) -> list[dict[str, Any]]:
    """The objects of the top-level list ``key`` (absent or null: none)."""
    items = data.get(key)
    if items is None:
        return []
    if not isinstance(items, list):
        raise DatasetError(f"annotation {path}: '{key}' must be a list, got {type(items).__name__}")
    for number, item in enumerate(items, start=1):
        if not isinstance(item, dict):
            raise DatasetError(f"annotation {path}: '{key}' item {number} must be an object, got {brief(item)}")
    return items


def _id_text(raw: Any, number: int) -> str:
    """An annotation's ``id`` as messages show it."""
    if raw is None:
        return f"#{number}"
    return _cut(str(raw), 60) if isinstance(raw, str | int) and not isinstance(raw, bool) else brief(raw)


def _index(data: dict[str, Any], class_names: tuple[str, ...], path: Path,
           segmentation: bool) -> dict[str, list[ObjectAnnotation]]:
    names: dict[Any, str] = {}
    sizes: dict[Any, list[int]] = {}
    by_image: dict[str, list[ObjectAnnotation]] = {}
    for image in _items(data, "images", path):
        name = str(image["file_name"]).rsplit("/", 1)[-1]
        if name in by_image:
            raise DatasetError(f"annotation {path}: file_name {brief(name)} appears twice in 'images'")
        names[image["id"]] = name
        by_image[name] = []
        if "height" in image and "width" in image:
            sizes[image["id"]] = [int(image["height"]), int(image["width"])]
    categories = {c["id"]: str(c["name"]) for c in _items(data, "categories", path)}
    class_index = {name: i for i, name in enumerate(class_names)}
    dropped: Counter[str] = Counter()
    short_polygons: list[str] = []  # annotation ids with a skipped polygon
    no_mask: list[str] = []         # annotation ids left without a mask
    for number, ann in enumerate(_items(data, "annotations", path), start=1):
        ann_id = _id_text(ann.get("id"), number)
        where = f"annotation {path} annotation id {ann_id}"
        if ann["image_id"] not in names:
            raise DatasetError(f"{where}: image_id {brief(ann['image_id'])} is not in 'images'")
        if ann["category_id"] not in categories:
            raise DatasetError(f"{where}: category_id {brief(ann['category_id'])} is not in 'categories'")
        category = categories[ann["category_id"]]
        if category not in class_index:
            dropped[category] += 1
            continue
        polygons, rle, skipped = _segmentation(ann.get("segmentation"), sizes.get(ann["image_id"]), where)
        x, y, w, h = _bbox(ann.get("bbox"), where)
        if skipped:
            short_polygons.append(ann_id)
        if polygons is None and rle is None and (segmentation or skipped):
            no_mask.append(ann_id)
            if segmentation:
                continue
        by_image[names[ann["image_id"]]].append(ObjectAnnotation(
            class_id=class_index[category], bbox=(x, y, x + w, y + h), polygons=polygons, rle=rle,
            iscrowd=int(ann.get("iscrowd", 0)), ann_id=ann_id))
    if dropped:
        logger.warning("annotation %s: dropped %d object(s) of classes not in class_names: %s",
                       path, sum(dropped.values()), ", ".join(sorted(dropped)))
    if short_polygons:
        logger.warning("annotation %s: skipped polygons with fewer than 6 coordinates in %d annotation(s) "
                       "(annotation id %s)", path, len(short_polygons), ", ".join(short_polygons))
    if no_mask and segmentation:
        logger.warning("annotation %s: dropped %d seg-coco object(s) without a usable mask (annotation id %s)",
                       path, len(no_mask), ", ".join(no_mask))
    elif no_mask:
        logger.warning("annotation %s: %d object(s) have no polygon left and are kept as plain boxes "
                       "(annotation id %s)", path, len(no_mask), ", ".join(no_mask))
    return by_image


def _bbox(bbox: Any, where: str) -> list[float]:
    if not isinstance(bbox, list) or len(bbox) != 4:
        raise DatasetError(f"{where}: bbox must be [x, y, w, h], got {brief(bbox)}")
    return _finite(bbox, where, "bbox")


def _finite(values: list[Any], where: str, what: str) -> list[float]:
    """``values`` as finite floats; anything else (a string, null, NaN, an integer beyond float)
    is a DatasetError naming ``what``."""
    numbers = []
    for v in values:
        if isinstance(v, bool) or not isinstance(v, int | float):
            raise DatasetError(f"{where}: {what} {brief(values)} holds a non-number {brief(v)}")
        try:
            number = float(v)
        except OverflowError:
            number = math.inf
        if not math.isfinite(number):
            raise DatasetError(f"{where}: {what} {brief(values)} is not finite")
        numbers.append(number)
    return numbers


def _segmentation(seg: Any, image_size: list[int] | None,
                  where: str) -> tuple[list[list[float]] | None, dict[str, Any] | None, int]:
    """``(polygons, rle, skipped)``: ``{}``, ``[]`` and a missing key mean no mask; ``skipped``
    counts the polygons dropped for having fewer than 6 coordinates."""
    if not seg:
        return None, None, 0
    if isinstance(seg, dict):
        counts, size = seg.get("counts"), seg.get("size")
        if not isinstance(counts, str | list) or not isinstance(size, list) or len(size) != 2:
            raise DatasetError(f"{where}: RLE segmentation needs 'counts' (str or list) and 'size' [h, w]")
        if not all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in size):
            raise DatasetError(f"{where}: RLE size {brief(size)} is not two non-negative integers [h, w]")
        if image_size is not None and size != image_size:
            raise DatasetError(f"{where}: RLE size {size} differs from the image size [h, w] {image_size}")
        check_rle_counts(counts, size[0], size[1], where)
        return None, {"size": size, "counts": counts}, 0
    if isinstance(seg, list) and all(isinstance(p, list) for p in seg):
        usable = [p for p in seg if len(p) >= 6]
        if any(len(p) % 2 for p in usable):
            raise DatasetError(f"{where}: a polygon has an odd number of coordinates (needs x, y pairs)")
        polygons = [_finite(p, where, "polygon") for p in usable]
        return polygons or None, None, len(seg) - len(usable)
    raise DatasetError(f"{where}: segmentation must be a list of polygons or an RLE dict")
