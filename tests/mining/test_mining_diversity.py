"""The diversity re-ranking (mining/diversity.py): greedy picks that push near-duplicates down
every prefix of the ranking, the scores' multiset kept, ties broken by candidate order."""

from __future__ import annotations

import numpy as np
import pytest

from ymir_base.errors import ConfigError, ErrorCode
from ymir_base.mining.diversity import diverse_order, diversity_settings, rerank


def _clusters(sizes=(3, 3, 3), dim=64, noise=0.01, seed=0):
    """Features of near-duplicate groups: one random centre per group plus small noise, and the
    group of each row."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(len(sizes), dim))
    group = np.repeat(np.arange(len(sizes)), sizes)
    return centres[group] + noise * rng.normal(size=(len(group), dim)), group


def test_diversity_zero_is_the_order_by_score():
    scores = np.array([0.2, 0.9, 0.5, 0.9, 0.1])
    features, _ = _clusters((5,))
    order = diverse_order(scores, features, 0.0)
    assert order.tolist() == [1, 3, 2, 0, 4]  # the tie at 0.9: the earlier candidate first
    picks = rerank([(f"c{i}", s, f) for i, (s, f) in enumerate(zip(scores, features, strict=True))], 0.0)
    assert picks == [("c1", 0.9), ("c3", 0.9), ("c2", 0.5), ("c0", 0.2), ("c4", 0.1)]


def test_a_near_duplicate_is_pushed_below_a_distinct_image():
    a = np.array([1.0, 0.0, 0.2])
    scores = [0.9, 0.89, 0.5]
    features = np.stack([a, a + np.array([0.0, 0.01, 0.0]), [0.0, 1.0, 0.0]])
    assert diverse_order(scores, features, 0.0).tolist() == [0, 1, 2]
    assert diverse_order(scores, features, 1.0).tolist() == [0, 2, 1]
    assert rerank([("a", 0.9, features[0]), ("dup", 0.89, features[1]), ("b", 0.5, features[2])], 1.0) == [
        ("a", 0.9), ("b", 0.89), ("dup", 0.5)]


def test_every_prefix_holds_as_many_groups_as_it_can():
    features, group = _clusters((3, 3, 3))
    scores = np.array([0.95, 0.94, 0.93, 0.6, 0.59, 0.58, 0.3, 0.29, 0.28])
    plain = diverse_order(scores, features, 0.0)
    assert group[plain].tolist() == [0, 0, 0, 1, 1, 1, 2, 2, 2]
    order = diverse_order(scores, features, 1.0)
    for n in range(1, len(order) + 1):
        assert len(set(group[order[:n]])) == min(n, 3), (n, group[order].tolist())
    assert sorted(order.tolist()) == list(range(9))  # a permutation
    assert order[0] == 0  # the first pick is the best score


def test_scores_keep_their_multiset_and_fall_along_the_picks():
    features, _ = _clusters((4, 4), seed=1)
    rng = np.random.default_rng(2)
    scores = rng.random(8)
    candidates = [(f"c{i}", float(s), f) for i, (s, f) in enumerate(zip(scores, features, strict=True))]
    picks = rerank(candidates, 0.7)
    assert sorted(s for _, s in picks) == sorted(float(s) for s in scores)
    assert [s for _, s in picks] == sorted((s for _, s in picks), reverse=True)
    assert sorted(a for a, _ in picks) == sorted(a for a, _, _ in candidates)


def test_ties_go_to_the_earlier_candidate_and_repeat():
    same = np.ones((4, 3))
    assert diverse_order([0.5] * 4, same, 2.0).tolist() == [0, 1, 2, 3]
    features = np.array([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0], [0.0, 1.0]])
    first = diverse_order([0.5] * 4, features, 1.0)
    assert first.tolist() == [0, 2, 1, 3]
    assert all(diverse_order([0.5] * 4, features, 1.0).tolist() == first.tolist() for _ in range(3))


def test_the_mean_vector_and_opposite_vectors_are_not_similar():
    # centred on their mean (0 here): [0, 0] is the mean itself, [-1, 0] the opposite of [1, 0]
    features = np.array([[1.0, 0.0], [0.0, 0.0], [-1.0, 0.0], [1.0, 0.0], [-1.0, 0.0]])
    scores = [1.0, 0.2, 0.1, 0.9, 0.05]
    # neither the mean nor the opposite carries a penalty; the duplicates of earlier picks do
    assert diverse_order(scores, features, 1.0).tolist() == [0, 1, 2, 3, 4]
    assert diverse_order(scores, features, 0.0).tolist() == [0, 3, 1, 2, 4]


def test_features_are_compared_centred_on_the_candidates_mean():
    # a large component shared by every image (as pooled activations have) does not make them alike
    shared = np.array([100.0, 100.0, 0.0, 0.0])
    features = shared + np.array([[0, 0, 1, 0], [0, 0, 1, 0.05], [0, 0, 0, 1], [0, 0, -1, -1]])
    order = diverse_order([1.0, 0.95, 0.9, 0.1], features, 1.0)
    assert order.tolist()[:2] == [0, 2]  # the near copy of 0 (index 1) waits; uncentred all look the same


def test_bad_inputs_are_refused():
    with pytest.raises(ValueError, match=r"\[M, D\]"):
        diverse_order([0.1, 0.2], np.ones((3, 4)), 1.0)
    with pytest.raises(ValueError, match="finite"):
        diverse_order([0.1, float("nan")], np.ones((2, 4)), 1.0)
    assert diverse_order([], np.zeros((0, 4)), 1.0).tolist() == []
    assert rerank([], 1.0) == []


def test_settings_default_off_and_are_validated():
    assert diversity_settings({}) == (0.0, 1000)
    assert diversity_settings({"diversity": "0.5", "diversity_pool": "20"}) == (0.5, 20)
    for params, key in (({"diversity": -0.1}, "diversity"), ({"diversity": "x"}, "diversity"),
                        ({"diversity": True}, "diversity"), ({"diversity": float("inf")}, "diversity"),
                        ({"diversity_pool": 0}, "diversity_pool"), ({"diversity_pool": 2.5}, "diversity_pool")):
        with pytest.raises(ConfigError, match=key) as info:
            diversity_settings(params)
        assert info.value.code == ErrorCode.CONFIG
