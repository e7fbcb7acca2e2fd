"""``/out/infer-result.json`` (protocol §7.2).

Detection: ``{"detection": {basename: {"boxes": [{"box": {x, y, w, h[, rotate_angle]},
"class_name", "score"}]}}}`` with integer boxes and an entry for every candidate. Rotated boxes
are written as their unrotated extent around the centre plus ``rotate_angle``, exactly as the ark
and VOC readers read them back (see :func:`detection_boxes`).
Segmentation (semantic / instance) is written by ``ymir_base.tasks.writers.SegmentationWriter``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from ymir_base.geometry import rotated_to_result_box
from ymir_base.prediction import Prediction


def detection_boxes(pred: Prediction, class_names: Sequence[str], *, with_angle: bool = False,
                    legacy: bool = False) -> dict[str, list[dict[str, Any]]]:
    """One image's boxes, best score first.

    Axis-aligned boxes (``pred.boxes``) are clipped to the image and rounded; those that round to
    zero width or height are dropped. With ``with_angle`` and ``pred.rboxes`` set, every box comes
    from ``rboxes`` alone (never from the hull in ``boxes``): the unrotated extent around the
    centre, ``x = cx - w / 2`` (the inverse of the ark/VOC readers, see ymir_base/geometry.py), not
    clipped, ``w``/``h`` at least 1, and its ``rotate_angle``; non-finite rotated boxes are dropped.
    """
    h, w = pred.image_size
    rotated = with_angle and pred.rboxes is not None
    out = []
    for i in np.argsort(-pred.scores, kind="stable"):
        cls = int(pred.class_ids[i])
        if not 0 <= cls < len(class_names):
            continue
        box = _rotated_box(pred.rboxes[i]) if rotated else _axis_aligned_box(pred.boxes[i], w, h)
        if box is None:
            continue
        if with_angle and not rotated:
            box["rotate_angle"] = 0.0
        out.append({"box": box, "class_name": class_names[cls], "score": round(float(pred.scores[i]), 6)})
    return {"annotations" if legacy else "boxes": out}


def _axis_aligned_box(xyxy: np.ndarray, w: int, h: int) -> dict[str, Any] | None:
    x1, y1, x2, y2 = (float(v) for v in xyxy)
    x1, x2 = max(0.0, min(x1, w)), max(0.0, min(x2, w))
    y1, y2 = max(0.0, min(y1, h)), max(0.0, min(y2, h))
    x, y = round(x1), round(y1)
    bw, bh = round(x2) - x, round(y2) - y
    if bw <= 0 or bh <= 0:
        return None
    return {"x": int(x), "y": int(y), "w": int(bw), "h": int(bh)}


def _rotated_box(rbox: np.ndarray) -> dict[str, Any] | None:
    xywh = rotated_to_result_box(rbox)
    angle = float(rbox[4])
    if xywh is None or not math.isfinite(angle):
        return None
    x, y, bw, bh = xywh
    return {"x": x, "y": y, "w": bw, "h": bh, "rotate_angle": angle}


def detection_entry(pred: Prediction | None, class_names: Sequence[str], *, with_angle: bool = False,
                    legacy: bool = False) -> dict[str, list[dict[str, Any]]]:
    """One image's entry; an unreadable image (None) gets an empty box list."""
    if pred is None:
        return {"annotations" if legacy else "boxes": []}
    return detection_boxes(pred, class_names, with_angle=with_angle, legacy=legacy)


def dumps(result: Mapping[str, Any]) -> str:
    return json.dumps(result, ensure_ascii=False, separators=(",", ":"))
