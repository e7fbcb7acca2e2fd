"""YMIR ``seg-coco`` semantic annotations -> the label-map PNGs mmsegmentation trains on.

A semantic seg-coco export carries masks of labelled classes only: one ``iscrowd: 1`` RLE (or a
single polygon) per (image, class), no background. Each image becomes one single-channel PNG whose
pixel value is the index of the class in ``class_names``. Pixels no mask covers (the "blank"
area) become, by the task's ``ignore_blank_area``:

* false (the default): the training-only class ``BLANK_CLASS`` with index ``len(class_names)``,
  so the model learns what is none of the project's classes; the predictor maps it to "no class"
  and it never reaches a result file or a metric;
* true: 255, mmseg's ``ignore_index``: those pixels neither train nor count in the evaluation.

Overlapping masks of different classes: a pixel takes the class of the SMALLEST mask covering it
(masks are painted largest first), so a small object drawn over a large region stays visible;
between masks of equal pixel count the higher class index wins. The order of the annotations in
the file never matters.

The list of images and label maps is MMEngine's generic annotation format (``{"metainfo",
"data_list"}``), which an MMEngine ``BaseDataset`` subclass of the image reads.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from ymir_base.data.types import ImageRecord, ObjectAnnotation
from ymir_base.errors import ConfigError, DatasetError
from ymir_base.protocol.paths import file_name
from ymir_base.results.atomic import write_text_atomic

BLANK_CLASS = "ymir_blank_area"  # the training-only class of unlabelled pixels
IGNORE_INDEX = 255  # mmseg's default ignore_index
MAX_CLASSES = 254  # mmseg reads label maps as uint8; 255 is "ignore" and one value may be BLANK_CLASS


def model_classes(class_names: Sequence[str], ignore_blank: bool) -> list[str]:
    """The classes the model is trained on: the project's, plus BLANK_CLASS unless blank pixels
    are ignored."""
    if len(class_names) > MAX_CLASSES:
        raise ConfigError(f"config key 'class_names': {len(class_names)} classes, but the label maps "
                          f"mmsegmentation reads hold at most {MAX_CLASSES}")
    if BLANK_CLASS in class_names:
        raise ConfigError(f"config key 'class_names': {BLANK_CLASS!r} is reserved for the unlabelled pixels")
    return list(class_names) if ignore_blank else [*class_names, BLANK_CLASS]


def blank_value(class_names: Sequence[str], ignore_blank: bool) -> int:
    return IGNORE_INDEX if ignore_blank else len(class_names)


def object_mask(obj: ObjectAnnotation, height: int, width: int, where: str) -> np.ndarray:
    """The object's mask (uint8 0/1) at the image size; a mask of another size is a DatasetError."""
    from pycocotools import mask as mask_utils

    if obj.rle is not None:
        size = [int(v) for v in obj.rle["size"]]
        if size != [height, width]:
            raise DatasetError(f"{where}: an RLE mask of class {obj.class_id} has size [h, w] {size}, but the "
                               f"image is {[height, width]}")
        counts = obj.rle["counts"]
        if isinstance(counts, list):  # uncompressed RLE
            rle = mask_utils.frPyObjects({"size": size, "counts": counts}, height, width)
        else:
            rle = {"size": size, "counts": counts.encode("ascii") if isinstance(counts, str) else counts}
        try:
            return mask_utils.decode(rle).astype(np.uint8)
        except Exception as exc:  # pycocotools raises bare exceptions on corrupt counts
            raise DatasetError(f"{where}: an RLE mask of class {obj.class_id} cannot be decoded: {exc}") from exc
    if obj.polygons:
        rles = mask_utils.frPyObjects([list(map(float, p)) for p in obj.polygons], height, width)
        return mask_utils.decode(mask_utils.merge(rles)).astype(np.uint8)
    raise DatasetError(f"{where}: an object of class {obj.class_id} has no mask (seg-coco needs an RLE or a polygon)")


def label_map(record: ImageRecord, blank: int) -> np.ndarray:
    """The uint8 [H, W] label map of one image (see the module doc for blank pixels and overlaps)."""
    where = f"annotation {record.annotation or '?'} image {record.asset}"
    height, width = record.height, record.width
    if height <= 0 or width <= 0:
        raise DatasetError(f"{where}: the image size is unknown")
    canvas = np.full((height, width), blank, np.uint8)
    masks = [object_mask(obj, height, width, where) for obj in record.objects]
    areas = [int(m.sum()) for m in masks]
    order = sorted(range(len(masks)), key=lambda i: (-areas[i], record.objects[i].class_id, i))
    for i in order:
        canvas[masks[i] > 0] = record.objects[i].class_id
    return canvas


def write_split(records: Sequence[ImageRecord], class_names: Sequence[str], out_file: Path, *,
                ignore_blank: bool) -> None:
    """Write one split: a label-map PNG per image in ``<out_file stem>/`` and the list ``out_file``."""
    out_file = Path(out_file)
    folder = out_file.with_suffix("")
    folder.mkdir(parents=True, exist_ok=True)
    blank = blank_value(class_names, ignore_blank)
    items: list[dict[str, Any]] = []
    for number, record in enumerate(records):
        name = file_name(record.name, f"image {record.asset} (index line {record.line}): its name")
        png = folder / f"{number:06d}-{Path(name).stem}.png"
        if not cv2.imwrite(str(png), label_map(record, blank)):
            raise OSError(f"cannot write the label map {png}")
        items.append({"img_path": str(Path(record.path).absolute()), "seg_map_path": str(png)})
    classes = model_classes(class_names, ignore_blank)
    write_text_atomic(out_file, json.dumps({"metainfo": {"classes": classes}, "data_list": items}))


def check_categories(annotation_files: Sequence[Path], class_names: Sequence[str]) -> None:
    """A semantic dataset whose annotations use a category outside ``class_names`` is an error
    naming the file: dropping such masks (what the reader does for boxes) would turn their pixels
    into blank area, i.e. train them as "no class"."""
    known = set(class_names)
    for path in dict.fromkeys(Path(p) for p in annotation_files):
        try:
            data = json.loads(path.read_text(encoding="utf-8-sig"))
        except (OSError, ValueError) as exc:
            raise DatasetError(f"cannot parse annotation file {path}: {exc}") from exc
        names = {c.get("id"): str(c.get("name")) for c in data.get("categories") or [] if isinstance(c, dict)}
        used = {names.get(a.get("category_id")) for a in data.get("annotations") or [] if isinstance(a, dict)}
        unknown = sorted(n for n in used if n is not None and n not in known)
        if unknown:
            raise DatasetError(f"annotation {path}: categories {', '.join(unknown)} are not in class_names "
                               f"{list(class_names)}; a semantic task must list every annotated class")
