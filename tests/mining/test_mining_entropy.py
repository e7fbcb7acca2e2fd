import numpy as np
import pytest

from ymir_base.mining.entropy import EntropyMining, box_entropy
from ymir_base.prediction import Prediction


def pred(scores: list[float]) -> Prediction:
    n = len(scores)
    return Prediction(image_size=(10, 10), boxes=np.tile([0, 0, 5, 5], (n, 1)), scores=scores,
                      class_ids=np.zeros(n))


@pytest.mark.parametrize(("scores", "expected"), [
    ([0.5], 0.5),            # -0.5 * log2(0.5) = 0.5
    ([0.5, 0.25], 1.0),      # 0.5 + (-0.25 * log2(0.25)) = 0.5 + 0.25 * 2 = 1.0
    ([1.0], 0.0),            # -1 * log2(1) = 0
    ([], 0.0),               # no boxes
    ([0.0], 0.0),            # clipped to 1e-12: 1e-12 * 39.9 ~ 4e-11, not NaN
])
def test_box_entropy_by_hand(scores, expected):
    assert box_entropy(np.array(scores)) == pytest.approx(expected, abs=1e-9)


def test_batch_scores_and_order():
    algo = EntropyMining({}, ["cat"])
    images = [np.zeros((10, 10, 3), np.uint8)] * 3
    scores = algo.score_batch(images, [pred([0.5]), pred([0.5, 0.25]), pred([])], None)
    assert scores == pytest.approx([0.5, 1.0, 0.0])
    # higher = label first: the two-box image, then the one-box image, then the empty one
    assert sorted(range(3), key=lambda i: -scores[i]) == [1, 0, 2]
