import math

import cv2
import numpy as np
import pytest

from ymir_base.errors import ConfigError, ErrorCode
from ymir_base.mining import rsal as rsal_module
from ymir_base.mining.base import Scored
from ymir_base.mining.rsal import RegionMask, RsalMining
from ymir_base.prediction import Prediction

NO_BALANCE = {"class_balance": False}


def probs_with(h: int, w: int, uncertain: list[tuple[slice, slice, float]] | None = None,
               classes: int = 2, confident: float = 0.9) -> np.ndarray:
    """Maps [classes, h, w]: class 0 at ``confident`` everywhere, and in each given window the
    two best classes at a BvSB ratio (p2 / p1) of the given value."""
    maps = np.full((classes, h, w), (1 - confident) / (classes - 1), np.float32)
    maps[0] = confident
    for rows, cols, ratio in uncertain or []:
        maps[:, rows, cols] = 0.0
        maps[0, rows, cols] = 1 / (1 + ratio)
        maps[1, rows, cols] = ratio / (1 + ratio)
    return maps


def pred(maps: np.ndarray, image_size: tuple[int, int]) -> Prediction:
    return Prediction(image_size=image_size, semantic_probs=maps)


def quadrant_labels(h: int, w: int) -> np.ndarray:
    return ((np.arange(h)[:, None] >= h // 2) * 2 + (np.arange(w)[None, :] >= w // 2)).astype(np.int32)


@pytest.fixture
def quadrant_superpixels(monkeypatch):
    """Superpixels = the four quadrants of whatever size RSAL asks for (labels 0..3, 3 = bottom
    right); records the images it was given."""
    seen: list[np.ndarray] = []

    def fake(image, algorithm, max_count):
        seen.append(image)
        return quadrant_labels(*image.shape[:2])

    monkeypatch.setattr(rsal_module, "superpixels", fake)
    return seen


def image(h: int, w: int) -> np.ndarray:
    return np.full((h, w, 3), 128, np.uint8)


def test_an_uncertain_region_ranks_above_a_confident_image():
    # real superpixels (slico) on flat images: every region has the same mean BvSB as its pixels
    algo = RsalMining(NO_BALANCE, ["a", "b"])
    confident = pred(probs_with(32, 32), (32, 32))
    spot = pred(probs_with(32, 32, [(slice(0, 16), slice(0, 16), 1.0)]), (32, 32))
    scores = algo.score_batch([image(32, 32), image(32, 32)], [confident, spot], None)
    assert all(isinstance(s, Scored) for s in scores)
    assert scores[0].score == pytest.approx(3 * 0.1 / 0.9, rel=1e-5)  # three regions at p2/p1 = 1/9
    assert scores[1].score > scores[0].score


def test_the_last_superpixel_is_counted(quadrant_superpixels):
    # the only uncertain region is label 3, the one the old port's range(max) never visited
    maps = probs_with(8, 8, [(slice(4, 8), slice(4, 8), 0.5)])
    scored = RsalMining({**NO_BALANCE, "topk_superpixel_score": 1}, ["a", "b"]).score_batch(
        [image(8, 8)], [pred(maps, (8, 8))], None)[0]
    assert scored.score == pytest.approx(0.5, rel=1e-5)


def test_region_uncertainty_is_the_pixel_mean_and_the_score_sums_the_top_k(quadrant_superpixels):
    maps = probs_with(8, 8, [(slice(0, 4), slice(0, 2), 1.0), (slice(4, 8), slice(0, 4), 0.6)])
    # region 0: half its pixels at 1.0, half at 1/9; region 2: 0.6; regions 1, 3: 1/9
    expected = sorted([0.5 * (1.0 + 1 / 9), 1 / 9, 0.6, 1 / 9], reverse=True)
    for k in (1, 2, 4, 10):
        algo = RsalMining({**NO_BALANCE, "topk_superpixel_score": k}, ["a", "b"])
        assert algo.score_batch([image(8, 8)], [pred(maps, (8, 8))], None)[0].score == pytest.approx(
            sum(expected[:k]), rel=1e-5)


def test_class_balance_flips_a_ranking(quadrant_superpixels):
    # three filler images of class 0 make class 0 frequent; x is class 0 at BvSB 0.8, y class 1
    # at 0.7: without balance x ranks first, with it the rare class wins
    filler = pred(probs_with(8, 8), (8, 8))
    x = pred(probs_with(8, 8, [(slice(0, 8), slice(0, 8), 0.8)]), (8, 8))
    y_maps = probs_with(8, 8, [(slice(0, 8), slice(0, 8), 0.7)])
    y = pred(y_maps[::-1].copy(), (8, 8))  # the same ratio with class 1 on top
    pool = [filler, filler, filler, x, y]
    images = [image(8, 8)] * len(pool)
    plain = [s.score for s in RsalMining(NO_BALANCE, ["a", "b"]).score_batch(images, pool, None)]
    balanced = [s.score for s in RsalMining({}, ["a", "b"]).score_batch(images, pool, None)]
    assert plain[3] > plain[4]
    assert balanced[4] > balanced[3]
    # running shares: x sees 16 of 16 regions in class 0, y 4 of 20 in class 1
    assert balanced[3] == pytest.approx(3 * 0.8 * math.exp(-1.0), rel=1e-5)
    assert balanced[4] == pytest.approx(3 * 0.7 * math.exp(-0.2), rel=1e-5)


def test_dominant_class_is_the_majority_of_the_argmax(quadrant_superpixels):
    # region 0 holds 10 pixels of class 1 and 6 of class 0, all at BvSB 0.5: its class is 1, the
    # other three regions' is 0, so its weight is exp(-1/4)
    maps = probs_with(8, 8)
    maps[0, :4, :4], maps[1, :4, :4] = 1 / 3, 2 / 3
    maps[0, :2, :3], maps[1, :2, :3] = 2 / 3, 1 / 3
    algo = RsalMining({"topk_superpixel_score": 1}, ["a", "b"])
    score = algo.score_batch([image(8, 8)], [pred(maps, (8, 8))], None)[0].score
    assert list(algo.class_counts) == [3, 1]
    assert score == pytest.approx(0.5 * math.exp(-0.25), rel=1e-5)


def test_reduced_resolution_maps_and_the_mask_at_image_size(quadrant_superpixels, tmp_path):
    height, width = 60, 90  # the original image; the maps are 15 x 30 (not the same aspect)
    maps = probs_with(15, 30, [(slice(7, 15), slice(15, 30), 1.0)])
    algo = RsalMining({**NO_BALANCE, "topk_superpixel_score": 1}, ["a", "b"])
    scored = algo.score_batch([image(height, width)], [pred(maps, (height, width))], None)[0]
    assert quadrant_superpixels[0].shape == (15, 30, 3)  # superpixels of the image resized to the maps
    algo.write_side_outputs([("/in/assets/ab/cat.01.jpg", scored.score, scored.side)], tmp_path)
    mask = cv2.imread(str(tmp_path / "masks" / "cat.01.png"), cv2.IMREAD_UNCHANGED)
    assert mask.shape == (height, width) and mask.dtype == np.uint8
    rows = np.arange(height) * 15 // height
    cols = np.arange(width) * 30 // width
    expected = np.where((rows[:, None] >= 7) & (cols[None, :] >= 15), 255, 0)
    assert np.array_equal(mask, expected)
    assert set(np.unique(mask)) == {0, 255}


def test_side_output_is_the_small_mask_only(quadrant_superpixels):
    maps = probs_with(16, 16, [(slice(0, 8), slice(0, 8), 1.0)])
    side = RsalMining({**NO_BALANCE, "topk_superpixel_score": 2}, ["a", "b"]).score_batch(
        [image(400, 400)], [pred(maps, (400, 400))], None)[0].side
    assert isinstance(side, RegionMask) and side.image_size == (400, 400)
    small = cv2.imdecode(np.frombuffer(side.png, np.uint8), cv2.IMREAD_UNCHANGED)
    assert small.shape == (16, 16) and len(side.png) < 1000
    assert small.sum() == 2 * 64  # two quadrants chosen


def test_masks_use_the_stem_and_the_better_of_two_same_stems(quadrant_superpixels, tmp_path, caplog):
    algo = RsalMining(NO_BALANCE, ["a", "b"])
    first, second = (algo.score_batch([image(8, 8)], [pred(probs_with(8, 8, [(slice(0, 4), slice(0, 4), r)]), (8, 8))],
                                      None)[0] for r in (1.0, 0.5))
    algo.write_side_outputs([("/in/a.jpg", first.score, first.side), ("/in/x/a.png", second.score, second.side),
                             ("/in/b", second.score, second.side)], tmp_path)
    assert sorted(p.name for p in (tmp_path / "masks").iterdir()) == ["a.png", "b.png"]
    assert cv2.imread(str(tmp_path / "masks" / "a.png"), cv2.IMREAD_UNCHANGED)[0, 0] == 255
    assert "same mask name a.png" in caplog.text


def test_scores_repeat_for_the_same_order_whatever_the_batch_size():
    rng = np.random.default_rng(3)
    pool = []
    for _ in range(6):
        maps = rng.dirichlet([0.5, 0.5, 0.5], size=(12, 20)).transpose(2, 0, 1).astype(np.float32)
        pool.append((rng.integers(0, 255, (24, 40, 3), dtype=np.uint8), pred(maps, (24, 40))))

    def run(batch: int) -> list[float]:
        algo = RsalMining({}, ["a", "b", "c"])
        out: list[float] = []
        for i in range(0, len(pool), batch):
            chunk = pool[i:i + batch]
            out += [s.score for s in algo.score_batch([c[0] for c in chunk], [c[1] for c in chunk], None)]
        return out

    one = run(1)
    assert run(4) == one and run(6) == one
    assert len(set(one)) == len(one)


def test_float16_and_single_channel_maps():
    algo = RsalMining(NO_BALANCE, ["a"])
    half = probs_with(16, 16, [(slice(0, 8), slice(0, 16), 1.0)]).astype(np.float16)
    single = np.full((1, 16, 16), 0.5, np.float32)  # one sigmoid map: [1 - p, p] ties everywhere
    scores = algo.score_batch([image(16, 16)] * 2, [pred(half, (16, 16)), pred(single, (16, 16))], None)
    assert scores[0].score == pytest.approx(3.0, rel=1e-3) and scores[1].score == pytest.approx(3.0)


def test_parameters():
    algo = RsalMining({}, ["a"])
    assert (algo.superpixel_algorithm, algo.max_superpixels, algo.keep_side, algo.topk, algo.class_balance) == (
        "slico", 1024, 5000, 3, True)
    algo = RsalMining({"superpixel_algorithm": "SLIC", "uncertainty_method": "bvsb", "max_superpixel_per_image": "64",
                       "max_kept_mining_image": 10, "topk_superpixel_score": 5, "class_balance": "false"}, ["a"])
    assert (algo.superpixel_algorithm, algo.max_superpixels, algo.keep_side, algo.topk, algo.class_balance) == (
        "slic", 64, 10, 5, False)


@pytest.mark.parametrize(("params", "message"), [
    ({"uncertainty_method": "entropy"}, r"uncertainty_method: unknown method 'entropy'; choose one of: BvSB"),
    ({"superpixel_algorithm": "felzenszwalb"}, r"superpixel_algorithm: .*choose one of: slico, slic, mslic, seeds"),
    ({"topk_superpixel_score": 0}, r"topk_superpixel_score: must be >= 1"),
    ({"max_superpixel_per_image": "many"}, r"max_superpixel_per_image: expected an integer"),
    ({"class_balance": "maybe"}, r"class_balance"),
])
def test_bad_parameters_are_config_errors(params, message):
    with pytest.raises(ConfigError, match=message) as info:
        RsalMining(params, ["a"])
    assert info.value.code == ErrorCode.CONFIG


def test_missing_maps_is_a_clear_error():
    with pytest.raises(ValueError, match="semantic_probs"):
        RsalMining({}, ["a"]).score_batch([image(8, 8)], [Prediction(image_size=(8, 8))], None)


def test_the_engine_keeps_and_writes_the_masks_of_the_best_images_only(quadrant_superpixels, tmp_path):
    from ymir_base.engine.predict import _SideOutputs

    algo = RsalMining({**NO_BALANCE, "max_kept_mining_image": 2}, ["a", "b"])
    ratios = {"/in/a.jpg": 0.2, "/in/b.jpg": 0.9, "/in/c.jpg": 0.5, "/in/d.jpg": 0.7}
    side = _SideOutputs(algo.keep_side)
    for asset, ratio in ratios.items():
        maps = probs_with(8, 8, [(slice(0, 8), slice(0, 8), ratio)])
        side.offer(asset, algo.score_batch([image(8, 8)], [pred(maps, (16, 16))], None)[0])
    side.write(algo, tmp_path)
    assert sorted(p.name for p in (tmp_path / "masks").iterdir()) == ["b.png", "d.png"]
    mask = cv2.imread(str(tmp_path / "masks" / "b.png"), cv2.IMREAD_UNCHANGED)
    assert mask.shape == (16, 16) and (mask == 255).sum() == 3 * 64  # three of the four quadrants
