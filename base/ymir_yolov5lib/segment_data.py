"""seg-coco instance annotations -> YOLOv5-seg label files.

Each object becomes one line ``class x1 y1 x2 y2 ...``, its outline normalised by the image
width and height; yolov5's segment dataloader derives the object's box from that polygon.

**A mask with several parts becomes one polygon.** A seg-coco object may have several polygons,
or an RLE mask with several connected pieces or with holes, but a YOLOv5-seg label line is one
polygon and one line is one instance with one box. The parts are therefore joined: each further
part (and each hole) is spliced into the outline at the closest pair of vertices by a cut walked
there and back. One line per part was the alternative; it would turn an object seen in two
pieces (an occluded car) into two objects with two boxes, teaching the model to split what YMIR
annotates, boxes and counts as one. The price: cv2.fillPoly, with which yolov5 rasterises the
polygon, paints each cut between separate parts as a line one pixel wide. Holes survive: the cut
runs on mask pixels and the hole's outline is left unfilled.

An RLE mask's outline is OpenCV's contours of it (outer borders and hole borders through pixel
centres), which fillPoly turns back into the same pixels.

Degenerate parts (fewer than 3 distinct points, or zero area) are dropped; one warning per
annotation file names the annotation ids concerned. An object left without any part is skipped.

DatasetError (300002) naming the annotation file, image and annotation id: an object without a
mask (e.g. a box of a ``coco:raw`` export), a class id outside ``class_names``, an RLE whose size
differs from the image's or whose counts do not cover it exactly.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from functools import partial
from pathlib import Path

import cv2
import numpy as np
from pycocotools import mask as mask_utils

from ymir_base.data.convert.yolo import write_yolo_dataset
from ymir_base.data.rle import rle_counts
from ymir_base.data.types import Dataset, ImageRecord, ObjectAnnotation
from ymir_base.errors import DatasetError

LOG = logging.getLogger(__name__)
_MIN_AREA = 1e-9  # square pixels; below it a polygon is a line or a point


class DroppedParts:
    """Annotation ids with degenerate parts, per annotation file: one warning each at the end."""

    def __init__(self) -> None:
        self.ids: dict[str, list[str]] = defaultdict(list)

    def add(self, annotation_file: str, ann_id: str) -> None:
        self.ids[annotation_file].append(ann_id)

    def warn(self) -> None:
        for path, ids in self.ids.items():
            LOG.warning("annotation %s: dropped degenerate mask parts (fewer than 3 points or zero area) of "
                        "%d object(s) (annotation id %s)", path, len(ids), ", ".join(ids))


def write_seg_dataset(dataset: Dataset, out_dir: Path) -> Path:
    """The YOLO folder layout of :func:`write_yolo_dataset` with polygon labels; returns data.yaml."""
    dropped = DroppedParts()
    data_yaml = write_yolo_dataset(dataset, out_dir, labels=partial(
        seg_labels, num_classes=len(dataset.class_names), dropped=dropped))
    dropped.warn()
    return data_yaml


def seg_labels(record: ImageRecord, num_classes: int, dropped: DroppedParts | None = None) -> str:
    """The label file text of one image (empty for an image without objects)."""
    if record.width <= 0 or record.height <= 0:
        raise ValueError(f"image size of {record.asset} is unknown; load the split with check_images=True")
    lines = []
    scale = np.array([record.width, record.height], np.float64)
    for obj in record.objects:
        where = f"annotation {record.annotation or '(none)'} image {record.name} annotation id {obj.ann_id or '?'}"
        if not 0 <= obj.class_id < num_classes:
            raise DatasetError(f"{where}: class id {obj.class_id} is outside class_names ({num_classes} classes)")
        parts, degenerate = object_parts(obj, (record.height, record.width), where)
        if degenerate and dropped is not None:
            dropped.add(record.annotation or record.asset, obj.ann_id or "?")
        if not parts:
            continue
        polygon = np.clip(join_parts(parts) / scale, 0.0, 1.0)
        lines.append(f"{obj.class_id} " + " ".join(f"{v:.6f}" for v in polygon.reshape(-1)) + "\n")
    return "".join(lines)


def object_parts(obj: ObjectAnnotation, image_size: tuple[int, int], where: str) -> tuple[list[np.ndarray], int]:
    """``(parts, dropped)``: the object's outlines as ``[N, 2]`` pixel arrays (for an RLE, each
    outer border with its holes already spliced in) and how many degenerate ones were dropped."""
    if obj.rle is not None:
        outlines = _mask_outlines(decode_rle(obj.rle, image_size, where))
    elif obj.polygons:
        outlines = [[np.asarray(p, np.float64).reshape(-1, 2)] for p in obj.polygons]
    else:
        raise DatasetError(f"{where}: the object has no mask (empty segmentation); instance segmentation "
                           "needs a polygon or an RLE mask for every object")
    parts, dropped = [], 0
    for outer, *holes in outlines:
        if _degenerate(outer):
            dropped += 1 + len(holes)
            continue
        kept = [h for h in holes if not _degenerate(h)]
        dropped += len(holes) - len(kept)
        parts.append(join_parts([outer, *kept]))
    return parts, dropped


def join_parts(parts: list[np.ndarray]) -> np.ndarray:
    """One polygon through every part: each next part is entered from the closest vertex of the
    outline built so far, walked round once and left the same way back."""
    merged = np.asarray(parts[0], np.float64)
    for part in parts[1:]:
        part = np.asarray(part, np.float64)
        i, j = _closest_pair(merged, part)
        merged = np.concatenate([merged[:i + 1], np.roll(part, -j, axis=0), part[j:j + 1], merged[i:]])
    return merged


def _closest_pair(a: np.ndarray, b: np.ndarray, rows: int = 1024) -> tuple[int, int]:
    """Indices of the closest vertices of ``a`` and ``b`` (distances in row blocks: bounded memory)."""
    best, pair = np.inf, (0, 0)
    for start in range(0, len(a), rows):
        d = ((a[start:start + rows, None, :] - b[None, :, :]) ** 2).sum(-1)
        k = int(d.argmin())
        if d.flat[k] < best:
            best, pair = float(d.flat[k]), (start + k // d.shape[1], k % d.shape[1])
    return pair


def _degenerate(points: np.ndarray) -> bool:
    if len(np.unique(points, axis=0)) < 3:
        return True
    x, y = points[:, 0], points[:, 1]
    return abs(float(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1)))) / 2 < _MIN_AREA


def _mask_outlines(mask: np.ndarray) -> list[list[np.ndarray]]:
    """Per outer border of the mask: ``[outer, hole, hole, ...]`` as ``[N, 2]`` pixel centres."""
    contours, hierarchy = cv2.findContours(mask, cv2.RETR_CCOMP, cv2.CHAIN_APPROX_SIMPLE)
    if hierarchy is None:
        return []
    outlines: dict[int, list[np.ndarray]] = {}
    for k, (_, _, _, parent) in enumerate(hierarchy[0]):
        if parent < 0:
            outlines.setdefault(k, []).insert(0, contours[k].reshape(-1, 2).astype(np.float64))
    for k, (_, _, _, parent) in enumerate(hierarchy[0]):
        if parent >= 0:
            outlines[parent].append(contours[k].reshape(-1, 2).astype(np.float64))
    return list(outlines.values())


def decode_rle(rle: dict, image_size: tuple[int, int], where: str) -> np.ndarray:
    """The ``[H, W]`` uint8 mask of a COCO RLE (compressed string or count list), after checking
    that it is of the image's size and that its counts cover exactly H x W pixels (pycocotools
    writes past its buffer when they cover more)."""
    size = [int(v) for v in rle.get("size") or []]
    if size != list(image_size):
        raise DatasetError(f"{where}: RLE size {size} differs from the image size [h, w] {list(image_size)}")
    h, w = size
    counts = rle.get("counts")
    numbers = rle_counts(counts, where) if isinstance(counts, str | bytes) else list(counts or [])
    if any(int(n) < 0 for n in numbers) or sum(int(n) for n in numbers) != h * w:
        raise DatasetError(f"{where}: RLE counts cover {sum(int(n) for n in numbers)} pixels, "
                           f"not the image's {h} x {w}")
    if isinstance(counts, str | bytes):
        encoded = {"size": [h, w], "counts": counts.encode("ascii") if isinstance(counts, str) else counts}
    else:
        encoded = mask_utils.frPyObjects({"size": [h, w], "counts": [int(n) for n in numbers]}, h, w)
    return np.ascontiguousarray(mask_utils.decode(encoded), dtype=np.uint8)
