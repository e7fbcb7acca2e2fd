"""``cald``: Consistency-based Active Learning for object Detection (Yu et al., CVPRW 2022).

Each image with predictions is augmented four ways (``flip``, ``cutout``, ``rotate`` 5°, ``resize``
0.8 pasted top-left on a black canvas); the reference boxes are mapped through each augmentation
and matched to the augmented image's predictions (docs/mining.md §2.4). For reference box m:

    IoU* = max_n IoU(T_a(ref_m), aug_n),  n* = its argmax (first on ties)
    c_m  = IoU* + ½ (s_ref_m + s_aug_n*) (1 - JS)

JS is the Jensen-Shannon divergence (nats) between the two boxes' ``class_probs`` vectors when both
predictions carry them (as in the official code), else between the Bernoulli distributions
[1 - s, s] of the two confidences (as in the YMIR ports). s is always the box confidence.

Aggregation, default = the official direction (stage 1 of the paper; no class-diversity stage 2):

    D_a = min(1, min_m |c_m - β|), and D_a = 0 when augmentation a has no predictions
    score = -mean_a D_a, and 0.0 when the original image has no predictions

Scores are <= 0; consistency close to the base point β (``cald_beta``, 1.3) is most informative,
and images without predictions come first, as in official CALD.

``cald_ymir_compat: true`` reproduces the aggregation of the YMIR yolov5 / mmdet / yolov5-seg ports,
which rank the other way: per augmentation a running minimum r starts at 2.0; for each reference
box in order, r = min(r, β) if IoU* = 0, then r = min(r, |c_m - β|), and r is **added to the image
total inside the loop** (so the score grows with the box count); an augmentation without
predictions adds β; the total is divided by 4; an image without predictions scores -β. Only the
aggregation is reproduced: boxes are not truncated to integers and the image transforms are ours.

Rotated detections (predictions with ``rboxes``): the reference boxes' corners go through the same
point maps as the image (flip mirrors x, which turns a box's angle into its negative; rotate turns
them about the image centre, adding the rotation to the angle; resize scales them; cutout leaves
them), and IoU* is the IoU of those polygons with the augmented image's rotated boxes, not of
axis-aligned hulls. Cutout still places its cuts by the hulls.

Transforms: the port's rotation used source scale max(H, W) and target scale W, which also shrank
portrait images by W/H; we rotate about the centre with scale 1. Cutout is seeded with
(``mining_seed``, n), n = the image's position among all images this instance has scored, so a
run is reproducible and independent of the batch size (the ports were unseeded).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import cv2
import numpy as np

from ymir_base.geometry import polygon_iou, rotated_corners
from ymir_base.mining._common import box_iou, js_divergence, param_bool, param_float, param_int
from ymir_base.mining.base import BOX_KINDS, AugmentPredictor, MiningAlgorithm, register
from ymir_base.prediction import AUGMENTED_PREDICT, BOXES, Prediction

AUGMENTATIONS = ("flip", "cutout", "rotate", "resize")
ROTATE_DEGREES = 5.0
RESIZE_RATIO = 0.8
CUTOUT_MAX_CUTS = 2
CUTOUT_SIDE = (0.05, 0.2)     # side of a cut, as a fraction of the image side
CUTOUT_COVER = (0.1, 0.4)     # accepted range of the largest fraction of a box a cut covers
CUTOUT_TRIES = 50

# per reference box: (IoU*, c); None = the augmented image had no predictions
Match = tuple[np.ndarray, np.ndarray] | None


def flip(image: np.ndarray, boxes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Horizontal mirror: x1' = W - x2, x2' = W - x1."""
    width = image.shape[1]
    out = np.asarray(boxes, np.float64).reshape(-1, 4).copy()
    out[:, [0, 2]] = width - out[:, [2, 0]]
    return np.ascontiguousarray(image[:, ::-1]), out


