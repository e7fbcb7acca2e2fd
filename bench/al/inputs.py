"""The ``/in`` folder of each task of the loop, written by the base's own writer
(ymir_base.sample.writer) as YMIR would: content-addressed assets (hard links to the dataset's
files, copies across file systems), ark annotations for training, a candidate index for mining and
infer, and the model of the previous training as ``model_params_path``."""

from __future__ import annotations

import hashlib
import math
import os
import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from al.dataset import Dataset, Item
from ymir_base.sample.writer import Sample, Shape, asset_path, write_task


def sample_of(dataset: Dataset, item: Item) -> Sample:
    """The writer's view of an image: its boxes as inclusive integer extents inside the image."""
    shapes = []
    for (x1, y1, x2, y2), class_id in zip(item.boxes, item.class_ids, strict=True):
        left, top = max(0, math.floor(x1)), max(0, math.floor(y1))
        right, bottom = min(item.width - 1, math.ceil(x2) - 1), min(item.height - 1, math.ceil(y2) - 1)
        if right < left or bottom < top:
            continue  # nothing of the box inside the image
        polygon = np.array([(left, top), (right, top), (right, bottom), (left, bottom)], np.int32)
        shapes.append(Shape(int(class_id), polygon, (left, top, right, bottom), 0.0,
                            (right - left + 1) * (bottom - top + 1)))
    return Sample(dataset.digest(item.name), item.width, item.height, shapes)


def link_assets(dataset: Dataset, names: Sequence[str], in_dir: Path) -> None:
    for name in names:
        target = asset_path(in_dir, dataset.digest(name))
        if target.exists():
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.link(dataset.image_file(name), target)
        except OSError:
            shutil.copyfile(dataset.image_file(name), target)


def training_in(dataset: Dataset, train: Sequence[str], val: Sequence[str], in_dir: Path,
                config: Mapping[str, Any], models: dict[str, Path] | None = None) -> Path:
    """A training task on the labelled images ``train`` (validated on ``val``), starting from the
    model in ``models`` (stage name: folder) when given, as ``pretrained_model_params``."""
    link_assets(dataset, [*train, *val], in_dir)
    samples = [sample_of(dataset, dataset.pool[n]) for n in train]
    val_samples = [sample_of(dataset, dataset.pool[n]) for n in val]
    return write_task(in_dir, task="training", samples=samples, val_samples=val_samples,
                      class_names=dataset.class_names, object_type="detection", fmt="ark",
                      task_id=_task_id(in_dir), extra_config=dict(config), models=models)


def predict_in(dataset: Dataset, names: Sequence[str], in_dir: Path, task: str, model_dir: Path,
               config: Mapping[str, Any]) -> Path:
    """A mining or infer task on ``names`` (pool or test images) with the model in ``model_dir``."""
    link_assets(dataset, names, in_dir)
    items = {**dataset.pool, **dataset.test}
    samples = [sample_of(dataset, items[n]) for n in names]
    return write_task(in_dir, task=task, samples=samples, class_names=dataset.class_names,
                      object_type="detection", fmt="ark", task_id=_task_id(in_dir), extra_config=dict(config),
                      models={model_dir.name: model_dir})


def _task_id(in_dir: Path) -> str:
    """YMIR's task ids are 32 characters; ours are derived from the step's folder."""
    return "t" + hashlib.sha1(str(in_dir.resolve()).encode()).hexdigest()[:31]
