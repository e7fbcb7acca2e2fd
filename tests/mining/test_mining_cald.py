import math

import cv2
import numpy as np
import pytest

from ymir_base.mining.cald import (
    CaldMining,
    consistency,
    cutout,
    flip,
    official_score,
    resize,
    rotate,
    rotate_boxes,
    ymir_compat_score,
)
from ymir_base.prediction import Prediction


class BrightBoxPredictor:
    """Finds one box: the bounding box of all bright pixels, with a fixed score.

    It looks only at the pixels, so its answers follow the augmentations exactly like a model's.
    """

    def __init__(self, score: float = 0.8, augmented_empty: bool = False):
        self.score = score
        self.augmented_empty = augmented_empty
        self.calls: list[int] = []

    def detect(self, image: np.ndarray) -> Prediction:
        ys, xs = np.nonzero(image.max(axis=2) > 127)
        if not len(xs):
            return Prediction(image.shape[:2])
        return Prediction(image.shape[:2], boxes=[[xs.min(), ys.min(), xs.max() + 1, ys.max() + 1]],
                          scores=[self.score], class_ids=[0])

    def predict(self, images: list[np.ndarray]) -> list[Prediction]:
        self.calls.append(len(images))
        if self.augmented_empty:
            return [Prediction(im.shape[:2]) for im in images]
        return [self.detect(im) for im in images]


def pred(boxes, scores, class_probs=None) -> Prediction:
    return Prediction((100, 100), boxes=boxes, scores=scores, class_ids=np.zeros(len(scores)),
                      class_probs=None if class_probs is None else np.asarray(class_probs, np.float32))


def bernoulli_js(s, t):
    """JS([1-s, s] || [1-t, t]) in nats, written out."""
    m = ((1 - s + 1 - t) / 2, (s + t) / 2)

    def kl(p):
        return sum(pi * math.log(pi / mi) for pi, mi in zip(p, m, strict=True) if pi > 0)

    return 0.5 * kl((1 - s, s)) + 0.5 * kl((1 - t, t))


def rect_image(x1=20, y1=10, x2=60, y2=50, size=(100, 100)):
    image = np.zeros((*size, 3), np.uint8)
    image[y1:y2, x1:x2] = 255
    return image


# ---- box / image transforms ---------------------------------------------------------------------

def test_flip_transform():
    image = rect_image()
    out, boxes = flip(image, np.array([[10, 20, 30, 60]]))
    assert boxes.tolist() == [[70, 20, 90, 60]]  # x1' = 100 - 30, x2' = 100 - 10
    assert np.array_equal(out, image[:, ::-1])


def test_resize_transform():
    image = np.full((50, 100, 3), 200, np.uint8)
    out, boxes = resize(image, np.array([[10, 20, 30, 40]]))
    assert boxes[0].tolist() == pytest.approx([8, 16, 24, 32])  # x 0.8
    assert out.shape == image.shape
    assert (out[:40, :80] == 200).all() and (out[40:] == 0).all() and (out[:, 80:] == 0).all()


def test_rotate_by_zero_degrees_is_the_identity():
    image = rect_image()
    out, boxes = rotate(image, np.array([[10, 20, 30, 60]]), degrees=0.0)
    assert boxes[0].tolist() == pytest.approx([10, 20, 30, 60])
    assert np.array_equal(out, image)


def test_rotate_boxes_by_hand():
    # 90 degrees about (50, 50): x' = y, y' = 100 - x (OpenCV's counter-clockwise convention)
    m90 = cv2.getRotationMatrix2D((50, 50), 90, 1.0)
    assert rotate_boxes(np.array([[10, 20, 30, 60]]), m90, 100, 100)[0].tolist() == pytest.approx(
        [20, 70, 60, 90], abs=1e-9)
    # 5 degrees: a centred 20x20 square's hull has half-side 10 (cos 5 + sin 5) = 10.8335
    m5 = cv2.getRotationMatrix2D((50, 50), 5, 1.0)
    h = 10 * (math.cos(math.radians(5)) + math.sin(math.radians(5)))
    assert rotate_boxes(np.array([[40, 40, 60, 60]]), m5, 100, 100)[0].tolist() == pytest.approx(
        [50 - h, 50 - h, 50 + h, 50 + h])
    # the full-image box's hull is clipped back to the image
    assert rotate_boxes(np.array([[0, 0, 100, 100]]), m5, 100, 100)[0].tolist() == pytest.approx(
        [0, 0, 100, 100])


