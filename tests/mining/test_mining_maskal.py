"""maskAL on a fake stochastic predictor whose passes are made by hand: the least certain image
first (compat: the most certain), mcd_iterations honoured, single-class data finite, mean/min
modes, the greedy grouping's order and the seeds that make a run independent of the batch size."""

import math

import numpy as np
import pytest
import torch

from ymir_base.errors import ConfigError
from ymir_base.mining import algorithm_names, get_algorithm
from ymir_base.mining.maskal import SEED_STRIDE, MaskAlMining, group_observations
from ymir_base.prediction import CLASS_PROBS, MASK_PROBS, STOCHASTIC_PREDICT, Prediction

GRID = 8


def det(box, score=1.0, class_probs=(1.0,)):
    """One detection: mask probability 0.9 in its box, 0.1 elsewhere, on an 8x8 grid whose pixels
    are the image's."""
    x1, y1, x2, y2 = box
    probs = np.full((GRID, GRID), 0.1, np.float32)
    probs[y1:y2, x1:x2] = 0.9
    return box, score, class_probs, probs


def one_pass(*dets) -> Prediction:
    if not dets:
        return Prediction((GRID, GRID), mask_probs=np.zeros((0, GRID, GRID), np.float32),
                          mask_boxes=np.zeros((0, 4)), class_probs=np.zeros((0, 1)))
    boxes, scores, class_probs, probs = zip(*dets, strict=True)
    return Prediction((GRID, GRID), boxes=boxes, scores=scores, class_ids=[int(np.argmax(c)) for c in class_probs],
                      class_probs=np.asarray(class_probs, np.float32), mask_probs=np.stack(probs),
                      mask_boxes=np.asarray(boxes, np.float32), input_size=(4 * GRID, 4 * GRID))


CONFIDENT = (0.98, 0.01, 0.01)
# recipe(pass k, the image's seed) -> that pass's prediction; image[0, 0, 0] picks the recipe
RECIPES = {
    0: lambda k, seed: one_pass(),
    # every pass finds the same confident object
    1: lambda k, seed: one_pass(det((1, 1, 5, 5), 0.9, CONFIDENT)),
    # the passes move the object, hesitate between classes and miss it every third pass
    2: lambda k, seed: one_pass(*([] if k % 3 == 2 else [det((1 + k % 2, 1, 5 + k % 2, 6), 0.6, (0.4, 0.35, 0.25))])),
    # single class: found in pass 0 only
    3: lambda k, seed: one_pass(*([det((0, 0, 4, 4))] if k == 0 else [])),
    # single class, two passes: a 4x4 and a 4x3 mask of one object (mask IoU 0.75)
    4: lambda k, seed: one_pass(det((0, 0, 4, 4) if k == 0 else (0, 0, 4, 3))),
    # single class, identical passes at two confidences
    5: lambda k, seed: one_pass(det((2, 2, 6, 6), 0.9)),
    6: lambda k, seed: one_pass(det((2, 2, 6, 6), 0.5)),
    # a certain object in every pass and a second one in pass 0 only
    7: lambda k, seed: one_pass(det((0, 0, 3, 3)), *([det((5, 5, 8, 8))] if k == 0 else [])),
    # the object's position depends on the seed
    8: lambda k, seed: one_pass(det(((seed + k) % 3, 0, (seed + k) % 3 + 4, 4))),
}


class FakeStochasticPredictor:
    def __init__(self, batch_size: int = 16):
        self.batch_size = batch_size
        self.calls: list[tuple[int, int, int, frozenset]] = []

    def predict_stochastic(self, images, iterations, seed, want=frozenset()):
        self.calls.append((len(images), iterations, seed, want))
        return [[RECIPES[int(image[0, 0, 0])](k, seed + j) for k in range(iterations)]
                for j, image in enumerate(images)]


def image(recipe: int) -> np.ndarray:
    return np.full((GRID, GRID, 3), recipe, np.uint8)


def scores(recipes, predictor=None, **params) -> list[float]:
    miner = MaskAlMining(params, ["a", "b", "c"])
    return miner.score_batch([image(r) for r in recipes], None, predictor or FakeStochasticPredictor())


def semantic(q) -> float:
    return 1 - -sum(p * math.log(p) for p in q) / math.log(len(q))


def test_registered_for_instance_only_and_skips_the_plain_pass():
    assert "maskal" in algorithm_names("instance")
    assert all("maskal" not in algorithm_names(kind) for kind in ("detection", "rotated", "semantic"))
    miner = get_algorithm("maskAL", {}, ["a"], ["maskAL"], kind="instance")
    assert type(miner) is MaskAlMining
    assert miner.needs == {STOCHASTIC_PREDICT, MASK_PROBS, CLASS_PROBS}
    assert not miner.reads_predictions and miner.outputs_wanted() == frozenset()


def test_the_least_certain_image_comes_first_and_compat_reverses_it():
    agree, disagree = scores([1, 2], mcd_iterations=6)
    # agreeing passes: one observation, c_spl = c_n = 1, c_sem from the class vector
    assert agree == pytest.approx(1 - semantic(CONFIDENT), rel=1e-5)
    assert disagree > agree
    compat_agree, compat_disagree = scores([1, 2], mcd_iterations=6, maskal_ymir_compat=True)
    assert compat_agree == pytest.approx(semantic(CONFIDENT), rel=1e-5)
    assert compat_agree > compat_disagree
    assert compat_agree + agree == pytest.approx(1.0) and compat_disagree + disagree == pytest.approx(1.0)


