import math

import numpy as np
import pytest

from ymir_base.mining.semantic_entropy import SemanticEntropyMining
from ymir_base.prediction import Prediction


def scores(*maps: np.ndarray) -> list[float]:
    preds = [Prediction((m.shape[1] * 4, m.shape[2] * 4), semantic_probs=m) for m in maps]
    return SemanticEntropyMining({}, ["a", "b"]).score_batch([np.zeros((4, 4, 3), np.uint8)] * len(maps), preds, None)


def test_mean_normalised_pixel_entropy():
    uniform = np.full((4, 6, 8), 0.25, np.float32)
    certain = np.zeros((4, 6, 8), np.float32)
    certain[2] = 1.0
    half = certain.copy()
    half[:, :3] = uniform[:, :3]  # half the pixels uniform
    assert scores(uniform, certain, half) == pytest.approx([1.0, 0.0, 0.5], abs=1e-6)


def test_values_and_dtypes():
    p = np.array([0.7, 0.2, 0.1], np.float32)[:, None, None] * np.ones((1, 2, 2), np.float32)
    expected = -(0.7 * math.log(0.7) + 0.2 * math.log(0.2) + 0.1 * math.log(0.1)) / math.log(3)
    assert scores(p, p.astype(np.float16)) == pytest.approx([expected, expected], rel=1e-3)


def test_one_sigmoid_map_is_binary():
    assert scores(np.full((1, 3, 3), 0.5, np.float32)) == pytest.approx([1.0])


def test_missing_maps_is_a_clear_error():
    with pytest.raises(ValueError, match="semantic_probs"):
        SemanticEntropyMining({}, ["a"]).score_batch([np.zeros((4, 4, 3), np.uint8)], [Prediction((4, 4))], None)
