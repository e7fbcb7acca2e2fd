"""infer-result.json per object kind (protocol §7.2), written in two steps so that per-GPU
shards merge: ``entry()`` per image (JSON-able, no ids), then ``write()`` over every candidate
in candidate order, which is where image and annotation ids are numbered.

The engine keeps each entry as its compact JSON text (:func:`encode`), not as a dict: Python
dicts of every box of a large candidate pool take several times the bytes of the file, and
``write()`` streams the file from those texts instead of building the whole document (and its
string) in memory. ``document()`` gives the same file as one dict, for small results and tests.
"""

from __future__ import annotations

import io
import json
from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TextIO

import numpy as np

from ymir_base.prediction import Prediction
from ymir_base.results.infer import detection_entry, dumps

Entry = dict[str, Any]


def encode(entry: Entry) -> str:
    """An entry as the compact JSON text it has in the file."""
    return dumps(entry)


class InferWriter(ABC):
    @abstractmethod
    def entry(self, pred: Prediction | None, class_names: Sequence[str], *, legacy: bool = False) -> Entry:
        """One image's part of the result; ``None`` is an unreadable candidate (present, empty)."""

    @abstractmethod
    def write(self, out: TextIO, entries: Mapping[str, str], class_names: Sequence[str]) -> None:
        """The whole file, streamed to ``out``, from every candidate's encoded entry (basename ->
        :func:`encode` of its entry, candidate order)."""

    def document(self, entries: Mapping[str, Entry], class_names: Sequence[str]) -> dict[str, Any]:
        """The whole file as one dict from every candidate's entry (basename -> entry)."""
        text = io.StringIO()
        self.write(text, {name: encode(entry) for name, entry in entries.items()}, class_names)
        return json.loads(text.getvalue())


@dataclass(frozen=True)
class DetectionWriter(InferWriter):
    """``{"detection": {basename: {"boxes": [...]}}}``; rotated boxes as the unrotated extent."""

    with_angle: bool = False

    def entry(self, pred: Prediction | None, class_names: Sequence[str], *, legacy: bool = False) -> Entry:
        return detection_entry(pred, class_names, with_angle=self.with_angle, legacy=legacy)

    def write(self, out: TextIO, entries: Mapping[str, str], class_names: Sequence[str]) -> None:
        out.write('{"detection":{')
        for k, (name, entry) in enumerate(entries.items()):
            out.write(f"{',' if k else ''}{dumps(name)}:{entry}")
        out.write("}}")


@dataclass(frozen=True)
class SegmentationWriter(InferWriter):
    """The COCO form YMIR imports for types 3 and 4: one image per candidate, categories
    ``{id: i, name: class_names[i]}`` without background, each annotation a compressed-RLE string
    with an integer bbox (w, h >= 1) and an integer area equal to the mask's pixel count.
    Semantic: one ``iscrowd: 1`` annotation per (image, class); instance: ``iscrowd: 0`` with a
    ``confidence``. Empty masks are skipped (YMIR 2.5 fails on empty segmentations)."""

    instance: bool

    def entry(self, pred: Prediction | None, class_names: Sequence[str], *, legacy: bool = False) -> Entry:
        from pycocotools import mask as mask_utils

        if pred is None:
            return {"width": 0, "height": 0, "annotations": []}
        h, w = (int(v) for v in pred.image_size)
        annotations = []
        for rle, cls, score in self._segments(pred, len(class_names)):
            if [int(v) for v in rle["size"]] != [h, w]:
                raise ValueError(f"a mask of size {list(rle['size'])} for an image of size {[h, w]}")
            area = int(mask_utils.area(rle))
            x, y, bw, bh = (round(float(v)) for v in mask_utils.toBbox(rle))
            if area == 0 or bw < 1 or bh < 1:
                continue
            counts = rle["counts"]
            ann: dict[str, Any] = {"category_id": cls, "iscrowd": 0 if self.instance else 1,
                                   "segmentation": {"size": [h, w], "counts": counts.decode("ascii")
                                                    if isinstance(counts, bytes) else str(counts)},
                                   "bbox": [x, y, bw, bh], "area": area}
            if self.instance:
                ann["confidence"] = round(float(score), 6)
            annotations.append(ann)
        return {"width": w, "height": h, "annotations": annotations}

    def _segments(self, pred: Prediction, num_classes: int) -> Iterator[tuple[dict[str, Any], int, float]]:
        from pycocotools import mask as mask_utils

        if self.instance:
            if pred.masks is None:  # boxes without masks: nothing to write
                return
            for rle, cls, score in zip(pred.masks, pred.class_ids, pred.scores, strict=True):
                if 0 <= int(cls) < num_classes:
                    counts = rle["counts"]
                    yield ({"size": list(rle["size"]), "counts": counts.encode("ascii") if isinstance(counts, str)
                            else counts}, int(cls), float(score))
        elif pred.label_map is not None:
            labels = np.asarray(pred.label_map)
            for cls in np.unique(labels):
                if 0 <= int(cls) < num_classes:
                    yield mask_utils.encode(np.asfortranarray((labels == cls).astype(np.uint8))), int(cls), 1.0

    def write(self, out: TextIO, entries: Mapping[str, str], class_names: Sequence[str]) -> None:
        """Images, categories, annotations: two passes over the entries, each decoded one at a time."""
        out.write('{"images":[')
        for image_id, (name, text) in enumerate(entries.items(), start=1):
            entry = json.loads(text)
            out.write(("," if image_id > 1 else "") + dumps(
                {"id": image_id, "file_name": name, "width": entry["width"], "height": entry["height"]}))
        categories = [{"id": i, "name": n, "supercategory": "none"} for i, n in enumerate(class_names)]
        out.write(f'],"categories":{dumps(categories)},"annotations":[')
        ann_id = 0
        for image_id, text in enumerate(entries.values(), start=1):
            for ann in json.loads(text)["annotations"]:
                ann_id += 1
                out.write(("," if ann_id > 1 else "") + dumps({"id": ann_id, "image_id": image_id, **ann}))
        out.write("]}")
