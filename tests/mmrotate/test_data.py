"""YMIR rotated ground truth -> our annotation file -> mmrotate's own dataset class and the model
config's validation pipeline (no augmentation) -> the infer writer: the corners survive."""

from __future__ import annotations

import logging

import numpy as np
import pytest

from ymir_base.data.reader import load_split
from ymir_base.geometry import box_to_rotated, rotated_corners
from ymir_base.prediction import Prediction, rotated_box
from ymir_base.protocol.paths import PathMapper
from ymir_base.sample.generator import generate
from ymir_base.tasks import ROTATED
from ymir_mmrotate.backend import MODELS, MmrotateBackend, config_dir
from ymir_openmmlab import config as mmcfg

CLASSES = ["circle", "square", "triangle"]


def _records(tmp_path, fmt: str):
    in_dir = generate(tmp_path / "in", task="training", object_type="rotated", fmt=fmt, images=8)
    mapper = PathMapper(in_dir, tmp_path / "out")
    return load_split("/in/train-index.tsv", mapper, CLASSES, f"{fmt}:raw") + \
        load_split("/in/val-index.tsv", mapper, CLASSES, f"{fmt}:raw")


def _mmrotate_dataset(tmp_path, records):
    from mmengine.registry import init_default_scope
    from mmrotate.registry import DATASETS

    backend = MmrotateBackend()
    ann = tmp_path / "val.json"
    backend.write_annotations(records, CLASSES, ann)
    cfg = mmcfg.load_config(config_dir() / MODELS["rotated_rtmdet_tiny"])
    backend.configure_data(cfg, ann, ann, CLASSES, "bbox")
    init_default_scope("mmrotate")
    return DATASETS.build(cfg.val_dataloader.dataset)


def _corners_agree(expected: np.ndarray, got: np.ndarray, tolerance: float = 1.0) -> bool:
    """The same four points, in any order (mmrotate re-derives the box with its own angle range)."""
    distances = np.linalg.norm(expected[:, None, :] - got[None, :, :], axis=-1)
    return bool((distances.min(axis=1) <= tolerance).all() and (distances.min(axis=0) <= tolerance).all())


@pytest.mark.parametrize("fmt", ["ark", "voc"])
def test_rotated_ground_truth_round_trips_through_mmrotate(tmp_path, fmt):
    records = _records(tmp_path, fmt)
    dataset = _mmrotate_dataset(tmp_path, records)
    assert len(dataset) == len(records)
    writer = ROTATED.writer
    checked = turned = 0
    for index, record in enumerate(records):
        sample = dataset[index]["data_samples"]
        assert sample.img_path == str(record.path)
        rboxes = sample.gt_instances.bboxes.tensor.double().numpy()
        labels = sample.gt_instances.labels.numpy()
        assert labels.tolist() == [obj.class_id for obj in record.objects]
        pred = Prediction.from_rotated((record.height, record.width), rboxes, np.ones(len(rboxes)), labels)
        written = writer.entry(pred, CLASSES)["boxes"]  # equal scores: the dataset's order is kept
        assert len(written) == len(record.objects)
        for obj, out in zip(record.objects, written, strict=True):
            box = out["box"]
            back = box_to_rotated((box["x"], box["y"], box["x"] + box["w"], box["y"] + box["h"]), box["rotate_angle"])
            expected = rotated_corners(rotated_box(obj))
            assert out["class_name"] == CLASSES[obj.class_id]
            assert _corners_agree(expected, rotated_corners(back)), (expected, rotated_corners(back))
            checked += 1
            turned += obj.angle != 0
    assert checked > 10 and turned > 3


def test_rotated_boxes_leaving_the_image_are_dropped_with_a_warning(tmp_path, caplog):
    in_dir = generate(tmp_path / "in", task="training", object_type="rotated", fmt="ark", images=4)
    first = (in_dir / "train-index.tsv").read_text().split()[1]
    ark = in_dir / first.removeprefix("/in/")
    before = len(ark.read_text().splitlines())
    # a 60 x 10 bar whose extent fits in the image but whose turned corners do not
    with ark.open("a") as f:
        f.write("1, 0, 0, 59, 9, -1.0, 0.7\n")
    with caplog.at_level(logging.WARNING):
        (record, *_) = load_split("/in/train-index.tsv", PathMapper(in_dir, tmp_path / "out"), CLASSES, "ark:raw")
    assert len(record.objects) == before
    assert "rotated corners lie outside" in caplog.text
    dataset = _mmrotate_dataset(tmp_path, [record])
    assert len(dataset[0]["data_samples"].gt_instances) == before
