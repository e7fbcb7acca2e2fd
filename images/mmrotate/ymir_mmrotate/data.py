"""YMIR rotated boxes -> the annotations mmrotate's configs read.

YMIR's ark and VOC exports give a rotated object as its unrotated extent around the centre plus
``rotate_angle`` in radians (the readers turn it into ``ObjectAnnotation.bbox`` + ``angle``,
see ymir_base/geometry.py). The DOTA configs load boxes as quadrilaterals (``LoadAnnotations``
with ``box_type='qbox'``) and turn them into rotated boxes (``ConvertBoxType``) with their own
angle convention (``le90``), so each object is written as its four corners: no angle convention
has to be translated on the way in, and the model's rotated boxes come back as ``cx, cy, w, h,
angle`` with the angle turning the ``w`` side clockwise on screen, which is YMIR's.

The file is MMEngine's generic annotation format (``{"metainfo", "data_list"}``, one entry per
image with its ``instances``), read by mmdet's ``BaseDetDataset``: DOTA's own dataset class wants
one text file per image next to images named alike, which YMIR's asset folders are not.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ymir_base.data.types import ImageRecord
from ymir_base.geometry import rotated_corners
from ymir_base.prediction import rotated_box
from ymir_base.results.atomic import write_text_atomic


def corners_of(record: ImageRecord) -> list[list[float]]:
    """Each object's corners ``x1, y1, ..., x4, y4`` (pixel edges, x2/y2 exclusive)."""
    return [[round(float(v), 3) for v in rotated_corners(rotated_box(obj)).reshape(-1)] for obj in record.objects]


def data_list(records: Sequence[ImageRecord], class_names: Sequence[str]) -> dict[str, Any]:
    """The annotation document for ``records``; image ids count from 0 in record order."""
    items = []
    for image_id, record in enumerate(records):
        instances = [{"bbox": corners, "bbox_label": int(obj.class_id), "ignore_flag": 0}
                     for obj, corners in zip(record.objects, corners_of(record), strict=True)]
        items.append({"img_path": str(Path(record.path).absolute()), "img_id": image_id,
                      "width": record.width, "height": record.height, "instances": instances})
    return {"metainfo": {"classes": list(class_names)}, "data_list": items}


def write_data_list(records: Sequence[ImageRecord], class_names: Sequence[str], out_file: Path) -> None:
    write_text_atomic(Path(out_file), json.dumps(data_list(records, class_names)))