@pytest.mark.parametrize("iterations", [1, 2, 5])
def test_mcd_iterations_is_honoured(iterations):
    predictor = FakeStochasticPredictor()
    # found in one pass of T: c_n = 1/T, every other factor 1
    assert scores([3], predictor, mcd_iterations=iterations) == [pytest.approx(1 - 1 / iterations)]
    assert [call[1] for call in predictor.calls] == [iterations]
    assert predictor.calls[0][3] == {MASK_PROBS, CLASS_PROBS}


def test_spatial_certainty_by_hand():
    # masks 4x4 and 4x3: IoU 0.75 > 0.5, one observation; the mean mask >= 0.25 is the 4x4 square
    # (mask IoUs 1 and 0.75); the mean box [0, 0, 4, 3.5] (box IoUs 14/16 and 12/14)
    c_spl = (1 + 0.75) / 2 * (14 / 16 + 12 / 14) / 2
    assert scores([4], mcd_iterations=2) == [pytest.approx(1 - c_spl, rel=1e-6)]


def test_single_class_scores_are_finite_and_ordered():
    values = scores([5, 6, 4], mcd_iterations=3)
    assert all(math.isfinite(v) for v in values)
    assert values[:2] == [pytest.approx(0.1), pytest.approx(0.5)]  # 1 - confidence
    compat = scores([5, 6], mcd_iterations=3, maskal_ymir_compat=True)
    assert compat == [pytest.approx(0.9), pytest.approx(0.5)]


def test_mode_min_takes_the_least_certain_observation():
    # observations: c_h = 1 (every pass) and 1/2 (one pass of two)
    assert scores([7], mcd_iterations=2) == [pytest.approx(0.25)]
    assert scores([7], mcd_iterations=2, maskal_mode="MIN") == [pytest.approx(0.5)]


def test_no_observation_is_certain():
    assert scores([0, 1], mcd_iterations=2) == [0.0, pytest.approx(1 - semantic(CONFIDENT), rel=1e-5)]
    assert scores([0], mcd_iterations=2, maskal_ymir_compat=True) == [-1.0]


def test_seeds_follow_the_image_position_not_the_batch_size():
    recipes = [8, 8, 8, 8, 8]
    whole = FakeStochasticPredictor(batch_size=4)  # 2 images per call at T = 2
    miner = MaskAlMining({"mcd_iterations": 2, "mining_seed": 3}, ["a"])
    together = miner.score_batch([image(r) for r in recipes], None, whole)
    assert [(n, seed) for n, _, seed, _ in whole.calls] == [(2, 3 * SEED_STRIDE), (2, 3 * SEED_STRIDE + 2),
                                                           (1, 3 * SEED_STRIDE + 4)]
    one_by_one = MaskAlMining({"mcd_iterations": 2, "mining_seed": 3}, ["a"])
    single = FakeStochasticPredictor(batch_size=1)
    apart = [one_by_one.score_batch([image(r)], None, single)[0] for r in recipes]
    assert apart == together
    assert [seed for _, _, seed, _ in single.calls] == [3 * SEED_STRIDE + n for n in range(5)]
    assert len(set(together)) > 1  # the seed matters to these passes
    assert scores(recipes, mcd_iterations=2, mining_seed=4) != together


def test_greedy_grouping_follows_confidence_then_index():
    # A-B and B-C overlap by IoU 4/6, A-C by 3/7
    masks = torch.zeros(3, 10)
    masks[0, 0:5] = 1
    masks[1, 1:6] = 1
    masks[2, 2:7] = 1
    inter = masks @ masks.T
    area = masks.sum(1)
    iou = inter / (area[:, None] + area[None] - inter)
    assert iou[0, 1] > 0.5 and iou[1, 2] > 0.5 and iou[0, 2] < 0.5
    assert group_observations(masks, np.array([0.5, 0.9, 0.5]), 0.5).tolist() == [0, 0, 0]  # B leads
    assert group_observations(masks, np.array([0.9, 0.5, 0.5]), 0.5).tolist() == [0, 0, 1]  # A leads
    assert group_observations(masks, np.array([0.5, 0.5, 0.5]), 0.5).tolist() == [0, 0, 1]  # ties: index


def test_bad_parameters_and_predictors_are_reported():
    for params, key in (({"maskal_mode": "median"}, "maskal_mode"), ({"maskal_iou_thres": 1.5}, "maskal_iou_thres"),
                        ({"mcd_iterations": 0}, "mcd_iterations")):
        with pytest.raises(ConfigError, match=key):
            MaskAlMining(params, ["a"])
    with pytest.raises(ValueError, match="predict_stochastic"):
        MaskAlMining({}, ["a"]).score_batch([image(1)], None, object())

    class Short(FakeStochasticPredictor):
        def predict_stochastic(self, images, iterations, seed, want=frozenset()):
            return super().predict_stochastic(images, iterations - 1, seed, want)

    with pytest.raises(ValueError, match="passes"):
        scores([1], Short(), mcd_iterations=3)