def test_transforms_agree_with_a_pixel_based_detector():
    detector = BrightBoxPredictor()
    image = rect_image(20, 10, 60, 50)  # edges on multiples of 5, so x 0.8 lands on whole pixels
    box = np.array([[20, 10, 60, 50]])
    for transform in (flip, resize):
        out, boxes = transform(image, box)
        assert detector.detect(out).boxes.tolist() == boxes.tolist()
    out, boxes = rotate(image, box)
    iou, _ = consistency(detector.detect(image), boxes, detector.detect(out))
    assert iou[0] > 0.9


def test_cutout_is_seeded_and_respects_the_coverage_window():
    image = np.full((100, 100, 3), 255, np.uint8)
    box = np.array([[40, 40, 60, 60]])  # area 400; a cut must cover 40..160 px of it
    a, boxes = cutout(image, box, np.random.default_rng((0, 5)))
    b, _ = cutout(image, box, np.random.default_rng((0, 5)))
    assert np.array_equal(a, b) and boxes.tolist() == box.tolist()
    zero = a.max(axis=2) == 0
    inside = zero[40:60, 40:60].sum()
    assert 40 <= inside <= 2 * 160  # at least one cut accepted, at most two
    # a box the size of the image can never be 10 % covered (largest cut: 20 % x 20 % = 4 %)
    full, _ = cutout(image, np.array([[0, 0, 100, 100]]), np.random.default_rng(0))
    assert np.array_equal(full, image)


# ---- consistency and aggregation ----------------------------------------------------------------

def test_consistency_and_both_aggregations_by_hand():
    # reference: A = [0,0,10,10] s 0.9, B = [20,20,30,30] s 0.6; augmented: one box [0,0,10,5] s 0.7
    ref = pred([[0, 0, 10, 10], [20, 20, 30, 30]], [0.9, 0.6])
    aug = pred([[0, 0, 10, 5]], [0.7])
    iou, c = consistency(ref, ref.boxes, aug)
    # A: IoU* = 50 / 100 = 0.5; c = 0.5 + (0.9 + 0.7) / 2 * (1 - JS(0.9, 0.7))
    # B: no overlap, IoU* = 0 (matched to the first box anyway); c = 0 + (0.6 + 0.7) / 2 * (1 - JS)
    c_a = 0.5 + 0.8 * (1 - bernoulli_js(0.9, 0.7))
    c_b = 0.0 + 0.65 * (1 - bernoulli_js(0.6, 0.7))
    assert iou.tolist() == pytest.approx([0.5, 0.0])
    assert c.tolist() == pytest.approx([c_a, c_b])
    d_a, d_b = abs(c_a - 1.3), abs(c_b - 1.3)
    assert (round(d_a, 3), round(d_b, 3)) == (0.026, 0.654)

    # augmentations: three give this match, one has no predictions
    matches = [(iou, c), (iou, c), None, (iou, c)]
    # official: D = min(1, min(d_a, d_b)) = d_a three times, 0 once; score = -mean
    assert official_score(matches, 1.3) == pytest.approx(-(3 * d_a + 0) / 4)
    # compat: per augmentation r = 2 -> A: r = d_a, total += d_a -> B: IoU* = 0 so r = min(r, 1.3),
    # r = min(r, d_b) = d_a, total += d_a; the empty augmentation adds beta; / 4
    assert ymir_compat_score(matches, 1.3) == pytest.approx((3 * 2 * d_a + 1.3) / 4)
    # compat depends on box order: B first -> r = min(2, 1.3, d_b) = d_b, then min(d_b, d_a) = d_a
    reversed_match = (iou[::-1], c[::-1])
    assert ymir_compat_score([reversed_match] * 4, 1.3) == pytest.approx(d_b + d_a)
    assert official_score([reversed_match] * 4, 1.3) == pytest.approx(-d_a)


def test_distance_is_capped_at_one():
    # c = 0.2 -> |0.2 - 1.3| = 1.1 -> official D = 1; compat keeps 1.1
    match = (np.array([0.0]), np.array([0.2]))
    assert official_score([match] * 4, 1.3) == pytest.approx(-1.0)
    assert ymir_compat_score([match] * 4, 1.3) == pytest.approx(1.1)


