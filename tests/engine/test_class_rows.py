"""ymir_base.class_rows: which rows of a head tensor a start for other classes keeps."""

from __future__ import annotations

import torch

from ymir_base.class_rows import refit_class_rows


def _rows(priors: int, per_prior: list[float]) -> torch.Tensor:
    """A bias-like tensor: each prior's rows are ``per_prior`` plus 100 x the prior's index."""
    return torch.tensor([v + 100 * p for p in range(priors) for v in per_prior])


def test_box_rows_named_classes_and_trailing_rows_are_kept_per_prior():
    # 2 priors x (2 box rows, classes a b c, 1 mask row) -> 2 x (2 box rows, classes c x, 1 mask row)
    old = _rows(2, [1, 2, 10, 11, 12, 7])
    init = torch.full((2 * 5,), -1.0)
    got = refit_class_rows(old, init, priors=2, before=2, names=["c", "x"], old_names=["a", "b", "c"])
    assert got.tolist() == [1, 2, 12, -1, 7, 101, 102, 112, -1, 107]


def test_the_rows_dimension_of_a_weight_and_of_an_implicit():
    old = torch.arange(3 * 4, dtype=torch.float).view(1, 12, 1, 1)  # 3 priors x (1 + 3 classes)
    got = refit_class_rows(old, torch.zeros(1, 6, 1, 1), priors=3, before=1, names=["b"], old_names=["a", "b", "c"])
    assert got.flatten().tolist() == [0, 2, 4, 6, 8, 10]
    weight = torch.arange(4 * 2, dtype=torch.float).view(4, 2)  # 1 prior x 4 classes, 2 inputs
    got = refit_class_rows(weight, torch.zeros(2, 2), priors=1, before=0, names=["d", "z"],
                           old_names=["a", "b", "c", "d"])
    assert got.tolist() == [[6, 7], [0, 0]]


def test_unknown_old_names_keep_only_the_rows_around_the_classes():
    old = _rows(1, [1, 2, 10, 11])
    got = refit_class_rows(old, torch.zeros(3), priors=1, before=2, names=["a"], old_names=[])
    assert got.tolist() == [1, 2, 0]


def test_same_shape_with_other_names_needs_the_dimension():
    old = _rows(1, [1, 10, 11])
    assert refit_class_rows(old, torch.zeros(3), priors=1, before=1, names=["b", "a"], old_names=["a", "b"]) is None
    got = refit_class_rows(old, torch.zeros(3), priors=1, before=1, names=["b", "a"], old_names=["a", "b"], dim=0)
    assert got.tolist() == [1, 11, 10]


def test_shapes_off_the_layout_are_refused():
    kw = {"before": 5, "names": ["a"], "old_names": []}
    assert refit_class_rows(torch.zeros(4, 3), torch.zeros(6, 2), priors=1, **kw) is None  # two dims differ
    assert refit_class_rows(torch.zeros(16), torch.zeros(18), priors=3, **kw) is None  # not 3 priors' rows
    assert refit_class_rows(torch.zeros(15), torch.zeros(18), priors=3, **kw) is None  # no old class left
    assert refit_class_rows(torch.zeros(2, 1), torch.zeros(3), priors=1, **kw) is None  # other rank
