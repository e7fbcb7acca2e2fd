import json
import math

import numpy as np
import pytest
from pycocotools import mask as mask_utils

from conftest import detection_result
from ymir_base.prediction import Prediction
from ymir_base.results.infer import detection_entry, dumps
from ymir_base.results.mining import format_mining_result
from ymir_base.tasks import INSTANCE, SEMANTIC


def test_mining_sorted_descending_stable():
    text = format_mining_result([("/in/a.jpg", 0.1), ("/in/b.jpg", 0.9), ("/in/c.jpg", 0.1)])
    assert text == "/in/b.jpg\t0.9\n/in/a.jpg\t0.1\n/in/c.jpg\t0.1\n"
    with pytest.raises(ValueError):
        format_mining_result([("/in/a b.jpg", 0.1)])
    with pytest.raises(ValueError):
        format_mining_result([("/in/a.jpg", float("nan"))])


def test_detection_boxes_are_integers_clipped_and_sorted():
    pred = Prediction((100, 200), boxes=[[10.4, 20.6, 50.6, 80.2], [-5, -5, 300, 50], [3, 3, 3.2, 9]],
                      scores=[0.5, 0.9, 0.7], class_ids=[1, 0, 0])
    result = {"detection": {"a.jpg": detection_entry(pred, ["cat", "dog"]), "b.jpg": detection_entry(None, ["cat"])}}
    boxes = result["detection"]["a.jpg"]["boxes"]
    assert boxes[0] == {"box": {"x": 0, "y": 0, "w": 200, "h": 50}, "class_name": "cat", "score": 0.9}
    assert boxes[1] == {"box": {"x": 10, "y": 21, "w": 41, "h": 59}, "class_name": "dog", "score": 0.5}
    assert len(boxes) == 2  # the 0.2 px wide box rounds to zero width and is dropped
    assert result["detection"]["b.jpg"] == {"boxes": []}
    assert "annotations" in detection_entry(pred, ["cat", "dog"], legacy=True)
    assert detection_entry(None, ["cat"], legacy=True) == {"annotations": []}
    angled = detection_entry(pred, ["cat", "dog"], with_angle=True)
    assert angled["boxes"][0]["box"]["rotate_angle"] == 0.0
    json.loads(dumps(result))


def _rotated_written(pred):
    return detection_result({"a.jpg": pred}, ["cat", "dog", "car"], with_angle=True)["detection"]["a.jpg"]["boxes"]


def test_issue_example_is_written_as_the_unrotated_extent():
    """(cx, cy, w, h, a) = (80, 500, 200, 20, pi/4) in a 1024x1024 image: not the hull
    (2.2, 422.2, 157.8, 577.8) but the unrotated extent, sticking out on the left, not clipped."""
    rbox = [80, 500, 200, 20, math.pi / 4]
    hull = [[2.2, 422.2, 157.8, 577.8]]
    pred = Prediction((1024, 1024), boxes=hull, scores=[0.9], class_ids=[1], rboxes=[rbox])
    (box,) = _rotated_written(pred)
    assert box == {"box": {"x": -20, "y": 490, "w": 200, "h": 20, "rotate_angle": math.pi / 4},
                   "class_name": "dog", "score": 0.9}
    assert box["box"]["rotate_angle"] == pytest.approx(0.785398, abs=1e-6)
    assert all(type(box["box"][k]) is int for k in "xywh")


def test_rotated_writer_never_reads_the_hull():
    """Garbage (or zero-size) hulls do not change what is written for rotated boxes."""
    rboxes = [[80, 500, 200, 20, 0.5], [300.2, 40.7, 10.4, 0.3, -1.0]]
    pred = Prediction((1024, 1024), boxes=np.zeros((2, 4)), scores=[0.9, 0.8], class_ids=[0, 2],
                      rboxes=rboxes)
    boxes = [b["box"] for b in _rotated_written(pred)]
    assert boxes == [{"x": -20, "y": 490, "w": 200, "h": 20, "rotate_angle": 0.5},
                     {"x": 295, "y": 40, "w": 10, "h": 1, "rotate_angle": -1.0}]  # h >= 1


def test_coco_instance_and_semantic_forms():
    masks = np.zeros((2, 10, 20), np.uint8)
    masks[0, 2:5, 3:9] = 1  # 3 x 6 = 18 px
    rles = [mask_utils.encode(np.asfortranarray(m)) for m in masks]
    inst = Prediction((10, 20), boxes=[[3, 2, 9, 5], [0, 0, 1, 1]], scores=[0.8, 0.3], class_ids=[1, 0], masks=rles)
    out = INSTANCE.writer.document({"a.jpg": INSTANCE.writer.entry(inst, ["bg", "fg"])}, ["bg", "fg"])
    assert len(out["annotations"]) == 1  # the empty mask is skipped
    ann = out["annotations"][0]
    assert ann["bbox"] == [3, 2, 6, 3] and ann["area"] == 18 and ann["confidence"] == 0.8
    assert isinstance(ann["segmentation"]["counts"], str)
    decoded = mask_utils.decode({"size": [10, 20], "counts": ann["segmentation"]["counts"].encode()})
    assert decoded.sum() == 18
    labels = np.zeros((4, 4), np.int64)
    labels[:, 0] = 1  # column 0 -> class 1, the rest class 0
    sem = SEMANTIC.writer.entry(Prediction((4, 4), label_map=labels), ["a", "b"])
    areas = {a["category_id"]: a["area"] for a in sem["annotations"]}
    assert areas == {0: 12, 1: 4} and all("confidence" not in a for a in sem["annotations"])
