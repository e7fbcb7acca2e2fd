"""Deterministic synthetic YMIR ``/in`` folders for tests, demos and conformance runs.

``generate()`` draws content-addressed JPEG assets and writes the rest of the ``/in`` folder
through writer.py (annotations in the chosen export format, index files, ``env.yaml``,
``config.yaml``). The same arguments always give byte-identical files (one seeded numpy
generator drives everything).

Images show filled circles, squares and triangles in class colours on a textured background.
Object k of the whole dataset gets class ``k % len(class_names)`` and the shape
``("circle", "square", "triangle")[class % 3]``; for ``object_type="rotated"`` squares become
rotated rectangles (angle in radians, 4 decimals, clockwise on screen since y points down; the
box written to the file is the unrotated extent around the rectangle's centre). Image 1 (the
second) has no objects. Sizes alternate between ``size`` and ``size`` transposed.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from ymir_base.sample.writer import FORMATS, OBJECT_TYPES, TASKS, Sample, Shape, asset_path, write_file, write_task

NEGATIVE_IMAGE = 1  # index of the image without objects

_SHAPES = ("circle", "square", "triangle")
_PALETTE = ((230, 40, 40), (40, 190, 60), (50, 80, 235), (235, 200, 30), (200, 50, 200), (30, 200, 210))
_MAX_OBJECTS = 4
_PLACEMENT_TRIES = 50


def generate(out_dir: Path, *, task: str, object_type: str, fmt: str, images: int = 12, seed: int = 0,
             size: tuple[int, int] = (160, 128), class_names: Sequence[str] = _SHAPES,
             extra_config: dict[str, Any] | None = None, models: dict[str, Path] | None = None) -> Path:
    """Write a complete ``/in`` folder at ``out_dir`` and return ``out_dir``.

    ``fmt="coco"`` means ``coco:raw`` for detection/rotated and ``seg-coco:raw`` for
    semantic/instance (which require coco). ``size`` is ``(width, height)``. ``models`` maps a
    stage name to a folder whose files are copied to ``models/<stage>/``; the first stage is the
    one config.yaml points at. ``extra_config`` is merged last, so it can also override platform
    keys (e.g. ``gpu_id: '0'``, ``gpu_count: 1`` for a GPU run).
    """
    _check_args(task, object_type, fmt, images, size, class_names)
    out_dir = Path(out_dir)
    rng = np.random.default_rng(seed)
    samples = []
    next_class = 0
    for i in range(images):
        width, height = size if i % 2 == 0 else size[::-1]
        count = 0 if i == NEGATIVE_IMAGE else int(rng.integers(1, _MAX_OBJECTS + 1))
        classes = [(next_class + k) % len(class_names) for k in range(count)]
        next_class += count
        jpeg, shapes = _render(rng, i, width, height, classes, rotated=object_type == "rotated")
        digest = hashlib.sha1(jpeg).hexdigest()
        write_file(asset_path(out_dir, digest), jpeg)
        samples.append(Sample(digest, width, height, shapes))

    task_id = "t" + hashlib.sha1(f"{task}/{object_type}/{fmt}/{seed}".encode()).hexdigest()[:29]
    return write_task(out_dir, task=task, samples=samples, class_names=class_names, object_type=object_type,
                      fmt=fmt, task_id=task_id, extra_config=extra_config, models=models)


def _check_args(task: str, object_type: str, fmt: str, images: int, size: tuple[int, int],
                class_names: Sequence[str]) -> None:
    if task not in TASKS:
        raise ValueError(f"task {task!r} is not one of {TASKS}")
    if object_type not in OBJECT_TYPES:
        raise ValueError(f"object_type {object_type!r} is not one of {tuple(OBJECT_TYPES)}")
    if fmt not in FORMATS:
        raise ValueError(f"fmt {fmt!r} is not one of {FORMATS}")
    if object_type in ("semantic", "instance") and fmt != "coco":
        raise ValueError(f"object_type {object_type!r} needs fmt 'coco' (seg-coco), not {fmt!r}")
    if images < (4 if task == "training" else 1):
        raise ValueError(f"images={images} is too few (training needs 4: at least 2 per split)")
    if min(size) < 32:
        raise ValueError(f"size {size} is too small (at least 32 px per side)")
    if not class_names or len(set(class_names)) != len(class_names):
        raise ValueError(f"class_names {class_names!r} must be non-empty and unique")


def _render(rng: np.random.Generator, index: int, width: int, height: int, classes: list[int],
            *, rotated: bool) -> tuple[bytes, list[Shape]]:
    """JPEG bytes of one image and the shapes drawn on it (no two overlap)."""
    image = _background(rng, index, width, height)
    shapes: list[Shape] = []
    placed: list[tuple[int, int, float]] = []  # bounding circles
    for class_id in classes:
        for _ in range(_PLACEMENT_TRIES):
            polygon, (cx, cy), radius, angle, box = _outline(rng, _SHAPES[class_id % 3], width, height,
                                                             rotated)
            if all(math.hypot(cx - x, cy - y) > radius + r + 2 for x, y, r in placed):
                break
        else:
            continue  # no room left in this image
        mask = np.zeros((height, width), np.uint8)
        cv2.fillPoly(mask, [polygon], 1)
        if box is None:  # tight pixel extent of what was drawn
            ys, xs = np.nonzero(mask)
            box = (int(xs.min()), int(ys.min()), int(xs.max()), int(ys.max()))
        colour = np.clip(np.array(_PALETTE[class_id % len(_PALETTE)]) + rng.integers(-15, 16, 3), 0, 255)
        image[mask > 0] = colour.astype(np.uint8)
        placed.append((cx, cy, radius))
        shapes.append(Shape(class_id, polygon, box, angle, int(mask.sum())))
    ok, jpeg = cv2.imencode(".jpg", cv2.cvtColor(image, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 90])
    if not ok:
        raise RuntimeError("OpenCV could not encode a JPEG")
    return jpeg.tobytes(), shapes


def _background(rng: np.random.Generator, index: int, width: int, height: int) -> np.ndarray:
    """Greyish gradient plus noise, with diagonal stripes on every other image."""
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    direction = rng.uniform(0, 2 * math.pi)
    gradient = math.cos(direction) * xx / width + math.sin(direction) * yy / height
    tint = rng.uniform(90, 150) + rng.uniform(-15, 15, 3)
    image = tint[None, None, :] + 40 * gradient[..., None]
    if index % 2:
        period = float(rng.uniform(8, 20))
        image += 15 * np.sign(np.sin(2 * math.pi * (xx + yy) / period))[..., None]
    image += rng.normal(0, 10, (height, width, 3))
    return np.clip(image, 0, 255).astype(np.uint8)


def _outline(rng: np.random.Generator, shape: str, width: int, height: int, rotated: bool
             ) -> tuple[np.ndarray, tuple[int, int], float, float, tuple[int, int, int, int] | None]:
    """One shape at a random place: ``(polygon, centre, bounding radius, angle, box)``.

    ``box`` is the unrotated inclusive extent of a rotated rectangle, else None (the caller
    measures the drawn pixels).
    """
    side = min(width, height)
    s = int(rng.integers(max(6, side // 8), max(7, side // 4 + 1))) // 2 * 2  # even: integer centre
    angle, h = 0.0, s
    if shape == "circle":
        rel = cv2.ellipse2Poly((0, 0), (s // 2, s // 2), 0, 0, 360, 10).astype(np.float64)
    elif shape == "triangle":
        rel = np.array([(0, -s / 2), (-s / 2, 0.4 * s), (s / 2, 0.4 * s)])
    elif not rotated:  # pixel-inclusive corners: fillPoly covers exactly s x s pixels
        rel = np.array([(0, 0), (s - 1, 0), (s - 1, s - 1), (0, s - 1)], np.float64) - s // 2
    else:
        h = 2 * round(s * float(rng.uniform(0.45, 0.7)) / 2)
        angle = round(float(rng.uniform(0.2, 1.0)) * float(rng.choice([-1, 1])), 4)
        c, si = math.cos(angle), math.sin(angle)
        corners = np.array([(0, 0), (s, 0), (s, h), (0, h)], np.float64) - (s / 2, h / 2)
        rel = corners @ np.array([[c, si], [-si, c]])  # clockwise on screen for angle > 0
    radius = float(np.hypot(rel[:, 0], rel[:, 1]).max()) + 1
    margin = math.ceil(radius)
    cx, cy = int(rng.integers(margin, width - margin)), int(rng.integers(margin, height - margin))
    polygon = np.round(rel + np.array([cx, cy])).astype(np.int32)
    box = (cx - s // 2, cy - h // 2, cx + s // 2 - 1, cy + h // 2 - 1) if angle else None
    return polygon, (cx, cy), radius, angle, box


