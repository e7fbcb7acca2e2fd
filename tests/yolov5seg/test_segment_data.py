"""seg-coco instance objects -> YOLOv5-seg polygon label files."""

from __future__ import annotations

import logging

import cv2
import numpy as np
import pytest
import yaml
from PIL import Image
from pycocotools import mask as mask_utils

from ymir_base.data.reader import load_dataset
from ymir_base.data.types import Dataset, ImageRecord, ObjectAnnotation
from ymir_base.errors import DatasetError, ErrorCode
from ymir_base.protocol.paths import PathMapper
from ymir_base.sample.generator import generate
from ymir_yolov5lib.segment_data import rle_counts, seg_labels, write_seg_dataset

W, H = 80, 60
ANN = "/in/annotations/coco-annotations.json"


def record(*objects: ObjectAnnotation, width: int = W, height: int = H) -> ImageRecord:
    return ImageRecord("/in/assets/ab/abc.jpg", None, width, height, list(objects), annotation=ANN)


def rle_of(mask: np.ndarray) -> dict:
    rle = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
    return {"size": [int(v) for v in rle["size"]], "counts": rle["counts"].decode("ascii")}


def raster(line: str, width: int = W, height: int = H) -> np.ndarray:
    """The pixels yolov5 paints for one label line at the image's own size (cv2.fillPoly)."""
    values = np.array(line.split()[1:], np.float64).reshape(-1, 2) * (width, height)
    mask = np.zeros((height, width), np.uint8)
    cv2.fillPoly(mask, [values.round().astype(np.int32)], 1)
    return mask


def test_one_polygon_is_one_normalised_line():
    obj = ObjectAnnotation(2, (8, 6, 40, 30), polygons=[[8, 6, 40, 6, 40, 30, 8, 30]], ann_id="7")
    assert seg_labels(record(obj), 3) == "2 0.100000 0.100000 0.500000 0.100000 0.500000 0.500000 0.100000 0.500000\n"


def test_coordinates_outside_the_image_are_clipped():
    obj = ObjectAnnotation(0, (0, 0, 80, 60), polygons=[[-5, -5, 90, 0, 90, 70]])
    values = [float(v) for v in seg_labels(record(obj), 1).split()[1:]]
    assert values == [0.0, 0.0, 1.0, 0.0, 1.0, 1.0]


def test_polygons_of_one_object_join_into_one_instance():
    left, right = [5, 5, 20, 5, 20, 20, 5, 20], [50, 30, 70, 30, 70, 50, 50, 50]
    obj = ObjectAnnotation(1, (5, 5, 70, 50), polygons=[left, right])
    text = seg_labels(record(obj), 2)
    assert text.count("\n") == 1 and text.startswith("1 ")
    painted = raster(text)
    parts = np.zeros((H, W), np.uint8)
    for p in (left, right):
        cv2.fillPoly(parts, [np.array(p, np.int32).reshape(-1, 2)], 1)
    assert (painted >= parts).all()  # both parts, whole
    cut = painted.astype(bool) & ~parts.astype(bool)
    assert 0 < cut.sum() <= 40  # only the one-pixel cut between the closest corners (20,20)-(50,30)
    ys, xs = np.nonzero(painted)
    assert (xs.min(), ys.min(), xs.max(), ys.max()) == (5, 5, 70, 50)  # one box over both parts


def test_rle_with_parts_and_a_hole_keeps_the_hole():
    mask = np.zeros((H, W), np.uint8)
    cv2.circle(mask, (20, 30), 14, 1, -1)
    cv2.circle(mask, (20, 30), 5, 0, -1)  # hole
    mask[10:50, 50:72] = 1
    text = seg_labels(record(ObjectAnnotation(0, (6, 10, 72, 50), rle=rle_of(mask), ann_id="3")), 1)
    assert text.count("\n") == 1
    painted = raster(text)
    assert not (mask.astype(bool) & ~painted.astype(bool)).any()  # every mask pixel is painted
    assert painted[30, 20] == 0  # the hole stays a hole
    assert (painted.astype(bool) & ~mask.astype(bool)).sum() <= 20  # the cut between the parts


