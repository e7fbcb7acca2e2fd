"""Write image records as a standard COCO json (for trainers and evaluators that read COCO)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pycocotools import mask as mask_utils

from ymir_base.data.types import ImageRecord, ObjectAnnotation
from ymir_base.results.atomic import write_text_atomic


def write_coco_json(records: list[ImageRecord], class_names: Sequence[str], out_file: Path) -> None:
    """Write ``records`` to ``out_file`` atomically (temp file in the same folder, then rename).

    Image ids and annotation ids count from 1; ``file_name`` is the absolute host path, so no
    image root is needed; every class of ``class_names`` is a category with id = its index.
    """
    images, annotations = [], []
    for image_id, record in enumerate(records, start=1):
        images.append({"id": image_id, "file_name": str(Path(record.path).absolute()),
                       "width": record.width, "height": record.height})
        for obj in record.objects:
            annotations.append(_annotation(obj, len(annotations) + 1, image_id, record))
    coco = {
        "info": {"description": "written by ymir_base"},
        "licenses": [],
        "images": images,
        "annotations": annotations,
        "categories": [{"id": i, "name": name, "supercategory": "object"}
                       for i, name in enumerate(class_names)],
    }
    write_text_atomic(Path(out_file), json.dumps(coco))


def _annotation(obj: ObjectAnnotation, ann_id: int, image_id: int, record: ImageRecord) -> dict[str, Any]:
    x1, y1, x2, y2 = (float(v) for v in obj.bbox)
    segmentation: Any = []
    area = (x2 - x1) * (y2 - y1)
    if obj.polygons:
        segmentation = obj.polygons
        rles = mask_utils.frPyObjects(obj.polygons, record.height, record.width)
        area = float(mask_utils.area(mask_utils.merge(rles)))
    elif obj.rle:
        segmentation = obj.rle
        rle = obj.rle
        if isinstance(rle["counts"], list):  # uncompressed RLE
            rle = mask_utils.frPyObjects(rle, *rle["size"])
        area = float(mask_utils.area(rle))
    return {"id": ann_id, "image_id": image_id, "category_id": obj.class_id,
            "bbox": [x1, y1, x2 - x1, y2 - y1], "area": area, "iscrowd": obj.iscrowd,
            "segmentation": segmentation}
