import pytest

from ymir_base.errors import ConfigError, ErrorCode
from ymir_base.mining import ALGORITHMS, MiningAlgorithm, algorithm_class, algorithm_names, get_algorithm
from ymir_base.mining.aldd import AlddMining
from ymir_base.mining.base import register
from ymir_base.mining.entropy import EntropyMining
from ymir_base.mining.random import RandomMining
from ymir_base.mining.ripu import RipuMining
from ymir_base.mining.rsal import RsalMining
from ymir_base.mining.semantic_entropy import SemanticEntropyMining
from ymir_base.prediction import AUGMENTED_PREDICT, BOXES, DENSE_CLASS_PROBS, SEMANTIC_PROBS
from ymir_base.tasks import KINDS

DETECTION = ["random", "entropy", "aldd", "cald"]


def test_all_detection_algorithms_are_registered_for_the_box_kinds():
    for kind in ("detection", "rotated", "instance"):
        assert set(DETECTION) <= algorithm_names(kind)
    assert all(issubclass(cls, MiningAlgorithm) for cls in ALGORITHMS.values())
    assert all(kind in KINDS and kind in cls.kinds for (_, kind), cls in ALGORITHMS.items())


def test_random_serves_every_kind():
    assert all(algorithm_class("random", kind) is RandomMining for kind in KINDS)


def test_unknown_name_is_a_config_error_listing_the_choices():
    with pytest.raises(ConfigError) as info:
        get_algorithm("foo", {}, ["cat"], supported=["random", "entropy"], kind="detection")
    assert info.value.code == ErrorCode.CONFIG == 300001
    assert str(info.value) == ("mining_algorithm 'foo' is not supported by this image for detection tasks; "
                               "choose one of: entropy, random")


def test_registered_but_unsupported_by_the_image_is_a_config_error():
    with pytest.raises(ConfigError, match=r"mining_algorithm 'aldd'.*choose one of: cald, random"):
        get_algorithm("aldd", {}, ["cat"], supported=["random", "cald"], kind="detection")


def test_a_name_not_registered_for_the_kind_is_not_offered_for_it():
    # the image lists aldd (for its detection tasks), but aldd means nothing for a semantic task
    with pytest.raises(ConfigError, match=r"for semantic tasks; choose one of: random$"):
        get_algorithm("aldd", {}, ["cat"], supported=["aldd", "random"], kind="semantic")


def test_names_match_case_insensitively():
    assert isinstance(get_algorithm("ENTROPY", {}, ["cat"], supported=["entropy"], kind="detection"), EntropyMining)
    assert isinstance(get_algorithm(" Aldd", {}, ["cat"], supported=["ALDD"], kind="rotated"), AlddMining)


def test_unknown_kind_is_a_programming_error():
    with pytest.raises(ValueError, match="unknown object kind 'boxes'"):
        get_algorithm("random", {}, ["cat"], supported=["random"], kind="boxes")


def test_registration_checks_kinds_and_duplicates():
    class NoKinds(RandomMining):
        name = "no-kinds"
        kinds = frozenset()

    class BadKind(RandomMining):
        name = "bad-kind"
        kinds = frozenset({"panoptic"})

    class Twice(RandomMining):
        name = "Random"
        kinds = frozenset({"semantic"})

    for cls, message in ((NoKinds, "non-empty subset"), (BadKind, "panoptic"), (Twice, "twice for semantic")):
        with pytest.raises(ValueError, match=message):
            register(cls)
    assert algorithm_class("no-kinds", "detection") is None and algorithm_class("bad-kind", "detection") is None


def test_declared_needs():
    assert ALGORITHMS["random", "detection"].needs == frozenset()
    assert ALGORITHMS["entropy", "detection"].needs == {BOXES}
    assert ALGORITHMS["aldd", "detection"].needs == {DENSE_CLASS_PROBS}
    assert ALGORITHMS["cald", "detection"].needs == {BOXES, AUGMENTED_PREDICT}
    wanted = {name: get_algorithm(name, {}, ["cat"], DETECTION, kind="detection").outputs_wanted()
              for name in DETECTION}
    assert wanted == {"random": set(), "entropy": set(), "aldd": {DENSE_CLASS_PROBS}, "cald": set()}


def test_entropy_means_box_entropy_for_the_box_kinds_and_pixel_entropy_for_semantic():
    for kind in ("detection", "rotated", "instance"):
        assert type(get_algorithm("entropy", {}, ["cat"], ["entropy"], kind=kind)) is EntropyMining
    semantic = get_algorithm("Entropy", {}, ["cat"], ["entropy"], kind="semantic")
    assert type(semantic) is SemanticEntropyMining and semantic.outputs_wanted() == {SEMANTIC_PROBS}


def test_semantic_algorithms():
    assert algorithm_names("semantic") == {"random", "entropy", "rsal", "ripu"}
    assert isinstance(get_algorithm("RSAL", {}, ["cat"], ["RSAL", "RIPU"], kind="semantic"), RsalMining)
    assert isinstance(get_algorithm("ripu", {}, ["cat"], ["RSAL", "RIPU"], kind="semantic"), RipuMining)
    for cls in (RsalMining, RipuMining, SemanticEntropyMining):
        assert cls.needs == {SEMANTIC_PROBS} and cls.kinds == {"semantic"}


def test_unknown_semantic_name_lists_the_semantic_choices():
    with pytest.raises(ConfigError) as info:
        get_algorithm("aldd", {}, ["cat"], ["RSAL", "RIPU", "entropy", "random"], kind="semantic")
    assert info.value.code == ErrorCode.CONFIG
    assert str(info.value) == ("mining_algorithm 'aldd' is not supported by this image for semantic tasks; "
                               "choose one of: entropy, random, RIPU, RSAL")
    with pytest.raises(ConfigError, match=r"for detection tasks; choose one of: entropy, random$"):
        get_algorithm("RSAL", {}, ["cat"], ["RSAL", "entropy", "random"], kind="detection")


def test_instance_algorithms():
    assert algorithm_names("instance") == {"random", "entropy", "aldd", "cald", "apis", "maskal"}
    choices = ["apis", "aldd", "cald", "maskAL", "entropy", "random"]
    assert type(get_algorithm("maskal", {}, ["cat"], choices, kind="instance")).name == "maskAL"
    with pytest.raises(ConfigError, match=r"for detection tasks; choose one of: aldd, cald, entropy, random$"):
        get_algorithm("apis", {}, ["cat"], choices, kind="detection")
