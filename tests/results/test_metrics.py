import math

import pytest

from ymir_base.results.metrics import MAP_TAG, DetectionEvaluation, evaluate_config, unit_fraction


def test_unit_fraction_clamps_what_evaluators_give_and_refuses_percentages():
    assert unit_fraction(0.25) == 0.25 and isinstance(unit_fraction(1), float)
    assert unit_fraction(float("nan")) == 0.0 and unit_fraction(math.inf) == 0.0
    assert unit_fraction(-1) == 0.0  # COCO's "no ground truth"
    assert unit_fraction(1.0000001) == 1.0
    with pytest.raises(ValueError, match="from_percent"):
        unit_fraction(55.1)


def test_stage_metric_is_map50_and_everything_else_goes_to_scalars_and_details():
    ev = DetectionEvaluation(map50=0.8, map50_95=0.5, map75=0.55, precision=0.7, recall=0.6,
                             per_class={"cat": {"AP@0.5": 0.9, "AP@0.5:0.95": 0.6},
                                        "dog": {"AP@0.5": float("nan"), "AP@0.5:0.95": -1}})
    assert ev.stage_metrics() == {"mAP": 0.8, "mAR": 0.6}
    assert ev.scalars() == {MAP_TAG: 0.8, "metrics/mAP_0.5:0.95": 0.5, "metrics/mAP_0.75": 0.55,
                            "metrics/precision": 0.7, "metrics/recall": 0.6,
                            "metrics/AP_0.5/cat": 0.9, "metrics/AP_0.5:0.95/cat": 0.6}
    assert ev.as_dict(epoch=3) == {"epoch": 3, "mAP": 0.8, "mAP@0.5": 0.8, "mAP@0.5:0.95": 0.5, "mAP@0.75": 0.55,
                                   "precision": 0.7, "recall": 0.6, "iou_thr": 0.5,
                                   "per_class": {"cat": {"AP@0.5": 0.9, "AP@0.5:0.95": 0.6},
                                                 "dog": {"AP@0.5": None, "AP@0.5:0.95": None}}}


def test_missing_numbers_are_left_out():
    ev = DetectionEvaluation(map50=float("nan"))
    assert ev.stage_metrics() == {"mAP": 0.0}
    assert ev.scalars() == {MAP_TAG: 0.0}
    assert ev.as_dict() == {"mAP": 0.0, "mAP@0.5": 0.0, "iou_thr": 0.5}
    assert evaluate_config(0.001) == {"iou_thr": 0.5, "conf_thr": 0.001}