def test_degenerate_parts_are_dropped_with_one_warning_naming_file_and_ids(tmp_path, caplog):
    line = [10, 10, 20, 20, 30, 30]  # collinear: no area
    good = [40, 10, 60, 10, 60, 30]
    dataset = Dataset(["a"], [_image(tmp_path, "t.jpg", [
        ObjectAnnotation(0, (10, 10, 60, 30), polygons=[line, good], ann_id="11"),
        ObjectAnnotation(0, (10, 10, 30, 30), polygons=[line], ann_id="12")])],
        [_image(tmp_path, "v.jpg", [])])
    with caplog.at_level(logging.WARNING):
        write_seg_dataset(dataset, tmp_path / "yolo")
    labels = (tmp_path / "yolo/labels/train/t.txt").read_text().splitlines()
    assert len(labels) == 1 and len(labels[0].split()) == 7  # object 11 keeps its triangle, 12 is gone
    warnings = [r.getMessage() for r in caplog.records if "degenerate" in r.getMessage()]
    assert len(warnings) == 1 and ANN in warnings[0] and "annotation id 11, 12" in warnings[0]


def _image(tmp_path, name: str, objects: list[ObjectAnnotation]) -> ImageRecord:
    path = tmp_path / name
    Image.new("RGB", (W, H)).save(path)
    return ImageRecord(f"/in/assets/{name}", path, W, H, objects, annotation=ANN)


@pytest.mark.parametrize(("obj", "message"), [
    (ObjectAnnotation(0, (0, 0, 5, 5), rle=rle_of(np.ones((H + 1, W), np.uint8)), ann_id="4"),
     r"annotation id 4: RLE size \[61, 80\] differs from the image size \[h, w\] \[60, 80\]"),
    (ObjectAnnotation(0, (0, 0, 5, 5), ann_id="5"), "annotation id 5: the object has no mask"),
    (ObjectAnnotation(3, (0, 0, 5, 5), polygons=[[0, 0, 5, 0, 5, 5]], ann_id="6"),
     "annotation id 6: class id 3 is outside class_names"),
    (ObjectAnnotation(0, (0, 0, 5, 5), rle={"size": [H, W], "counts": [10, 20]}, ann_id="8"),
     "annotation id 8: RLE counts cover 30 pixels, not the image's 60 x 80"),
    (ObjectAnnotation(0, (0, 0, 5, 5), rle={"size": [H, W], "counts": "0a~"}, ann_id="9"),
     "annotation id 9: RLE counts string has the invalid character '~'"),
])
def test_bad_objects_are_dataset_errors_naming_file_image_and_id(obj, message):
    with pytest.raises(DatasetError, match=message) as info:
        seg_labels(record(obj), 3)
    assert info.value.code == ErrorCode.DATASET and f"annotation {ANN} image abc.jpg" in str(info.value)


def test_rle_counts_decode_like_pycocotools():
    rng = np.random.default_rng(0)
    for _ in range(30):
        h, w = (int(v) for v in rng.integers(1, 120, 2))
        mask = (rng.random((h, w)) < rng.random()).astype(np.uint8)
        counts = rle_counts(rle_of(mask)["counts"], "x")
        assert sum(counts) == h * w
        assert (mask_utils.decode(mask_utils.frPyObjects({"size": [h, w], "counts": counts}, h, w)) == mask).all()


def test_sample_data_converts_to_labels_yolov5_reads(tmp_path):
    """The instance sample through the real reader, converter and yolov5's own label checker."""
    from ymir_yolov5lib import runtime

    runtime.prepare()
    from yolov5.utils.dataloaders import verify_image_label

    in_dir = generate(tmp_path / "in", task="training", object_type="instance", fmt="coco", images=8)
    dataset = load_dataset("/in/train-index.tsv", "/in/val-index.tsv", PathMapper(in_dir, tmp_path / "out"),
                           ["circle", "square", "triangle"], "seg-coco:raw")
    data_yaml = write_seg_dataset(dataset, tmp_path / "yolo")
    assert yaml.safe_load(data_yaml.read_text())["nc"] == 3
    objects = 0
    for split, records in (("train", dataset.train), ("val", dataset.val)):
        for rec in records:
            label = tmp_path / "yolo/labels" / split / f"{rec.path.stem}.txt"
            image = tmp_path / "yolo/images" / split / rec.name
            checked = verify_image_label((str(image), str(label), ""))
            boxes, segments, corrupt, msg = checked[1], checked[3], checked[7], checked[8]
            assert corrupt == 0 and msg == "" and len(segments) == len(rec.objects) == len(boxes)
            for obj, segment, line in zip(rec.objects, segments, label.read_text().splitlines(), strict=True):
                truth = np.zeros((rec.height, rec.width), np.uint8)
                cv2.fillPoly(truth, [np.array(obj.polygons[0], np.int32).reshape(-1, 2)], 1)
                painted = raster(line, rec.width, rec.height)
                assert (painted == truth).mean() > 0.999 and len(segment) >= 3
                objects += 1
    assert objects > 10