def cutout(image: np.ndarray, boxes: np.ndarray,
           rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Zero up to 2 rectangles that each cover 10-40 % of some box at most; boxes unchanged."""
    height, width = image.shape[:2]
    boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
    areas = np.clip(boxes[:, 2] - boxes[:, 0], 0, None) * np.clip(boxes[:, 3] - boxes[:, 1], 0, None)
    out = image.copy()
    cuts = 0
    for _ in range(CUTOUT_TRIES):
        if cuts == CUTOUT_MAX_CUTS or not len(boxes):
            break
        ch = max(1, int(rng.uniform(*CUTOUT_SIDE) * height))
        cw = max(1, int(rng.uniform(*CUTOUT_SIDE) * width))
        y0 = int(rng.integers(0, height - ch + 1))
        x0 = int(rng.integers(0, width - cw + 1))
        iw = np.clip(np.minimum(x0 + cw, boxes[:, 2]) - np.maximum(x0, boxes[:, 0]), 0, None)
        ih = np.clip(np.minimum(y0 + ch, boxes[:, 3]) - np.maximum(y0, boxes[:, 1]), 0, None)
        cover = np.divide(iw * ih, areas, out=np.zeros_like(areas), where=areas > 0)
        if CUTOUT_COVER[0] <= cover.max() <= CUTOUT_COVER[1]:
            out[y0:y0 + ch, x0:x0 + cw] = 0
            cuts += 1
    return out, boxes.copy()


def rotate_boxes(boxes: np.ndarray, matrix: np.ndarray, width: int, height: int) -> np.ndarray:
    """The 4 corners of each box through the 2x3 affine, axis-aligned hull, clipped to the image."""
    b = np.asarray(boxes, np.float64).reshape(-1, 4)
    corners = np.stack([b[:, [0, 1]], b[:, [2, 1]], b[:, [0, 3]], b[:, [2, 3]]], axis=1)  # [N, 4, 2]
    moved = corners @ matrix[:, :2].T + matrix[:, 2]
    hull = np.concatenate([moved.min(axis=1), moved.max(axis=1)], axis=1)
    return np.clip(hull, 0, [width, height, width, height])


def rotate(image: np.ndarray, boxes: np.ndarray,
           degrees: float = ROTATE_DEGREES) -> tuple[np.ndarray, np.ndarray]:
    """Rotate about the image centre (scale 1, same size, black border)."""
    height, width = image.shape[:2]
    # pixel (i, j) has its centre at (j + 0.5, i + 0.5) in box coordinates, so the same rotation
    # is about ((W-1)/2, (H-1)/2) for pixel indices and about (W/2, H/2) for boxes
    pixels = cv2.getRotationMatrix2D(((width - 1) / 2, (height - 1) / 2), degrees, 1.0)
    rotated = cv2.warpAffine(image, pixels, (width, height), flags=cv2.INTER_LINEAR,
                             borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    return rotated, rotate_boxes(boxes, _box_rotation(width, height, degrees), width, height)


def _box_rotation(width: int, height: int, degrees: float) -> np.ndarray:
    """The 2x3 affine that ``rotate`` applies to box coordinates."""
    return cv2.getRotationMatrix2D((width / 2, height / 2), degrees, 1.0)


def _resize_scale(width: int, height: int, ratio: float) -> np.ndarray:
    """The x and y scale of ``resize`` (the rounded new size over the old)."""
    return np.array([max(1, round(width * ratio)) / width, max(1, round(height * ratio)) / height])


def resize(image: np.ndarray, boxes: np.ndarray,
           ratio: float = RESIZE_RATIO) -> tuple[np.ndarray, np.ndarray]:
    """Shrink by ``ratio`` (area interpolation) and paste top-left on a black canvas of the same size."""
    height, width = image.shape[:2]
    new_w, new_h = max(1, round(width * ratio)), max(1, round(height * ratio))
    out = np.zeros_like(image)
    out[:new_h, :new_w] = cv2.resize(image, (new_w, new_h), interpolation=cv2.INTER_AREA)
    return out, np.asarray(boxes, np.float64).reshape(-1, 4) * np.tile(_resize_scale(width, height, ratio), 2)


def augment(image: np.ndarray, boxes: np.ndarray,
            rng: np.random.Generator) -> list[tuple[np.ndarray, np.ndarray]]:
    """(augmented image, transformed boxes) for each of AUGMENTATIONS, in that order."""
    return [flip(image, boxes), cutout(image, boxes, rng), rotate(image, boxes), resize(image, boxes)]


def augment_polygons(polygons: np.ndarray, width: int, height: int) -> list[np.ndarray]:
    """Polygons ``[M, K, 2]`` (rotated boxes' corners) through each of AUGMENTATIONS, in that order,
    as ``augment`` moves the pixels of a ``width x height`` image."""
    points = np.asarray(polygons, np.float64)
    flipped = points.copy()
    flipped[..., 0] = width - flipped[..., 0]
    matrix = _box_rotation(width, height, ROTATE_DEGREES)
    return [flipped, points.copy(), points @ matrix[:, :2].T + matrix[:, 2],
            points * _resize_scale(width, height, RESIZE_RATIO)]


def consistency(ref: Prediction, ref_boxes: np.ndarray, aug: Prediction,
                ref_polygons: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Per reference box: IoU* with its best-matching augmented prediction, and c. With
    ``ref_polygons`` (the transformed corners of rotated reference boxes) and rotated augmented
    predictions, the IoU is that of the rotated boxes."""
    if ref_polygons is not None and aug.rboxes is not None:
        ious = polygon_iou(ref_polygons, rotated_corners(aug.rboxes))
    else:
        ious = box_iou(ref_boxes, aug.boxes)  # [M, N]
    best = ious.argmax(axis=1)
    iou_star = ious[np.arange(len(ious)), best]
    s_ref = np.clip(ref.scores.astype(np.float64), 0.0, 1.0)
    s_aug = np.clip(aug.scores[best].astype(np.float64), 0.0, 1.0)
    if ref.class_probs is not None and aug.class_probs is not None:
        js = js_divergence(_normalised(ref.class_probs), _normalised(aug.class_probs[best]))
    else:
        js = js_divergence(np.stack([1 - s_ref, s_ref], axis=1), np.stack([1 - s_aug, s_aug], axis=1))
    return iou_star, iou_star + 0.5 * (s_ref + s_aug) * (1.0 - js)


def official_score(matches: Sequence[Match], beta: float) -> float:
    """-mean_a min(1, min_m |c_m - β|), with D_a = 0 for an augmentation without predictions."""
    distances = [0.0 if m is None else min(1.0, float(np.min(np.abs(m[1] - beta)))) for m in matches]
    return 0.0 - float(np.mean(distances))  # 0.0 - x: no "-0.0" in result.tsv


def ymir_compat_score(matches: Sequence[Match], beta: float) -> float:
    """The yolov5 / mmdet port's aggregation (see the module docstring), bit-for-bit."""
    total = 0.0
    for match in matches:
        if match is None:
            total += beta
            continue
        running = 2.0
        for iou, c in zip(*match, strict=True):
            if iou == 0:
                running = min(running, beta)
            running = min(running, abs(float(c) - beta))
            total += running
    return total / len(matches)


def _normalised(probs: np.ndarray) -> np.ndarray:
    probs = np.clip(np.asarray(probs, np.float64), 0.0, None)
    return probs / np.clip(probs.sum(axis=-1, keepdims=True), 1e-12, None)


@register
class CaldMining(MiningAlgorithm):
    name: ClassVar[str] = "cald"
    kinds: ClassVar[frozenset[str]] = BOX_KINDS
    needs: ClassVar[frozenset[str]] = frozenset({BOXES, AUGMENTED_PREDICT})

    def __init__(self, params: Mapping[str, Any], class_names: Sequence[str]):
        super().__init__(params, class_names)
        self.beta = param_float(self.params, "cald_beta", 1.3)
        self.ymir_compat = param_bool(self.params, "cald_ymir_compat", False)
        self.seed = param_int(self.params, "mining_seed", 0, minimum=0)
        self._seen = 0  # images scored so far by this instance (the cutout stream index)

    def score_batch(self, images: list[np.ndarray], predictions: list[Prediction] | None,
                    predictor: AugmentPredictor | None) -> list[float]:
        if predictions is None or predictor is None:
            raise ValueError("cald mining needs the predictions and a predictor for augmented images")
        no_prediction = -self.beta if self.ymir_compat else 0.0
        scores = [no_prediction] * len(images)
        todo = [i for i, pred in enumerate(predictions) if len(pred)]
        aug_images: list[np.ndarray] = []
        aug_boxes: list[np.ndarray] = []
        aug_polygons: list[np.ndarray | None] = []
        for i in todo:
            rng = np.random.default_rng((self.seed, self._seen + i))
            for image, boxes in augment(images[i], predictions[i].boxes, rng):
                aug_images.append(image)
                aug_boxes.append(boxes)
            rboxes = predictions[i].rboxes
            height, width = images[i].shape[:2]
            aug_polygons += (augment_polygons(rotated_corners(rboxes), width, height) if rboxes is not None
                             else [None] * len(AUGMENTATIONS))
        self._seen += len(images)
        if not todo:
            return scores
        aug_preds = predictor.predict(aug_images)  # image-major: 4 consecutive entries per image
        if len(aug_preds) != len(aug_images):
            raise ValueError(f"predictor returned {len(aug_preds)} predictions for {len(aug_images)} images")
        aggregate = ymir_compat_score if self.ymir_compat else official_score
        n_aug = len(AUGMENTATIONS)
        for k, i in enumerate(todo):
            matches: list[Match] = []
            for j in range(k * n_aug, (k + 1) * n_aug):
                pred = aug_preds[j]
                matches.append(consistency(predictions[i], aug_boxes[j], pred, aug_polygons[j]) if len(pred)
                               else None)
            scores[i] = aggregate(matches, self.beta)
        return scores
