"""Prediction: every per-detection field is length-checked and sliced together."""

import numpy as np
import pytest
import torch
from pycocotools import mask as mask_utils

from ymir_base.prediction import Prediction

N = 3


def _full(**changes):
    fields = {
        "boxes": np.arange(N * 4, dtype=np.float32).reshape(N, 4),
        "scores": [0.9, 0.5, 0.1],
        "class_ids": [0, 1, 2],
        "rboxes": np.arange(N * 5, dtype=np.float64).reshape(N, 5),
        "masks": [mask_utils.encode(np.asfortranarray(m)) for m in np.arange(N * 6).reshape(N, 2, 3) % 2 == 0],
        "class_probs": np.eye(N, dtype=np.float32),
        "mask_probs": np.arange(N * 8, dtype=np.float32).reshape(N, 2, 4) / (N * 8),
        "mask_boxes": np.arange(N * 4, dtype=np.float32).reshape(N, 4) / 2,
    }
    fields.update(changes)
    return Prediction((2, 3), **fields)


def test_per_object_fields():
    assert Prediction.per_object_fields() == ("boxes", "scores", "class_ids", "rboxes", "masks", "class_probs",
                                              "mask_probs", "mask_boxes")


@pytest.mark.parametrize(("name", "value"), [
    ("rboxes", np.zeros((N - 1, 5))),
    ("rboxes", np.zeros((N + 1, 5))),
    ("masks", np.zeros((N - 1, 2, 3), bool)),
    ("class_probs", np.zeros((N + 1, 4))),
    ("mask_probs", torch.zeros((N - 1, 2, 4))),
    ("mask_boxes", np.zeros((N + 1, 4))),
    ("scores", [0.1]),
])
def test_every_per_object_field_is_length_checked(name, value):
    with pytest.raises(ValueError, match=rf"differ in length: .*{name} \({len(value)}\)"):
        _full(**{name: value})


@pytest.mark.parametrize(("name", "value", "message"), [
    ("rboxes", np.zeros((N, 4)), r"rboxes must be \[N, 5\]"),
    ("rboxes", np.zeros(N * 5), r"rboxes must be \[N, 5\]"),
    ("class_probs", np.zeros(N), r"class_probs must be \[N, C\]"),
    ("mask_probs", torch.zeros((N, 8)), r"mask_probs must be \[N, h, w\]"),
    ("mask_boxes", np.zeros((N, 5)), r"mask_boxes must be \[N, 4\]"),
])
def test_per_object_shapes_are_checked(name, value, message):
    with pytest.raises(ValueError, match=message):
        _full(**{name: value})


@pytest.mark.parametrize("keep", [np.array([True, False, True]), np.array([2, 0])])
def test_filter_slices_every_per_object_field_and_shares_the_rest(keep):
    dense = [np.ones((1, 3, 2, 2))]
    semantic = np.zeros((3, 2, 3), np.float32)
    pred = _full(dense_class_probs=dense, input_size=(8, 8), semantic_probs=semantic)
    out = pred.filter(keep)
    index = np.flatnonzero(keep) if keep.dtype == bool else keep
    assert len(out) == len(index)
    for name in Prediction.per_object_fields():
        np.testing.assert_array_equal(getattr(out, name), np.asarray(getattr(pred, name))[index], err_msg=name)
    assert out.dense_class_probs is dense and out.semantic_probs is semantic
    assert (out.image_size, out.input_size) == ((2, 3), (8, 8))
    assert out.rboxes.dtype == np.float64  # angles keep their precision


def test_filter_by_score_and_empty_predictions():
    pred = _full()
    confident = pred.filter(pred.scores >= 0.5)
    assert len(confident) == 2 and [m["size"] for m in confident.masks] == [[2, 3]] * 2
    empty = Prediction((5, 5))
    assert len(empty) == 0 and empty.rboxes is None and len(empty.filter(np.zeros(0, bool))) == 0
    assert len(pred.filter([])) == 0  # an empty index list
    assert Prediction((5, 5), rboxes=np.zeros((0, 5)), class_probs=[]).rboxes.shape == (0, 5)


@pytest.mark.parametrize("keep", [np.array([False, True, True]), np.array([2, 1]), []])
def test_soft_masks_stay_torch_tensors_and_are_sliced_with_the_rest(keep):
    pred = _full(mask_probs=torch.rand(N, 2, 4), mask_boxes=torch.rand(N, 4))
    out = pred.filter(keep)
    index = torch.as_tensor(np.flatnonzero(keep) if np.asarray(keep).dtype == bool else keep, dtype=torch.long)
    assert isinstance(out.mask_probs, torch.Tensor) and isinstance(out.mask_boxes, torch.Tensor)
    assert torch.equal(out.mask_probs, pred.mask_probs[index]) and torch.equal(out.mask_boxes, pred.mask_boxes[index])
    np.testing.assert_array_equal(out.scores, pred.scores[index.numpy()])
