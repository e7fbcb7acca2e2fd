import math

import numpy as np
import pytest
import torch

from ymir_base.errors import ConfigError
from ymir_base.mining.ripu import RipuMining
from ymir_base.prediction import Prediction


def score(maps: np.ndarray, **params) -> float:
    algo = RipuMining(params, ["a", "b", "c"])
    h, w = maps.shape[1:]
    return algo.score_batch([np.zeros((h * 2, w * 2, 3), np.uint8)], [Prediction((h * 2, w * 2), semantic_probs=maps)],
                            None)[0]


def naive_score_map(maps: np.ndarray, radius: int) -> np.ndarray:
    """docs/mining.md §2.6 with plain loops, dividing by the window's pixels inside the map."""
    k, h, w = maps.shape
    p = np.clip(maps.astype(np.float64), 1e-12, 1)
    entropy = -(maps * np.log(p)).sum(axis=0) / math.log(k)
    classes = maps.argmax(axis=0)
    out = np.zeros((h, w))
    for y in range(h):
        for x in range(w):
            ys, xs = slice(max(0, y - radius), y + radius + 1), slice(max(0, x - radius), x + radius + 1)
            u = entropy[ys, xs].mean()
            shares = np.bincount(classes[ys, xs].ravel(), minlength=k) / classes[ys, xs].size
            nz = shares[shares > 0]
            out[y, x] = u * float(-(nz * np.log(nz)).sum() / math.log(k))
    return out


def test_score_map_matches_the_plain_definition():
    rng = np.random.default_rng(0)
    maps = rng.dirichlet([0.7] * 3, size=(9, 13)).transpose(2, 0, 1).astype(np.float32)
    for radius in (1, 2):
        algo = RipuMining({"ripu_region_radius": radius}, ["a", "b", "c"])
        got = algo.score_map(torch.from_numpy(maps)).numpy()
        assert np.allclose(got, naive_score_map(maps, radius), atol=1e-5)


def test_one_class_everywhere_scores_zero_however_uncertain():
    maps = np.full((3, 10, 10), 1 / 3, np.float32)
    maps[0] += 0.01  # maximally uncertain, but every window is pure (argmax = class 0)
    maps[1:] -= 0.005
    assert score(maps) == 0.0


def test_an_uncertain_class_border_beats_a_confident_one():
    def border(p_left: float) -> np.ndarray:
        maps = np.full((3, 12, 12), (1 - p_left) / 2, np.float32)
        maps[0, :, :6] = p_left
        maps[1, :, 6:] = p_left
        maps[0, :, 6:] = (1 - p_left) / 2
        return maps

    confident, uncertain = score(border(0.98)), score(border(0.5))
    assert 0 < confident < uncertain


def test_top_k_windows_do_not_overlap():
    algo = RipuMining({"ripu_region_radius": 1, "topk_superpixel_score": 2}, ["a", "b"])
    s = torch.zeros(20, 20)
    s[5, 5], s[5, 7], s[15, 15] = 1.0, 0.9, 0.5  # (5, 7) is within 2r of (5, 5): its window overlaps
    assert algo.image_score(s) == pytest.approx(1.5)
    s[5, 8] = 0.8  # 3 columns away: a separate window
    assert algo.image_score(s) == pytest.approx(1.8)
    assert RipuMining({"topk_superpixel_score": 5}, ["a"]).image_score(torch.zeros(4, 4)) == 0.0


def test_reduced_and_odd_sized_maps_and_single_pixels():
    rng = np.random.default_rng(1)
    for shape in ((1, 1), (2, 3), (7, 31)):
        maps = rng.dirichlet([1.0] * 3, size=shape).transpose(2, 0, 1).astype(np.float16)
        value = score(maps)
        assert np.isfinite(value) and value >= 0.0


def test_parameters():
    algo = RipuMining({}, ["a"])
    assert (algo.radius, algo.topk) == (1, 3)
    assert RipuMining({"ripu_region_radius": "3", "topk_superpixel_score": 10}, ["a"]).radius == 3
    with pytest.raises(ConfigError, match="ripu_region_radius: must be >= 1"):
        RipuMining({"ripu_region_radius": 0}, ["a"])
