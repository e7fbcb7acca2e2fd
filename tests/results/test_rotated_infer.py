"""Rotated boxes in infer-result.json: the unrotated extent around the centre, read back exactly as
the ark / VOC readers read ground truth."""

import math

import numpy as np
import pytest

from conftest import detection_result
from ymir_base.data.ark import parse_ark
from ymir_base.data.voc import parse_voc
from ymir_base.prediction import Prediction, rotated_box

CLASSES = ["plane", "ship", "car"]


def _written(pred, name="a.jpg"):
    return detection_result({name: pred}, CLASSES, with_angle=True)["detection"][name]["boxes"]


def test_non_finite_rotated_boxes_are_dropped():
    rboxes = [[10, 10, 5, 5, math.nan], [math.inf, 10, 5, 5, 0.1], [10, 10, -5, 5, 0.1], [10, 10, 5, 5, 0.1]]
    pred = Prediction.from_rotated((100, 100), rboxes, scores=[0.9, 0.8, 0.7, 0.6], class_ids=[0, 0, 0, 0])
    assert [b["box"] for b in _written(pred)] == [{"x": 8, "y": 8, "w": 5, "h": 5, "rotate_angle": 0.1}]


ARK_LINES = [
    "0, -20, 490, 179, 509, -1.0, 0.785398",   # the example as ground truth
    "1, 10, 20, 30, 41, 0.8999999761581421, -0.5236",  # odd width and height
    "2, 3, 4, 3, 4, -1.0, 1.2",                 # a single pixel
    "0, 1000, 7, 1100, 60, -1.0, 3.0",          # beyond the right border of the image
    "1, 0, 0, 1023, 1023, -1.0, 0.0001",
]


@pytest.mark.parametrize("line", ARK_LINES)
def test_ground_truth_round_trips_through_the_infer_writer(tmp_path, line):
    """ark line -> ark reader -> ObjectAnnotation -> rboxes -> infer writer gives the line back."""
    path = tmp_path / "a.txt"
    path.write_text(line + "\n")
    (obj,) = parse_ark(path, CLASSES)
    pred = Prediction.from_rotated((1024, 1024), [rotated_box(obj)], scores=[0.5], class_ids=[obj.class_id])
    (written,) = _written(pred)
    class_id, xmin, ymin, xmax, ymax = (int(v) for v in line.split(",")[:5])
    angle = float(line.split(",")[6])
    assert written["class_name"] == CLASSES[class_id]
    assert written["box"] == {"x": xmin, "y": ymin, "w": xmax - xmin + 1, "h": ymax - ymin + 1,
                              "rotate_angle": angle}


def test_voc_ground_truth_round_trips_too(tmp_path):
    path = tmp_path / "a.xml"
    path.write_text("<annotation><object><name>car</name><bndbox><xmin>-20</xmin><ymin>490</ymin>"
                    "<xmax>179</xmax><ymax>509</ymax><rotate_angle>0.7854</rotate_angle></bndbox></object>"
                    "</annotation>")
    (obj,) = parse_voc(path, CLASSES)
    pred = Prediction.from_rotated((1024, 1024), [rotated_box(obj)], scores=[0.5], class_ids=[obj.class_id])
    (written,) = _written(pred)
    assert written["box"] == {"x": -20, "y": 490, "w": 200, "h": 20, "rotate_angle": 0.7854}


def test_rotated_box_of_an_annotation_and_its_hull(tmp_path):
    path = tmp_path / "a.txt"
    path.write_text("0, -20, 490, 179, 509, -1.0, 0.7853981633974483\n")
    (obj,) = parse_ark(path, CLASSES)
    np.testing.assert_allclose(rotated_box(obj), [80, 500, 200, 20, math.pi / 4])
    pred = Prediction.from_rotated((1024, 1024), [rotated_box(obj)], scores=[0.5], class_ids=[0])
    half = 110 / math.sqrt(2)  # (w / 2 + h / 2) * cos 45 degrees
    np.testing.assert_allclose(pred.boxes, [[80 - half, 500 - half, 80 + half, 500 + half]], atol=1e-3)
