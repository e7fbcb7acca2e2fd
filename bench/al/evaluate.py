"""One evaluator for every image: an infer task's ``infer-result.json`` on the test set against
its ground truth, with pycocotools (mAP@0.5 and mAP@0.5:0.95, all areas, 100 detections)."""

from __future__ import annotations

import contextlib
import json
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any, TextIO

import numpy as np
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from al.dataset import Dataset


class _QuietThreads(threading.local):
    active = False


_QUIET = _QuietThreads()
_WRAP = threading.Lock()


class _ThreadFilteredStdout:
    """sys.stdout that drops what a thread inside :func:`quiet` writes and passes the rest on."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream

    def write(self, text: str) -> int:
        return len(text) if _QUIET.active else self.stream.write(text)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.stream, name)


@contextlib.contextmanager
def quiet() -> Iterator[None]:
    """Silences pycocotools' prints in this thread only. contextlib.redirect_stdout swaps the
    process-wide sys.stdout: two evaluations overlapping in the loop's threads (``--jobs``) could
    leave it pointing at a discarded buffer, and every later progress line was lost."""
    with _WRAP:
        if not isinstance(sys.stdout, _ThreadFilteredStdout):
            sys.stdout = _ThreadFilteredStdout(sys.stdout)
    _QUIET.active = True
    try:
        yield
    finally:
        _QUIET.active = False


def ground_truth(dataset: Dataset) -> COCO:
    images, annotations = [], []
    for image_id, item in enumerate(dataset.test.values(), start=1):
        images.append({"id": image_id, "file_name": item.name, "width": item.width, "height": item.height})
        for (x1, y1, x2, y2), class_id in zip(item.boxes, item.class_ids, strict=True):
            w, h = float(x2 - x1), float(y2 - y1)
            annotations.append({"id": len(annotations) + 1, "image_id": image_id, "category_id": int(class_id),
                                "bbox": [float(x1), float(y1), w, h], "area": w * h, "iscrowd": 0})
    coco = COCO()
    coco.dataset = {"images": images, "annotations": annotations,
                    "categories": [{"id": i, "name": n} for i, n in enumerate(dataset.class_names)]}
    with quiet():
        coco.createIndex()
    return coco


def detections(dataset: Dataset, infer_result: Path) -> list[dict]:
    """The boxes of infer-result.json (keys: asset file names) as COCO results of the test images."""
    doc = json.loads(Path(infer_result).read_text(encoding="utf-8"))
    by_asset = {f"{dataset.digest(name)}.jpg": image_id for image_id, name in enumerate(dataset.test, start=1)}
    index = {n: i for i, n in enumerate(dataset.class_names)}
    results = []
    for asset, entry in (doc.get("detection") or {}).items():
        image_id = by_asset.get(asset)
        if image_id is None:
            raise ValueError(f"{infer_result}: {asset} is not a test image")
        for box in entry.get("boxes") or []:
            b = box["box"]
            results.append({"image_id": image_id, "category_id": index[box["class_name"]],
                            "bbox": [float(b["x"]), float(b["y"]), float(b["w"]), float(b["h"])],
                            "score": float(box["score"])})
    return results


def evaluate(dataset: Dataset, infer_result: Path) -> dict[str, float]:
    """``{"map50": ..., "map": ...}`` of one infer result on the test set (0 without detections)."""
    gt = ground_truth(dataset)
    found = detections(dataset, infer_result)
    if not found:
        return {"map50": 0.0, "map": 0.0, "detections": 0}
    with quiet():
        evaluator = COCOeval(gt, gt.loadRes(found), "bbox")
        evaluator.evaluate()
        evaluator.accumulate()
        evaluator.summarize()
    stats = np.maximum(evaluator.stats[:2], 0.0)  # -1: no ground truth at all
    return {"map": float(stats[0]), "map50": float(stats[1]), "detections": len(found)}
