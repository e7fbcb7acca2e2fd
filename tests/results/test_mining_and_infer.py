import json

import numpy as np
import pytest
from pycocotools import mask as mask_utils

from ymir_base.prediction import Prediction
from ymir_base.results.infer import coco_result, detection_entry, dumps
from ymir_base.results.mining import format_mining_result


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


def test_coco_instance_and_semantic_forms():
    masks = np.zeros((2, 10, 20), bool)
    masks[0, 2:5, 3:9] = True  # 3 x 6 = 18 px
    inst = Prediction((10, 20), boxes=[[3, 2, 9, 5], [0, 0, 1, 1]], scores=[0.8, 0.3], class_ids=[1, 0], masks=masks)
    out = coco_result({"a.jpg": inst}, ["bg", "fg"], instance=True)
    assert len(out["annotations"]) == 1  # the empty mask is skipped
    ann = out["annotations"][0]
    assert ann["bbox"] == [3, 2, 6, 3] and ann["area"] == 18 and ann["confidence"] == 0.8
    assert isinstance(ann["segmentation"]["counts"], str)
    decoded = mask_utils.decode({"size": [10, 20], "counts": ann["segmentation"]["counts"].encode()})
    assert decoded.sum() == 18
    probs = np.zeros((2, 4, 4), np.float32)
    probs[0] = 1.0
    probs[0, :, 0], probs[1, :, 0] = 0.0, 1.0  # column 0 -> class 1, the rest class 0
    sem = coco_result({"s.jpg": Prediction((4, 4), semantic_probs=probs)}, ["a", "b"], instance=False)
    areas = {a["category_id"]: a["area"] for a in sem["annotations"]}
    assert areas == {0: 12, 1: 4} and all("confidence" not in a for a in sem["annotations"])
