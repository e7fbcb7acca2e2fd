"""The demo's comparison sheet: boxes drawn where they belong, in their class colour."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from ymir_base.demo.compare import Box
from ymir_base.demo.draw import comparison_sheet, draw_boxes

CLASSES = ["circle", "square"]


def test_box_outline_lands_on_the_enlarged_pixels():
    image = np.full((40, 50, 3), 128, np.uint8)
    out = draw_boxes(image, [Box(10, 20, 30, 35, "square")], CLASSES, scale=2)
    assert out.shape == (80, 100, 3)
    # the left edge at x = 20 (scaled), inside the box's rows, has the class colour (BGR magenta)
    assert tuple(out[55, 20]) == (255, 0, 255)
    # far from the box the image is untouched
    assert tuple(out[5, 95]) == (128, 128, 128)


def test_scores_appear_only_on_predictions():
    image = np.full((60, 60, 3), 128, np.uint8)
    box = Box(10, 30, 40, 50, "circle", 0.87)
    plain = draw_boxes(image, [box], CLASSES, scale=1)
    scored = draw_boxes(image, [box], CLASSES, scale=1, scores=True)
    # the label strip of the scored box is wider: "circle 0.87" vs "circle"
    assert (scored != plain).any()
    strip = lambda img: int((img[:30] == (0, 220, 255)).all(axis=2).sum())  # noqa: E731
    assert strip(scored) > strip(plain) > 0


def test_sheet_has_one_pair_per_image_in_rows(tmp_path):
    images = [np.full((32, 40, 3), v, np.uint8) for v in (60, 120, 180)]
    items = [(f"img{i}", img, [Box(2, 2, 20, 20, "circle")], []) for i, img in enumerate(images)]
    path = comparison_sheet(items, CLASSES, tmp_path / "sheet.png", scale=2, pairs_per_row=2)
    sheet = cv2.imread(str(path))
    # 2 rows of (title 24 + 64 px image + 10 px gap); a row is 2 pairs of 2 panels 80 px + gaps
    assert sheet.shape[0] == 2 * (24 + 64 + 10)
    assert sheet.shape[1] == 2 * (80 + 6 + 80) + 24


def test_sheet_without_images_is_refused(tmp_path):
    with pytest.raises(ValueError):
        comparison_sheet([], CLASSES, tmp_path / "x.png")
