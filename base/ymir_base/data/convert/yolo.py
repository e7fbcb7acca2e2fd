"""Write a Dataset in the folder layout the ``yolov5`` package trains from, without copying images.

``images/<split>/<asset name>`` links to the real image, ``labels/<split>/<stem>.txt`` holds
``cls cx cy w h`` normalised to [0, 1] (or what the ``labels`` function writes, e.g. YOLOv5-seg
polygons); yolov5 finds each label by replacing ``/images/`` with ``/labels/`` in the
(unresolved) image path. Rotation angles are ignored.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import yaml

from ymir_base.data.types import Dataset, ImageRecord
from ymir_base.errors import DatasetError
from ymir_base.protocol.paths import file_name
from ymir_base.results.atomic import link_or_copy_atomic


def write_yolo_dataset(dataset: Dataset, out_dir: Path,
                       labels: Callable[[ImageRecord], str] | None = None) -> Path:
    """Write both splits and ``data.yaml`` under ``out_dir``; returns the data.yaml path.
    ``labels`` gives one image's label file text (default: :func:`yolo_labels`, boxes).

    Split folders from an earlier call are replaced, so stale images cannot leak into training;
    so is yolov5's label cache ``labels/<split>.cache``, whose hash (file sizes and paths) can
    miss a rewrite that keeps every label file's size.
    """
    labels = labels or yolo_labels
    out_dir = Path(out_dir).absolute()
    folders = {}
    for split, records in (("train", dataset.train), ("val", dataset.val)):
        folders[split] = images_dir = out_dir / "images" / split
        labels_dir = out_dir / "labels" / split
        for folder in (images_dir, labels_dir):
            if folder.exists():
                shutil.rmtree(folder)
            folder.mkdir(parents=True)
        labels_dir.with_suffix(".cache").unlink(missing_ok=True)
        sources: dict[str, Path] = {}
        for record in records:
            file_name(record.name, f"image {record.asset} (index line {record.line}): its name")
            if record.name in sources:
                if sources[record.name] == record.path:
                    continue
                raise DatasetError(f"{split} split has two different images named {record.name}: "
                                   f"{sources[record.name]} and {record.path}")
            sources[record.name] = record.path
            link_or_copy_atomic(record.path.absolute(), images_dir / record.name, symlink=True)
            (labels_dir / f"{Path(record.name).stem}.txt").write_text(labels(record))
    data_yaml = out_dir / "data.yaml"
    data_yaml.write_text(yaml.safe_dump({
        "train": str(folders["train"]),
        "val": str(folders["val"]),
        "nc": len(dataset.class_names),
        "names": list(dataset.class_names),
    }, sort_keys=False, allow_unicode=True))
    return data_yaml


def yolo_labels(record: ImageRecord) -> str:
    """The label file text of one image (empty for an image without objects)."""
    if record.width <= 0 or record.height <= 0:
        raise ValueError(f"image size of {record.asset} is unknown; load the split with check_images=True")
    lines = []
    for obj in record.objects:
        x1, y1, x2, y2 = obj.bbox
        cx, cy = (x1 + x2) / 2 / record.width, (y1 + y2) / 2 / record.height
        w, h = (x2 - x1) / record.width, (y2 - y1) / record.height
        lines.append(f"{obj.class_id} {cx:.6f} {cy:.6f} {w:.6f} {h:.6f}\n")
    return "".join(lines)

