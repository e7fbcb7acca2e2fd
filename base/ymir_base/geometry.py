"""Rotated-box geometry shared by the dataset checks, the prediction type and the result writer.

A rotated box is ``cx, cy, w, h, angle``: the unrotated ``w x h`` extent centred on ``(cx, cy)``,
turned about the centre by ``angle`` radians, clockwise on screen for a positive angle (image y
points down). This is how YMIR's rotated data is read (ark / VOC ``rotate_angle``, see
docs/protocol.md) and how the sample generator draws it.

Pixel convention: ``x1, y1, x2, y2`` boxes have x2/y2 exclusive (``ObjectAnnotation.bbox``), so the
inclusive ark/VOC extent ``xmin..xmax`` is ``x1 = xmin, x2 = xmax + 1``, its centre
``(xmin + xmax + 1) / 2`` and its width ``xmax - xmin + 1``. The YMIR result box ``{x, y, w, h}``
has ``x = xmin`` and ``w = xmax - xmin + 1``, i.e. ``x = cx - w / 2``.
"""

from __future__ import annotations

import math

import numpy as np


def box_to_rotated(bbox: tuple[float, float, float, float] | np.ndarray, angle: float) -> np.ndarray:
    """``[cx, cy, w, h, angle]`` (float64) of the unrotated extent ``x1, y1, x2, y2`` (x2/y2 exclusive)."""
    x1, y1, x2, y2 = (float(v) for v in bbox)
    return np.array([(x1 + x2) / 2, (y1 + y2) / 2, x2 - x1, y2 - y1, float(angle)], np.float64)


def rotated_corners(rboxes: np.ndarray) -> np.ndarray:
    """Corners ``[..., 4, 2]`` (x, y) of rotated boxes ``[..., 5]``, in the order top-left,
    top-right, bottom-right, bottom-left of the unrotated box."""
    rboxes = np.asarray(rboxes, np.float64)
    cx, cy, w, h, a = (rboxes[..., k, None] for k in range(5))
    dx = np.array([-0.5, 0.5, 0.5, -0.5]) * w
    dy = np.array([-0.5, -0.5, 0.5, 0.5]) * h
    cos, sin = np.cos(a), np.sin(a)
    return np.stack([cx + dx * cos - dy * sin, cy + dx * sin + dy * cos], axis=-1)


def rotated_hull(rboxes: np.ndarray) -> np.ndarray:
    """Axis-aligned hulls ``[N, 4]`` (x1, y1, x2, y2) of rotated boxes ``[N, 5]``."""
    corners = rotated_corners(np.asarray(rboxes, np.float64).reshape(-1, 5))
    return np.concatenate([corners.min(axis=1), corners.max(axis=1)], axis=1)


def round_half_up(value: float) -> int:
    """Nearest integer, halves up: unlike ``round`` it commutes with integer shifts, so a box keeps
    its size wherever it lies."""
    return math.floor(value + 0.5)


def rotated_to_result_box(rbox: np.ndarray | tuple[float, ...]) -> tuple[int, int, int, int] | None:
    """Integer ``x, y, w, h`` of the unrotated extent of ``rbox`` (cx, cy, w, h, angle): ``w, h`` are
    the rounded size (at least 1) and ``x, y`` put the centre back where it was. Not clipped to any
    image. None for a non-finite box or a non-positive size."""
    cx, cy, w, h = (float(v) for v in list(rbox)[:4])
    if not all(math.isfinite(v) for v in (cx, cy, w, h)) or w <= 0 or h <= 0:
        return None
    iw, ih = max(1, round_half_up(w)), max(1, round_half_up(h))
    return round_half_up(cx - iw / 2), round_half_up(cy - ih / 2), iw, ih


def polygon_area(polygon: np.ndarray) -> float:
    """Signed area of a polygon ``[K, 2]`` (shoelace): positive when its corners turn clockwise
    on screen (image y points down), as ``rotated_corners`` lists them."""
    x, y = np.asarray(polygon, np.float64).T
    return 0.5 * float(np.dot(x, np.roll(y, -1)) - np.dot(np.roll(x, -1), y))


def _clip_convex(subject: list[np.ndarray], clipper: np.ndarray) -> list[np.ndarray]:
    """The part of convex polygon ``subject`` inside convex ``clipper`` (positive area), by clipping
    with each of its edges in turn (Sutherland-Hodgman)."""
    for k in range(len(clipper)):
        if not subject:
            break
        a, edge = clipper[k], clipper[(k + 1) % len(clipper)] - clipper[k]
        side = [float(edge[0] * (p[1] - a[1]) - edge[1] * (p[0] - a[0])) for p in subject]
        kept = []
        for i, (p, q) in enumerate(zip(subject, subject[1:] + subject[:1], strict=True)):
            sp, sq = side[i], side[(i + 1) % len(subject)]
            if sp >= 0:
                kept.append(p)
            if (sp >= 0) != (sq >= 0):
                kept.append(p + (q - p) * (sp / (sp - sq)))
        subject = kept
    return subject


def polygon_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pairwise IoU ``[M, N]`` of convex polygons ``a [M, K, 2]`` and ``b [N, L, 2]`` (e.g. corners
    of rotated boxes, in either turning direction). Pairs whose axis-aligned hulls do not overlap
    are 0 without clipping; a zero-area pair is 0, not NaN."""
    a = [_positive(p) for p in np.asarray(a, np.float64).reshape(len(a), -1, 2)]
    b = [_positive(p) for p in np.asarray(b, np.float64).reshape(len(b), -1, 2)]
    out = np.zeros((len(a), len(b)))
    for i, pa in enumerate(a):
        area_a = polygon_area(pa)
        for j, pb in enumerate(b):
            if (pa.max(axis=0) <= pb.min(axis=0)).any() or (pb.max(axis=0) <= pa.min(axis=0)).any():
                continue
            inter = _clip_convex(list(pa), pb)
            overlap = polygon_area(np.array(inter)) if len(inter) >= 3 else 0.0
            union = area_a + polygon_area(pb) - overlap
            out[i, j] = overlap / union if union > 0 else 0.0
    return out


def _positive(polygon: np.ndarray) -> np.ndarray:
    """``polygon`` with its corners in the order of positive signed area (a mirrored box turns the other way)."""
    return polygon[::-1].copy() if polygon_area(polygon) < 0 else polygon
