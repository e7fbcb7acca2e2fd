"""Box sanity policy applied to every parsed object, whatever the export format.

* A non-finite ``rotate_angle`` (NaN, inf) is a **DatasetError** naming the annotation file and
  the object number (the ark and VOC readers already refuse one; this guards every source).
* Zero-area or negative boxes (``x2 <= x1`` or ``y2 <= y1``) are **dropped** with one warning per
  annotation file: YMIR exports can contain them and they turn box losses into NaN.

Axis-aligned boxes (``angle == 0``):

* A box may stick out of the image by up to ``max(1 px, 1 % of the image side)`` per axis; it is
  **clipped** to the image (silently up to 1 px, which is the inclusive/exclusive off-by-one some
  tools make; with a warning beyond that). If clipping leaves no area, the box is dropped.
* A box further outside is an annotation that does not belong to this image: **DatasetError**
  naming the annotation file and the object number (1-based, in file order; for ark files the
  n-th non-blank line).

Rotated boxes (``angle != 0``): the stored box is the unrotated extent around the centre, which
may legitimately stick out of the image while the rotated box lies inside, so the four **rotated
corners** are checked instead, with the same tolerance per axis. Within it the box is kept
**unchanged** (a rotated box is never clipped by its unrotated extent); corners further outside
**drop** the object with one warning per annotation file naming the object numbers (the task goes
on: a rotated box's extent is easy to get slightly wrong by hand, and one bad object should not
end a training run).

Polygons and RLE masks are left as they are.
"""

from __future__ import annotations

import logging
import math
from dataclasses import replace

from ymir_base.data.types import ObjectAnnotation
from ymir_base.errors import DatasetError
from ymir_base.geometry import box_to_rotated, rotated_corners

logger = logging.getLogger(__name__)

SLACK_PX = 1.0
SLACK_FRACTION = 0.01


def check_boxes(objects: list[ObjectAnnotation], width: int, height: int,
                source: str) -> list[ObjectAnnotation]:
    """The objects to keep, axis-aligned ones clipped to the ``width x height`` image (no bounds
    check when the size is unknown, i.e. 0). ``source`` names the annotation file in messages."""
    kept = []
    degenerate = clipped = 0
    rotated_outside: list[int] = []
    for number, obj in enumerate(objects, start=1):
        where = f"annotation {source} object {number}"
        if not math.isfinite(obj.angle):
            raise DatasetError(f"{where}: rotate_angle {obj.angle!r} is not a finite number")
        if obj.width <= 0 or obj.height <= 0:
            degenerate += 1
            continue
        if width > 0 and height > 0:
            if obj.angle != 0:
                if not _rotated_inside(obj, width, height):
                    rotated_outside.append(number)
                    continue
            else:
                new_box = _clip(obj.bbox, width, height, where)
                if new_box != obj.bbox:
                    if _excess(obj.bbox, width, height) > SLACK_PX:
                        clipped += 1
                    obj = replace(obj, bbox=new_box)
                    if obj.width <= 0 or obj.height <= 0:
                        degenerate += 1
                        continue
        kept.append(obj)
    if degenerate:
        logger.warning("annotation %s: dropped %d zero-area box(es)", source, degenerate)
    if clipped:
        logger.warning("annotation %s: clipped %d box(es) that exceeded the %dx%d image by more than "
                       "%g px", source, clipped, width, height, SLACK_PX)
    if rotated_outside:
        logger.warning("annotation %s: dropped %d rotated object(s) (object %s) whose rotated corners lie "
                       "outside the %dx%d image by more than max(%g px, %.0f%% of the side)", source,
                       len(rotated_outside), ", ".join(map(str, rotated_outside)), width, height, SLACK_PX,
                       SLACK_FRACTION * 100)
    return kept


def _rotated_inside(obj: ObjectAnnotation, width: int, height: int) -> bool:
    """Whether the rotated corners of ``obj`` stay within the tolerance of the image."""
    corners = rotated_corners(box_to_rotated(obj.bbox, obj.angle))
    xs, ys = corners[:, 0], corners[:, 1]
    excess_x = max(-float(xs.min()), float(xs.max()) - width)
    excess_y = max(-float(ys.min()), float(ys.max()) - height)
    return (excess_x <= max(SLACK_PX, SLACK_FRACTION * width)
            and excess_y <= max(SLACK_PX, SLACK_FRACTION * height))


def _excess(bbox: tuple[float, float, float, float], width: int, height: int) -> float:
    x1, y1, x2, y2 = bbox
    return max(-x1, -y1, x2 - width, y2 - height, 0.0)


def _clip(bbox: tuple[float, float, float, float], width: int, height: int,
          where: str) -> tuple[float, float, float, float]:
    x1, y1, x2, y2 = bbox
    for excess, side, axis in ((max(-x1, x2 - width), width, "x"), (max(-y1, y2 - height), height, "y")):
        if excess > max(SLACK_PX, SLACK_FRACTION * side):
            raise DatasetError(
                f"{where}: box ({x1:g}, {y1:g}, {x2:g}, {y2:g}) (x2/y2 exclusive) lies {excess:g} px "
                f"outside the {width}x{height} image along {axis} (more than the tolerated "
                f"max({SLACK_PX:g} px, {SLACK_FRACTION:.0%} of the side))")
    return (min(max(x1, 0.0), width), min(max(y1, 0.0), height),
            min(max(x2, 0.0), width), min(max(y2, 0.0), height))
