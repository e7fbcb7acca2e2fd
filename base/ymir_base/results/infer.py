"""``/out/infer-result.json`` (protocol §7.2).

Detection: ``{"detection": {basename: {"boxes": [{"box": {x, y, w, h[, rotate_angle]},
"class_name", "score"}]}}}`` with integer boxes and an entry for every candidate.
Segmentation (semantic / instance): a COCO dict whose annotations carry a compressed RLE
string, ``bbox``, ``area`` and (instance only) ``confidence``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from ymir_base.prediction import Prediction


def detection_boxes(pred: Prediction, class_names: Sequence[str], *, with_angle: bool = False,
                    legacy: bool = False) -> dict[str, list[dict[str, Any]]]:
    h, w = pred.image_size
    out = []
    for i in np.argsort(-pred.scores, kind="stable"):
        cls = int(pred.class_ids[i])
        if not 0 <= cls < len(class_names):
            continue
        x1, y1, x2, y2 = (float(v) for v in pred.boxes[i])
        x1, x2 = max(0.0, min(x1, w)), max(0.0, min(x2, w))
        y1, y2 = max(0.0, min(y1, h)), max(0.0, min(y2, h))
        x, y = round(x1), round(y1)
        bw, bh = round(x2) - x, round(y2) - y
        if bw <= 0 or bh <= 0:
            continue
        box: dict[str, Any] = {"x": int(x), "y": int(y), "w": int(bw), "h": int(bh)}
        if with_angle:
            angle = 0.0 if pred.rboxes is None else float(pred.rboxes[i][4])
            box["rotate_angle"] = angle if math.isfinite(angle) else 0.0
        out.append({"box": box, "class_name": class_names[cls], "score": round(float(pred.scores[i]), 6)})
    return {"annotations" if legacy else "boxes": out}


def detection_entry(pred: Prediction | None, class_names: Sequence[str], *, with_angle: bool = False,
                    legacy: bool = False) -> dict[str, list[dict[str, Any]]]:
    """One image's entry; an unreadable image (None) gets an empty box list."""
    if pred is None:
        return {"annotations" if legacy else "boxes": []}
    return detection_boxes(pred, class_names, with_angle=with_angle, legacy=legacy)


def coco_result(predictions: Mapping[str, Prediction | None], class_names: Sequence[str], *,
                instance: bool) -> dict[str, Any]:
    """COCO form for semantic (one RLE per image and class) or instance segmentation."""
    from pycocotools import mask as mask_utils

    images, annotations = [], []
    for image_id, (name, pred) in enumerate(predictions.items(), start=1):
        h, w = pred.image_size if pred is not None else (0, 0)
        images.append({"id": image_id, "file_name": name, "width": int(w), "height": int(h)})
        if pred is None:
            continue
        for mask, cls, score in _segments(pred, instance):
            if not mask.any() or not 0 <= cls < len(class_names):
                continue  # YMIR 2.5 crashes on empty segmentations: skip them
            rle = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
            bbox = [round(float(v)) for v in mask_utils.toBbox(rle)]
            if bbox[2] <= 0 or bbox[3] <= 0:
                continue
            ann = {"id": len(annotations) + 1, "image_id": image_id, "category_id": int(cls),
                   "iscrowd": 0 if instance else 1,
                   "segmentation": {"size": [int(h), int(w)], "counts": rle["counts"].decode("ascii")},
                   "bbox": bbox, "area": int(mask_utils.area(rle))}
            if instance:
                ann["confidence"] = round(float(score), 6)
            annotations.append(ann)
    categories = [{"id": i, "name": n, "supercategory": "none"} for i, n in enumerate(class_names)]
    return {"images": images, "categories": categories, "annotations": annotations}


def _segments(pred: Prediction, instance: bool):
    if instance:
        if pred.masks is None:
            return
        for m, c, s in zip(pred.masks, pred.class_ids, pred.scores, strict=True):
            yield np.asarray(m, bool), int(c), float(s)
    elif pred.semantic_probs is not None:
        labels = np.asarray(pred.semantic_probs).argmax(0)
        for cls in np.unique(labels):
            yield labels == cls, int(cls), 1.0


def dumps(result: Mapping[str, Any]) -> str:
    return json.dumps(result, ensure_ascii=False, separators=(",", ":"))
