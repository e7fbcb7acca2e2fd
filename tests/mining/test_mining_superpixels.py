import numpy as np
import pytest

from ymir_base.errors import ConfigError, ErrorCode
from ymir_base.mining import superpixels as sp
from ymir_base.mining.superpixels import check_algorithm, merge_to_grid, resize_area, superpixels


def quadrants(h: int = 64, w: int = 64) -> np.ndarray:
    """Four flat colours, one per quadrant."""
    image = np.zeros((h, w, 3), np.uint8)
    image[: h // 2, w // 2:] = (255, 0, 0)
    image[h // 2:, : w // 2] = (0, 255, 0)
    image[h // 2:, w // 2:] = (0, 0, 255)
    return image


def textured(h: int, w: int) -> np.ndarray:
    rng = np.random.default_rng(0)
    small = (rng.random((h // 8 + 1, w // 8 + 1, 3)) * 255).astype(np.uint8)
    return np.repeat(np.repeat(small, 8, axis=0), 8, axis=1)[:h, :w]


def assert_valid(labels: np.ndarray, shape: tuple[int, int], max_count: int) -> None:
    assert labels.shape == shape and labels.dtype == np.int32
    count = int(labels.max()) + 1
    assert 1 <= count <= max_count
    assert np.array_equal(np.unique(labels), np.arange(count))  # consecutive, none empty


@pytest.mark.parametrize("algorithm", ["slico", "slic"])
def test_slic_family_follows_colour_edges(algorithm):
    image = quadrants()
    labels = superpixels(image, algorithm, 16)
    assert_valid(labels, (64, 64), 16)
    quadrant = (np.arange(64)[:, None] >= 32) * 2 + (np.arange(64)[None, :] >= 32)
    for label in range(labels.max() + 1):  # every superpixel lies in one quadrant
        assert len(np.unique(quadrant[labels == label])) == 1
    assert labels.max() + 1 >= 4


@pytest.mark.parametrize("algorithm", ["slico", "slic"])
@pytest.mark.parametrize(("shape", "max_count"), [((1, 1), 1), ((2, 2), 1024), ((3, 200), 1024), ((40, 60), 1),
                                                  ((40, 60), 7), ((96, 128), 1024)])
def test_the_bound_holds_for_any_size(algorithm, shape, max_count):
    assert_valid(superpixels(textured(*shape), algorithm, max_count), shape, max_count)


def test_gray_images_are_accepted():
    assert_valid(superpixels(textured(32, 32)[:, :, 0], "slico", 8), (32, 32), 8)


def test_merge_to_grid_keeps_superpixel_borders_and_the_bound():
    labels = (np.arange(40)[:, None] // 4 * 10 + np.arange(40)[None, :] // 4).astype(np.int32)  # 100 blocks
    merged, count = merge_to_grid(labels, 100, 10)
    assert count <= 10 and merged.max() + 1 == count
    for label in range(100):  # no old superpixel is split
        assert len(np.unique(merged[labels == label])) == 1


def test_an_overshooting_method_is_merged_down_to_the_bound(monkeypatch):
    # a method that ignores its target: 64 one-block superpixels for any request
    blocks = np.arange(64).reshape(8, 8).repeat(4, 0).repeat(4, 1)
    monkeypatch.setitem(sp._METHODS, "slico", lambda image, target: blocks)
    assert_valid(superpixels(textured(32, 32), "slico", 5), (32, 32), 5)


def test_resize_area_keeps_the_mean_colour():
    image = textured(64, 96)
    small = resize_area(image, (16, 24))
    assert small.shape == (16, 24, 3)
    assert small.reshape(-1, 3).mean(axis=0) == pytest.approx(image.reshape(-1, 3).mean(axis=0), abs=0.5)
    assert resize_area(image, (64, 96)) is image


@pytest.mark.parametrize("value", ["watershed", "", None])
def test_unknown_algorithm_is_a_config_error_naming_key_and_choices(value):
    with pytest.raises(ConfigError) as info:
        check_algorithm(value)
    assert info.value.code == ErrorCode.CONFIG
    assert str(info.value).startswith("superpixel_algorithm: unknown superpixel algorithm")
    assert str(info.value).endswith("choose one of: slico, slic, mslic, seeds")


def test_names_are_case_insensitive():
    assert check_algorithm(" SLICO ") == "slico"


@pytest.mark.parametrize("algorithm", ["mslic", "seeds"])
def test_without_ximgproc_mslic_and_seeds_are_config_errors(monkeypatch, algorithm):
    monkeypatch.setattr(sp, "has_ximgproc", lambda: False)
    with pytest.raises(ConfigError, match=rf"superpixel_algorithm: {algorithm} needs OpenCV-contrib"):
        check_algorithm(algorithm)
    assert check_algorithm("slic") == "slic"


@pytest.mark.parametrize(("h", "w", "target", "fits"), [
    (4, 4, 4, False),      # more rows than the grid can hold: SEEDS loops forever
    (20, 6, 7, False),     # a single column
    (6, 100, 37, False),   # a single row
    (64, 64, 1024, True),
    (512, 1024, 1024, True),
])
def test_seeds_grid_check(h, w, target, fits):
    assert sp._seeds_grid_fits(h, w, target) is fits


@pytest.mark.parametrize("algorithm", ["mslic", "seeds"])
@pytest.mark.parametrize(("shape", "max_count"), [((1, 1), 1024), ((4, 4), 1024), ((3, 200), 1024), ((20, 6), 7),
                                                  ((64, 64), 1), ((96, 128), 1024)])
def test_contrib_methods_bounded_and_never_crash(algorithm, shape, max_count):
    pytest.importorskip("cv2.ximgproc", reason="mslic and seeds need opencv-contrib-python-headless (cv2.ximgproc)")
    assert_valid(superpixels(textured(*shape), algorithm, max_count), shape, max_count)


@pytest.mark.parametrize("algorithm", ["mslic", "seeds"])
def test_contrib_methods_follow_colour_edges(algorithm):
    pytest.importorskip("cv2.ximgproc", reason="mslic and seeds need opencv-contrib-python-headless (cv2.ximgproc)")
    labels = superpixels(quadrants(), algorithm, 64)
    quadrant = (np.arange(64)[:, None] >= 32) * 2 + (np.arange(64)[None, :] >= 32)
    pure = [len(np.unique(quadrant[labels == label])) == 1 for label in range(labels.max() + 1)]
    assert labels.max() + 1 >= 4 and np.mean(pure) > 0.9
