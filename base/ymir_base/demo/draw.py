"""Pictures of what a model sees: each image twice, ground truth beside the prediction."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np

from ymir_base.demo.compare import Box

# BGR, one per class (cycled): bright colours that stand out from the sample's red, green and
# blue shapes on grey
_COLOURS = ((0, 220, 255), (255, 0, 255), (255, 255, 0), (0, 140, 255), (180, 105, 255), (0, 255, 128))
_FONT = cv2.FONT_HERSHEY_SIMPLEX


def _colour(class_name: str, class_names: Sequence[str]) -> tuple[int, int, int]:
    index = class_names.index(class_name) if class_name in class_names else len(class_names)
    return _COLOURS[index % len(_COLOURS)]


def draw_boxes(image_bgr: np.ndarray, boxes: Sequence[Box], class_names: Sequence[str], *, scale: int = 3,
               scores: bool = False) -> np.ndarray:
    """The image enlarged ``scale`` times (nearest neighbour) with each box and its label."""
    canvas = cv2.resize(image_bgr, None, fx=scale, fy=scale, interpolation=cv2.INTER_NEAREST)
    for box in boxes:
        colour = _colour(box.class_name, class_names)
        p1 = (round(box.x1 * scale), round(box.y1 * scale))
        p2 = (round(box.x2 * scale) - 1, round(box.y2 * scale) - 1)
        cv2.rectangle(canvas, p1, p2, colour, 2)
        label = f"{box.class_name} {box.score:.2f}" if scores else box.class_name
        (tw, th), base = cv2.getTextSize(label, _FONT, 0.45, 1)
        top = p1[1] - th - base - 2 if p1[1] - th - base - 2 >= 0 else p2[1] + 1
        cv2.rectangle(canvas, (p1[0], top), (p1[0] + tw + 4, top + th + base + 2), colour, -1)
        cv2.putText(canvas, label, (p1[0] + 2, top + th + 1), _FONT, 0.45, (255, 255, 255), 1, cv2.LINE_AA)
    return canvas


def _short(name: str) -> str:
    stem, dot, ext = name.rpartition(".")
    return f"{stem[:10]}..{dot}{ext}" if len(stem) > 12 else name


def _titled(panel: np.ndarray, title: str, width: int, height: int) -> np.ndarray:
    """The panel on a white tile of a fixed size, with a title line above it."""
    tile = np.full((height + 24, width, 3), 255, np.uint8)
    h, w = panel.shape[:2]
    tile[24:24 + h, :w] = panel
    cv2.putText(tile, title, (4, 17), _FONT, 0.5, (0, 0, 0), 1, cv2.LINE_AA)
    return tile


def comparison_sheet(items: Sequence[tuple[str, np.ndarray, Sequence[Box], Sequence[Box]]],
                     class_names: Sequence[str], out_png: Path, *, scale: int = 3, pairs_per_row: int = 2) -> Path:
    """One PNG: for each ``(name, image_bgr, truth, predicted)`` the truth and the prediction side
    by side, ``pairs_per_row`` pairs a row. Returns ``out_png``."""
    if not items:
        raise ValueError("no images to draw")
    width = max(img.shape[1] for _, img, _, _ in items) * scale
    height = max(img.shape[0] for _, img, _, _ in items) * scale
    pairs = []
    for name, image, truth, predicted in items:
        left = _titled(draw_boxes(image, truth, class_names, scale=scale), f"{_short(name)}: ground truth",
                       width, height)
        right = _titled(draw_boxes(image, predicted, class_names, scale=scale, scores=True),
                        f"predicted ({len(predicted)})", width, height)
        gap = np.full((left.shape[0], 6, 3), 255, np.uint8)
        pairs.append(np.hstack([left, gap, right]))
    blank = np.full_like(pairs[0], 255)
    rows = []
    for start in range(0, len(pairs), pairs_per_row):
        row = pairs[start:start + pairs_per_row]
        row += [blank] * (pairs_per_row - len(row))
        sep = np.full((row[0].shape[0], 24, 3), 255, np.uint8)
        rows.append(np.hstack([part for pair in row for part in (pair, sep)][:-1]))
    sheet = np.vstack([np.vstack([r, np.full((10, r.shape[1], 3), 255, np.uint8)]) for r in rows])
    out_png = Path(out_png)
    out_png.parent.mkdir(parents=True, exist_ok=True)
    if not cv2.imwrite(str(out_png), sheet):
        raise OSError(f"could not write {out_png}")
    return out_png
