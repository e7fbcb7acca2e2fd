import logging

import numpy as np
import pytest
import torch

from ymir_base.errors import ConfigError
from ymir_base.mining.aldd import AlddMining, parse_class_weights
from ymir_base.prediction import Prediction


def hb(p):
    """Binary entropy in nats with the same clamp as the implementation."""
    p = np.clip(np.asarray(p, np.float64), 1e-7, 1 - 1e-7)
    return -(p * np.log(p) + (1 - p) * np.log(1 - p))


def dense_pred(levels, input_size):
    return Prediction(image_size=input_size, dense_class_probs=levels, input_size=input_size)


def score(params, class_names, levels_per_image, input_size):
    algo = AlddMining(params, class_names)
    preds = [dense_pred(levels, input_size) for levels in levels_per_image]
    return algo.score_batch([np.zeros((*input_size, 3), np.uint8)] * len(preds), preds, None)


# ---- an independent, plain (loop) implementation of docs/mining.md §2.3 -------------------------

def naive_resize(m, out_h, out_w):
    """Bilinear, align_corners=False: source = (dst + 0.5) * in / out - 0.5, clamped at 0."""
    in_h, in_w = m.shape
    out = np.zeros((out_h, out_w))
    for i in range(out_h):
        y = max((i + 0.5) * in_h / out_h - 0.5, 0.0)
        y0 = min(int(y), in_h - 1)
        y1, dy = min(y0 + 1, in_h - 1), y - y0
        for j in range(out_w):
            x = max((j + 0.5) * in_w / out_w - 0.5, 0.0)
            x0 = min(int(x), in_w - 1)
            x1, dx = min(x0 + 1, in_w - 1), x - x0
            top = (1 - dx) * m[y0, x0] + dx * m[y0, x1]
            bottom = (1 - dx) * m[y1, x0] + dx * m[y1, x1]
            out[i, j] = (1 - dy) * top + dy * bottom
    return out


