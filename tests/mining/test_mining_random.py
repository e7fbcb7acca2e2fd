import numpy as np
import pytest

from ymir_base.errors import ConfigError
from ymir_base.mining.random import RandomMining

IMAGES = [np.zeros((4, 4, 3), np.uint8)] * 4


def test_seeded_scores_are_reproducible_and_in_unit_interval():
    a = RandomMining({"mining_seed": 7}, []).score_batch(IMAGES, None, None)
    b = RandomMining({"mining_seed": 7}, []).score_batch(IMAGES, None, None)
    assert a == b
    assert all(isinstance(x, float) and 0.0 <= x < 1.0 for x in a)
    assert len(set(a)) == 4


def test_default_seed_is_zero_and_other_seeds_differ():
    default = RandomMining({}, []).score_batch(IMAGES, None, None)
    assert default == RandomMining({"mining_seed": 0}, []).score_batch(IMAGES, None, None)
    assert default != RandomMining({"mining_seed": 1}, []).score_batch(IMAGES, None, None)


def test_batches_continue_one_stream():
    # two batches of 2 draw the same numbers as one batch of 4
    algo = RandomMining({"mining_seed": 3}, [])
    split = algo.score_batch(IMAGES[:2], None, None) + algo.score_batch(IMAGES[:2], None, None)
    assert split == RandomMining({"mining_seed": 3}, []).score_batch(IMAGES, None, None)


@pytest.mark.parametrize("seed", ["abc", -1, 1.5])
def test_bad_seed_is_a_config_error(seed):
    with pytest.raises(ConfigError, match="mining_seed"):
        RandomMining({"mining_seed": seed}, [])
