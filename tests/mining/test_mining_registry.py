import pytest

from ymir_base.errors import ConfigError, ErrorCode
from ymir_base.mining import ALGORITHMS, MiningAlgorithm, get_algorithm
from ymir_base.mining.aldd import AlddMining
from ymir_base.mining.entropy import EntropyMining
from ymir_base.prediction import AUGMENTED_PREDICT, BOXES, DENSE_CLASS_PROBS

DETECTION = ["random", "entropy", "aldd", "cald"]


def test_all_detection_algorithms_are_registered():
    assert set(DETECTION) <= set(ALGORITHMS)
    assert all(issubclass(cls, MiningAlgorithm) for cls in ALGORITHMS.values())


def test_unknown_name_is_a_config_error_listing_the_choices():
    with pytest.raises(ConfigError) as info:
        get_algorithm("foo", {}, ["cat"], supported=["random", "entropy"])
    assert info.value.code == ErrorCode.CONFIG == 300001
    assert str(info.value) == ("mining_algorithm 'foo' is not supported by this image; "
                               "choose one of: entropy, random")


def test_registered_but_unsupported_by_the_image_is_a_config_error():
    with pytest.raises(ConfigError, match=r"mining_algorithm 'aldd'.*choose one of: cald, random"):
        get_algorithm("aldd", {}, ["cat"], supported=["random", "cald"])


def test_names_match_case_insensitively():
    assert isinstance(get_algorithm("ENTROPY", {}, ["cat"], supported=["entropy"]), EntropyMining)
    assert isinstance(get_algorithm(" Aldd", {}, ["cat"], supported=["ALDD"]), AlddMining)


def test_declared_needs():
    assert ALGORITHMS["random"].needs == frozenset()
    assert ALGORITHMS["entropy"].needs == {BOXES}
    assert ALGORITHMS["aldd"].needs == {DENSE_CLASS_PROBS}
    assert ALGORITHMS["cald"].needs == {BOXES, AUGMENTED_PREDICT}
    wanted = {name: get_algorithm(name, {}, ["cat"], DETECTION).outputs_wanted() for name in DETECTION}
    assert wanted == {"random": set(), "entropy": set(), "aldd": {DENSE_CLASS_PROBS}, "cald": set()}
