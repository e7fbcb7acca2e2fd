"""CALD on rotated detections: the reference boxes follow the augmentations as rotated boxes and
are matched by rotated IoU (ymir_base.geometry.polygon_iou), never by their axis-aligned hulls."""

import math

import cv2
import numpy as np
import pytest
import torch

from ymir_base.geometry import polygon_iou, rotated_corners
from ymir_base.mining.cald import AUGMENTATIONS, ROTATE_DEGREES, CaldMining, augment, augment_polygons, consistency
from ymir_base.prediction import Prediction

W, H = 160, 120


class BrightRotatedPredictor:
    """Finds one rotated box: the smallest rotated rectangle around all bright pixels (cv2's
    minAreaRect, whose angle turns the width side clockwise on screen, as YMIR's does)."""

    def detect(self, image: np.ndarray) -> Prediction:
        ys, xs = np.nonzero(image.max(axis=2) > 127)
        if not len(xs):
            return Prediction.from_rotated(image.shape[:2], [], [], [])
        (cx, cy), (w, h), degrees = cv2.minAreaRect(np.column_stack([xs, ys]).astype(np.float32))
        # pixel centres -> pixel edges: half a pixel beyond each extreme centre
        rbox = [cx + 0.5, cy + 0.5, w + 1, h + 1, math.radians(degrees)]
        return Prediction.from_rotated(image.shape[:2], [rbox], [0.8], [0])

    def predict(self, images: list[np.ndarray]) -> list[Prediction]:
        return [self.detect(im) for im in images]


def rotated_rect_image(rbox=(70.0, 60.0, 60.0, 16.0, 0.5)) -> np.ndarray:
    image = np.zeros((H, W, 3), np.uint8)
    corners = rotated_corners(np.array(rbox)) - 0.5  # pixel edges -> pixel centres
    cv2.fillPoly(image, [np.round(corners * 16).astype(np.int32)], (255, 255, 255), shift=4)
    return image


def test_polygon_iou_is_mmcv_rotated_iou():
    from mmcv.ops import box_iou_rotated

    rng = np.random.default_rng(0)

    def boxes(n):
        return np.column_stack([rng.uniform(0, 50, (n, 2)), rng.uniform(1, 30, (n, 2)), rng.uniform(-3, 3, n)])

    a, b = boxes(30), boxes(20)
    ours = polygon_iou(rotated_corners(a), rotated_corners(b)[:, ::-1])  # either turning direction
    reference = box_iou_rotated(torch.tensor(a).float(), torch.tensor(b).float()).numpy()
    assert (ours > 0).sum() > 50
    np.testing.assert_allclose(ours, reference, atol=1e-5)


def test_flip_negates_the_angle_and_rotation_adds_to_it():
    rbox = np.array([[30.0, 20.0, 16.0, 6.0, 0.4]])
    flipped, same, turned, _ = augment_polygons(rotated_corners(rbox), 100, 50)
    assert polygon_iou(flipped, rotated_corners(np.array([[70.0, 20.0, 16.0, 6.0, -0.4]])))[0, 0] == pytest.approx(1)
    assert polygon_iou(flipped, rotated_corners(rbox))[0, 0] < 0.2
    np.testing.assert_array_equal(same, rotated_corners(rbox))
    # cv2 turns the image counter-clockwise on screen for positive degrees: the angle decreases
    matrix = cv2.getRotationMatrix2D((50, 25), ROTATE_DEGREES, 1.0)
    centre = matrix[:, :2] @ rbox[0, :2] + matrix[:, 2]
    expected = [[*centre, 16.0, 6.0, 0.4 - math.radians(ROTATE_DEGREES)]]
    np.testing.assert_allclose(np.sort(turned[0], axis=0), np.sort(rotated_corners(np.array(expected))[0], axis=0),
                               atol=1e-9)


def test_resize_scales_rotated_boxes():
    rbox = np.array([[50.0, 25.0, 20.0, 10.0, 0.7]])
    resized = augment_polygons(rotated_corners(rbox), 100, 50)[3]  # 0.8: 80 x 40, the same scale on both axes
    np.testing.assert_allclose(resized, rotated_corners(np.array([[40.0, 20.0, 16.0, 8.0, 0.7]])), atol=1e-9)


@pytest.mark.parametrize("augmentation", ["flip", "rotate", "resize"])
def test_transforms_agree_with_a_pixel_based_rotated_detector(augmentation):
    detector = BrightRotatedPredictor()
    image = rotated_rect_image()
    ref = detector.detect(image)
    k = AUGMENTATIONS.index(augmentation)
    aug_image, aug_box = augment(image, ref.boxes, np.random.default_rng(0))[k]
    aug = detector.detect(aug_image)
    polygons = augment_polygons(rotated_corners(ref.rboxes), W, H)[k]
    iou, _ = consistency(ref, aug_box, aug, polygons)
    assert iou[0] > 0.9
    if augmentation == "rotate":  # the old hull matching would call this box inconsistent
        hull_iou, _ = consistency(ref, aug_box, aug)
        assert hull_iou[0] < 0.8


def test_cald_scores_a_consistent_rotated_detection_by_rotated_iou():
    detector = BrightRotatedPredictor()
    image = rotated_rect_image()
    ref = detector.detect(image)
    miner = CaldMining({"mining_seed": 0}, ["bar"])
    rotated_score = miner.score_batch([image], [ref], detector)[0]
    hull_only = Prediction(ref.image_size, boxes=ref.boxes, scores=ref.scores, class_ids=ref.class_ids)
    hull_score = CaldMining({"mining_seed": 0}, ["bar"]).score_batch([image], [hull_only], detector)[0]
    # c = IoU* + s (1 - 0) = IoU* + 0.8: rotated IoU* near 1 puts c near 1.8, |c - 1.3| near 0.5
    assert -0.5 <= rotated_score < -0.4
    assert rotated_score != hull_score
