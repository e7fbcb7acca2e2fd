"""Matching predictions to ground truth for the demo's summary."""

from __future__ import annotations

from ymir_base.demo.compare import Box, iou, match


def test_iou_of_known_boxes():
    a = Box(0, 0, 10, 10, "c")
    assert iou(a, Box(0, 0, 10, 10, "c")) == 1.0
    assert iou(a, Box(5, 0, 15, 10, "c")) == 50 / 150
    assert iou(a, Box(10, 0, 20, 10, "c")) == 0.0  # touching edges share no pixel


def test_match_counts_right_wrong_and_missed():
    truth = [Box(0, 0, 10, 10, "circle"), Box(20, 20, 30, 30, "square"), Box(40, 40, 50, 50, "circle")]
    predicted = [
        Box(0, 0, 10, 9, "circle", 0.9),     # right (IoU 0.9)
        Box(0, 0, 10, 10, "circle", 0.8),    # duplicate of a claimed box: wrong
        Box(20, 20, 30, 30, "circle", 0.7),  # right place, wrong class: wrong
        Box(60, 60, 70, 70, "circle", 0.6),  # nothing there: wrong
    ]
    m = match(truth, predicted)
    assert (m.correct, m.wrong, m.missed) == (1, 3, 2)


def test_the_higher_score_claims_the_box():
    truth = [Box(0, 0, 10, 10, "c")]
    low_first = [Box(0, 0, 10, 10, "c", 0.3), Box(1, 0, 10, 10, "c", 0.9)]
    m = match(truth, low_first)
    assert (m.correct, m.wrong, m.missed) == (1, 1, 0)


def test_iou_threshold_is_inclusive_and_respected():
    truth = [Box(0, 0, 10, 10, "c")]
    half = Box(0, 0, 10, 5, "c", 1.0)  # IoU exactly 0.5
    assert match(truth, [half]).correct == 1
    assert match(truth, [half], iou_threshold=0.6).correct == 0