def test_class_probability_vectors_replace_the_bernoulli_term():
    # disjoint class vectors: JS([1,0] || [0,1]) = ln 2; c = 1 + (0.8 + 0.6) / 2 * (1 - ln 2)
    ref = pred([[0, 0, 10, 10]], [0.8], class_probs=[[1.0, 0.0]])
    aug = pred([[0, 0, 10, 10]], [0.6], class_probs=[[0.0, 1.0]])
    _, c = consistency(ref, ref.boxes, aug)
    assert c[0] == pytest.approx(1 + 0.7 * (1 - math.log(2)))
    # identical vectors (after normalising [2, 2] to [0.5, 0.5]): JS = 0 -> c = 1 + 0.7
    ref = pred([[0, 0, 10, 10]], [0.8], class_probs=[[2.0, 2.0]])
    aug = pred([[0, 0, 10, 10]], [0.6], class_probs=[[0.5, 0.5]])
    assert consistency(ref, ref.boxes, aug)[1][0] == pytest.approx(1.7)


# ---- end to end through score_batch -------------------------------------------------------------

def test_end_to_end_official_and_compat_by_hand():
    # a fully bright image: one box [0,0,100,100] s 0.8. flip keeps it; cutout cannot cut (a cut
    # covers <= 4 % of the box); rotate's hull is clipped back to the image and the rotated image
    # stays bright on every edge; resize gives [0,0,80,80] for box and pixels alike. So IoU* = 1,
    # JS = 0, c = 1 + 0.8 = 1.8 and |c - 1.3| = 0.5 for all 4 augmentations.
    bright = np.full((100, 100, 3), 255, np.uint8)
    black = np.zeros((100, 100, 3), np.uint8)
    rect = rect_image()
    images = [bright, black, rect]
    for compat, expected_bright, expected_black in ((False, -0.5, 0.0), (True, 0.5, -1.3)):
        predictor = BrightBoxPredictor()
        algo = CaldMining({"cald_ymir_compat": compat}, ["thing"])
        scores = algo.score_batch(images, predictor.predict(images), predictor)
        assert scores[0] == pytest.approx(expected_bright)  # official -0.5; compat 4 * 0.5 / 4
        assert scores[1] == expected_black                   # no prediction: 0 official, -beta compat
        assert predictor.calls == [3, 8]  # one batched call: 4 augmentations x 2 images with boxes
    # official scores are <= 0, so the image without predictions ranks first
    official = CaldMining({}, ["thing"]).score_batch(images, BrightBoxPredictor().predict(images),
                                                     BrightBoxPredictor())
    assert max(official) == official[1] == 0.0


def test_augmentations_without_predictions():
    # the original has a box but every augmented image comes back empty:
    # official D_a = 0 for all -> 0.0; compat adds beta 4 times -> 4 * 1.3 / 4 = 1.3
    images = [np.full((50, 50, 3), 255, np.uint8)]
    preds = BrightBoxPredictor().predict(images)
    empty = BrightBoxPredictor(augmented_empty=True)
    assert CaldMining({}, ["x"]).score_batch(images, preds, empty) == [0.0]
    assert CaldMining({"cald_ymir_compat": "true"}, ["x"]).score_batch(images, preds, empty) == [
        pytest.approx(1.3)]


def test_beta_parameter_and_no_predictor_call_without_boxes():
    images = [np.zeros((20, 20, 3), np.uint8)]
    predictor = BrightBoxPredictor()
    algo = CaldMining({"cald_beta": 2.0, "cald_ymir_compat": True}, ["x"])
    assert algo.score_batch(images, predictor.predict(images), predictor) == [-2.0]
    assert predictor.calls == [1]  # only the caller's own pass; no augmentation pass


def test_scores_are_reproducible():
    rng = np.random.default_rng(0)
    images = [rect_image(*rng.integers(5, 45, 2), *rng.integers(55, 95, 2)) for _ in range(3)]

    def run(seed):
        predictor = BrightBoxPredictor()
        algo = CaldMining({"mining_seed": seed}, ["x"])
        return algo.score_batch(images, predictor.predict(images), predictor)

    assert run(0) == run(0)
    assert all(-1.0 <= s <= 0.0 for s in run(0))


@pytest.mark.parametrize(("value", "expected"), [("t", True), ("Yes", True), (1, True), ("", False), ("off", False)])
def test_compat_flag_reads_booleans_like_every_config_key(value, expected):
    assert CaldMining({"cald_ymir_compat": value}, ["x"]).ymir_compat is expected


def test_bad_compat_flag_is_a_config_error():
    from ymir_base.errors import ConfigError

    with pytest.raises(ConfigError, match="cald_ymir_compat"):
        CaldMining({"cald_ymir_compat": "maybe"}, ["x"])
