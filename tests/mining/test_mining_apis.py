"""apis: per-instance in-box mask entropy (default) and the old port's mean-map entropy (compat),
on hand-made predictions whose values are known."""

import math

import numpy as np
import pytest
import torch

from ymir_base.errors import ConfigError
from ymir_base.mining import algorithm_names, get_algorithm
from ymir_base.mining._common import box_pixels
from ymir_base.mining.apis import ApisMining, mean_map_entropy
from ymir_base.prediction import MASK_PROBS, Prediction


def bits(p: float) -> float:
    return -(p * math.log2(p) + (1 - p) * math.log2(1 - p))


def instance_pred(probs, mask_boxes, input_size=(32, 32)) -> Prediction:
    probs = np.asarray(probs, np.float32)
    n = len(probs)
    return Prediction((100, 100), boxes=np.tile([0, 0, 10, 10], (n, 1)), scores=np.full(n, 0.9),
                      class_ids=np.zeros(n), mask_probs=probs, mask_boxes=np.asarray(mask_boxes, np.float32),
                      input_size=input_size)


def score(pred: Prediction, **params) -> float:
    return ApisMining(params, ["cat"]).score_batch([np.zeros((4, 4, 3), np.uint8)], [pred], None)[0]


def constant(value: float, n: int = 1, size: int = 8) -> np.ndarray:
    return np.full((n, size, size), value, np.float32)


def test_registered_for_instance_only_with_the_mask_outputs():
    assert "apis" in algorithm_names("instance")
    assert all("apis" not in algorithm_names(kind) for kind in ("detection", "rotated", "semantic"))
    algorithm = get_algorithm("APIS", {}, ["cat"], ["apis"], kind="instance")
    assert type(algorithm) is ApisMining and algorithm.outputs_wanted() == {MASK_PROBS}


def test_uncertain_masks_rank_above_confident_ones():
    uncertain = instance_pred(constant(0.5, 2) + np.float32(0.01), [[0, 0, 8, 8]] * 2)
    confident = instance_pred(np.concatenate([constant(0.02), constant(0.98)]), [[0, 0, 8, 8]] * 2)
    assert score(uncertain) > score(confident) > 0
    assert score(confident) == pytest.approx(2 * bits(0.02), rel=1e-5)


def test_sum_of_per_instance_means_inside_the_box_in_bits():
    probs = constant(0.02, 2)
    probs[0, 2:4, 2:6] = 0.5  # box 0 = these 8 pixels: mean entropy 1 bit
    probs[1, :4, :] = 0.5     # box 1 = the lower half, low entropy; the uncertain top is outside
    pred = instance_pred(probs, [[2, 2, 6, 4], [0, 4, 8, 8]])
    assert score(pred) == pytest.approx(1.0 + bits(0.02), rel=1e-5)
    # a box [2.1, 2.4] x [2, 4] holds no pixel centre in x: the column under its centre counts
    assert score(instance_pred(probs[:1], [[2.1, 2.0, 2.4, 4.0]])) == pytest.approx(1.0, rel=1e-6)


def test_no_detection_sentinels():
    empty = Prediction((10, 10), mask_probs=np.zeros((0, 8, 8), np.float32), mask_boxes=np.zeros((0, 4)))
    assert score(empty) == 0.0
    assert score(empty, apis_ymir_compat=True) == -10.0
    assert score(Prediction((10, 10))) == 0.0  # no soft masks needed when nothing was found


def test_compat_mean_map_by_hand():
    # a 2x2 grid under a 4x4 input: detection A is 0.5 everywhere (box = grid), detection B is 1 in
    # the left column (its box); bilinear x2 (align_corners False) turns B's cropped columns
    # [1, 0] into [1, 0.75, 0.25, 0], so the mean map's columns are [0.75, 0.625, 0.375, 0.25]
    probs = np.array([[[0.5, 0.5], [0.5, 0.5]], [[1.0, 0.3], [1.0, 0.3]]], np.float32)
    pred = instance_pred(probs, [[0, 0, 2, 2], [0, 0, 1, 2]], input_size=(4, 4))
    expected = 4 * sum(bits(p) for p in (0.75, 0.625, 0.375, 0.25))
    assert score(pred, apis_ymir_compat=True) == pytest.approx(expected, rel=1e-6)
    # a single p = 0.5 instance over the whole grid: 1 bit per input pixel
    assert score(instance_pred(probs[:1], [[0, 0, 2, 2]], input_size=(4, 4)), apis_ymir_compat="true") == \
        pytest.approx(16.0, rel=1e-6)


def test_compat_blocks_do_not_change_the_score():
    rng = np.random.default_rng(0)
    probs = torch.from_numpy(rng.uniform(0, 1, (7, 8, 8)).astype(np.float32))
    boxes = torch.tensor([[0, 0, 8, 8], [1, 2, 5, 7], [3, 3, 4, 4]] * 2 + [[6, 0, 8, 3]], dtype=torch.float32)
    whole = mean_map_entropy(probs, boxes, (32, 32))
    assert mean_map_entropy(probs, boxes, (32, 32), block_elements=2 * 32 * 32) == pytest.approx(whole, rel=1e-9)
    algorithm = ApisMining({}, ["cat"])
    algorithm.block_elements = 64  # one detection per block
    pred = instance_pred(probs.numpy(), boxes.numpy())
    assert algorithm.score(pred) == pytest.approx(score(pred), rel=1e-9)


def test_box_pixels():
    boxes = torch.tensor([[0.0, 0.0, 2.0, 1.0], [1.1, 0.2, 1.4, 0.3], [-5.0, -5.0, -1.0, -1.0], [0.6, 0.0, 2.4, 3.0]])
    masks = box_pixels(boxes, 3, 3).int().tolist()
    assert masks[0] == [[1, 1, 0], [0, 0, 0], [0, 0, 0]]
    assert masks[1] == [[0, 1, 0], [0, 0, 0], [0, 0, 0]]  # no pixel centre inside: the one under its centre
    assert masks[2] == [[1, 0, 0], [0, 0, 0], [0, 0, 0]]  # off the grid: the nearest pixel
    assert masks[3] == [[0, 1, 0]] * 3                    # centres 0.5 and 2.5 are outside [0.6, 2.4)


def test_missing_soft_masks_and_bad_params_are_reported():
    with pytest.raises(ValueError, match="mask_probs"):
        score(Prediction((10, 10), boxes=[[0, 0, 5, 5]], scores=[0.9], class_ids=[0]))
    with pytest.raises(ValueError, match="input_size"):
        score(instance_pred(constant(0.5), [[0, 0, 8, 8]], input_size=None), apis_ymir_compat=True)
    with pytest.raises(ConfigError, match="apis_ymir_compat"):
        ApisMining({"apis_ymir_compat": "maybe"}, ["cat"])