def naive_score(levels, input_size, weights, window, cell):
    height, width = input_size
    r = window // 2
    total = 0.0
    for c, w_c in enumerate(weights):
        maps = np.stack([naive_resize(level[a, c], height, width)
                         for level in levels for a in range(level.shape[0])])  # [K, H, W]
        u = np.zeros((height, width))
        for y in range(height):
            for x in range(width):
                win = maps[:, max(0, y - r):y + r + 1, max(0, x - r):x + r + 1]
                entropy_of_mean = hb(win.mean(axis=(1, 2))).sum()
                mean_of_entropy = hb(win).mean(axis=(1, 2)).sum()
                u[y, x] = entropy_of_mean - mean_of_entropy
        cells = [u[i:i + cell, j:j + cell].max()
                 for i in range(0, height // cell * cell, cell) for j in range(0, width // cell * cell, cell)]
        total += w_c * float(np.mean(cells))
    return total


# ---- tests ---------------------------------------------------------------------------------------

def test_uniform_maps_score_zero():
    # every neighbourhood holds equal probabilities: entropy of mean == mean of entropy
    levels = [np.full((3, 2, 4, 4), 0.3, np.float32), np.full((3, 2, 2, 2), 0.3, np.float32)]
    assert score({"aldd_window": 3, "aldd_cell": 4}, ["a", "b"], [levels], (8, 8)) == [
        pytest.approx(0.0, abs=1e-6)]


def test_step_map_scores_positive():
    m = np.full((1, 1, 8, 8), 0.05, np.float32)
    m[..., 4:] = 0.95
    assert score({"aldd_window": 3, "aldd_cell": 4}, ["a"], [[m]], (8, 8))[0] > 0.01


def test_hand_computed_single_spike():
    # 4x4 map of a = 0.5 except P[0, 0] = b = 0.9; window 3 (count_include_pad=False), cell 2.
    # Only the pixels whose 3x3 window contains (0, 0) have U != 0: (0,0) sees 4 valid pixels,
    # (0,1) and (1,0) see 6, (1,1) sees 9. With n pixels in the window (one b, n-1 a):
    #   U(n) = Hb((b + (n-1) a) / n) - (Hb(b) + (n-1) Hb(a)) / n
    # Those 4 pixels form the top-left 2x2 cell; the other 3 cells are 0, so
    #   score = max(U(4), U(6), U(9)) / 4
    a, b = 0.5, 0.9
    m = np.full((1, 1, 4, 4), a, np.float32)
    m[0, 0, 0, 0] = b

    def u(n):
        return hb((b + (n - 1) * a) / n) - (hb(b) + (n - 1) * hb(a)) / n

    expected = max(u(4), u(6), u(9)) / 4
    # U(4) = Hb(0.6) - (Hb(0.9) + 3 Hb(0.5)) / 4 = 0.67301 - (0.32508 + 3 * 0.69315) / 4 = 0.07188
    assert expected == pytest.approx(0.07188 / 4, rel=1e-3)
    assert score({"aldd_window": 3, "aldd_cell": 2}, ["a"], [[m]], (4, 4))[0] == pytest.approx(
        expected, rel=1e-5)


def test_matches_naive_loops_on_random_maps():
    # 2 images, 2 levels (4x4 and 2x2, A=2 -> K=4), 3 classes, resized to 10x10; cell 4 floors to
    # 2x2 cells (rows/cols 8-9 ignored); class weights 1, 0.5, 2
    rng = np.random.default_rng(0)
    images = [[rng.random((2, 3, 4, 4)).astype(np.float32), rng.random((2, 3, 2, 2)).astype(np.float32)]
              for _ in range(2)]
    params = {"aldd_window": 3, "aldd_cell": 4, "class_distribution_scores": "1, 0.5, 2"}
    got = score(params, ["a", "b", "c"], images, (10, 10))
    want = [naive_score(levels, (10, 10), [1.0, 0.5, 2.0], 3, 4) for levels in images]
    assert got == pytest.approx(want, rel=1e-4)
    assert min(want) > 0


def test_chunking_and_input_types_do_not_change_scores():
    rng = np.random.default_rng(1)
    images = [[rng.random((3, 2, 6, 6)).astype(np.float32)] for _ in range(3)]
    params = {"aldd_window": 5, "aldd_cell": 4}
    whole = score(params, ["a", "b"], images, (12, 12))
    algo = AlddMining(params, ["a", "b"])
    algo.max_chunk_elements = 1  # one (image, class) row per chunk
    preds = [dense_pred([torch.from_numpy(levels[0]).half()], (12, 12)) for levels in images]
    chunked = algo.score_batch([np.zeros((12, 12, 3), np.uint8)] * 3, preds, None)
    assert chunked == pytest.approx(whole, rel=2e-3)  # fp16 inputs: ~1e-3 relative rounding


def test_zero_weight_removes_a_class():
    rng = np.random.default_rng(2)
    both = rng.random((1, 2, 4, 4)).astype(np.float32)
    params = {"aldd_window": 3, "aldd_cell": 2}
    with_zero = score({**params, "class_distribution_scores": "1,0"}, ["a", "b"], [[both]], (4, 4))
    only_first = score(params, ["a"], [[both[:, :1]]], (4, 4))
    assert with_zero == pytest.approx(only_first, rel=1e-6)
    assert score(params, ["a", "b"], [[both]], (4, 4))[0] > with_zero[0]


def test_class_weights_parsing(caplog):
    assert parse_class_weights("", 3) == [1.0, 1.0, 1.0]
    assert parse_class_weights(None, 2) == [1.0, 1.0]
    assert parse_class_weights("1.0,1.0,0.1,0.2", 4) == [1.0, 1.0, 0.1, 0.2]
    assert not caplog.records
    with caplog.at_level(logging.WARNING):
        assert parse_class_weights("0.5", 3) == [0.5, 1.0, 1.0]
    assert "missing ones are 1.0" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        assert parse_class_weights("1,2,3,4", 2) == [1.0, 2.0]
    assert "extra ones are ignored" in caplog.text


@pytest.mark.parametrize("bad", ["1,abc", "1,,2", "nan", object()])
def test_bad_class_weights_are_config_errors(bad):
    with pytest.raises(ConfigError, match="class_distribution_scores"):
        AlddMining({"class_distribution_scores": bad}, ["a", "b"])


@pytest.mark.parametrize(("key", "value"), [("aldd_window", 4), ("aldd_window", 0), ("aldd_cell", "x")])
def test_bad_pooling_parameters_are_config_errors(key, value):
    with pytest.raises(ConfigError, match=key):
        AlddMining({key: value}, ["a"])



def test_class_count_mismatch_rereads_the_weights(caplog):
    # maps with 2 classes, task names 3: the weights "1,0" are read for 2 classes, with a warning
    rng = np.random.default_rng(3)
    both = rng.random((1, 2, 4, 4)).astype(np.float32)
    params = {"aldd_window": 3, "aldd_cell": 2, "class_distribution_scores": "1,0"}
    with caplog.at_level(logging.WARNING):
        mismatched = score(params, ["a", "b", "c"], [[both]], (4, 4))
    assert "the dense maps have 2 classes but the task names 3" in caplog.text
    assert mismatched == pytest.approx(score(params, ["a", "b"], [[both]], (4, 4)), rel=1e-6)


@pytest.mark.parametrize("window", [1, 3, 9, 15])
def test_the_window_mean_is_the_2d_average_pool_without_the_padding(window):
    # 15 is wider than the 7-row map: every row counts only the rows that exist
    x = torch.from_numpy(np.random.default_rng(3).random((2, 5, 7, 11)).astype(np.float32))
    pad = window // 2
    want = torch.nn.functional.avg_pool2d(torch.nn.functional.pad(x, (pad, pad, pad, pad)), window, stride=1) \
        / torch.nn.functional.avg_pool2d(torch.nn.functional.pad(torch.ones_like(x), (pad, pad, pad, pad)),
                                         window, stride=1)
    got = AlddMining({"aldd_window": window}, ["a"])._box(x)
    assert got.shape == x.shape
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-6)
