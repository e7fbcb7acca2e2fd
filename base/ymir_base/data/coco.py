"""Parse YMIR COCO json annotations (``coco`` / ``seg-coco`` export formats).

One ``coco-annotations.json`` covers every exported image; index lines are matched to its
``images`` by basename (``file_name`` == basename of the image path). ``categories`` only give
id -> name (YMIR lists present classes only, ids from 0); names are mapped to class ids through
``class_names`` and objects of other classes are dropped with a warning, like the VOC reader.
A ``CocoFiles`` reads the files of one index: each file is parsed once, and each image's objects
go to its record without a copy; nothing else keeps them once the index is read. While a file is
indexed, each item of its json is dropped once it is converted, so the json's objects make room
for the result's (the whole json text and tree are the one transient cost, as for any json).

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
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from ymir_base.data.rle import check_rle_counts
from ymir_base.data.types import ObjectAnnotation
from ymir_base.errors import DatasetError, brief

logger = logging.getLogger(__name__)


class CocoFiles:
    """The COCO json files of one index, each parsed on first use; ``segmentation`` is True for
    ``seg-coco`` data (objects need a mask), False for ``coco`` (objects are boxes)."""

    def __init__(self, class_names: Sequence[str], *, segmentation: bool):
        self.class_names = tuple(class_names)
        self.segmentation = segmentation
        self._files: dict[Path, _Parsed] = {}

    def objects(self, path: Path, image_name: str) -> list[ObjectAnnotation]:
        """Objects of the image whose ``file_name`` basename is ``image_name``."""
        path = Path(path).absolute()
        if path not in self._files:
            self._files[path] = _Parsed(_load(path, self.class_names, self.segmentation))
        return self._files[path].take(path, image_name)


@dataclass
class _Parsed:
    pending: dict[str, list[ObjectAnnotation]]                          # not handed out yet
    given: dict[str, list[ObjectAnnotation]] = field(default_factory=dict)

    def take(self, path: Path, image_name: str) -> list[ObjectAnnotation]:
        objects = self.pending.pop(image_name, None)
        if objects is not None:
            self.given[image_name] = objects
            return objects
        if image_name in self.given:  # listed again: its own copies, so no record changes another's
            return [replace(obj) for obj in self.given[image_name]]
        raise DatasetError(f"annotation {path}: no entry in 'images' has file_name {brief(image_name)}")


def coco_objects(path: Path, class_names: Sequence[str], image_name: str, *,
                 segmentation: bool) -> list[ObjectAnnotation]:
    """The objects of one image of one file (parses the file: ``CocoFiles`` reads many)."""
    return CocoFiles(class_names, segmentation=segmentation).objects(path, image_name)


def _load(path: Path, class_names: tuple[str, ...], segmentation: bool) -> dict[str, list[ObjectAnnotation]]:
    try:
        with open(path, encoding="utf-8-sig") as f:
            data = json.load(f)
    except OSError as exc:
        raise DatasetError(f"cannot read annotation file {path}: {exc.strerror or exc}") from exc
    # RecursionError: arrays nested thousands deep
    except (ValueError, RecursionError) as exc:
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


def _consumed(items: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    """The items in order, each dropped from the list as it is handed out (its memory can hold
    the converted objects)."""
    for i, item in enumerate(items):
        items[i] = None  # type: ignore[call-overload]
        yield item


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
    for image in _consumed(_items(data, "images", path)):
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
    for number, ann in enumerate(_consumed(_items(data, "annotations", path)), start=1):
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
