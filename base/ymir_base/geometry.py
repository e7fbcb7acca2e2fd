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
