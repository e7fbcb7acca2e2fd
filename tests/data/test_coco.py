import json
import logging

import numpy as np
import pytest
from PIL import Image
from pycocotools import mask as mask_utils

from ymir_base.data import coco
from ymir_base.data.coco import coco_objects
from ymir_base.data.reader import load_split
from ymir_base.errors import DatasetError
from ymir_base.protocol.paths import PathMapper

CLASSES = ["dog", "cat"]


def _mask_rle():
    mask = np.zeros((4, 6), np.uint8)
    mask[1:3, 2:5] = 1
    rle = mask_utils.encode(np.asfortranarray(mask))
    return {"size": [4, 6], "counts": rle["counts"].decode("ascii")}


def _dataset():
    return {
        "images": [{"id": 1, "file_name": "a.jpg", "width": 6, "height": 4},
                   {"id": 2, "file_name": "sub/b.jpg", "width": 6, "height": 4},
                   {"id": 3, "file_name": "empty.jpg", "width": 6, "height": 4}],
        # ids are not indexes into class_names: 5 -> cat (1), 2 -> dog (0), 9 -> bird (dropped)
        "categories": [{"id": 5, "name": "cat"}, {"id": 2, "name": "dog"}, {"id": 9, "name": "bird"}],
        "annotations": [
            {"id": 1, "image_id": 1, "category_id": 5, "bbox": [1, 2, 3, 1], "iscrowd": 0,
             "segmentation": [[1, 2, 4, 2, 4, 3]]},
            {"id": 2, "image_id": 1, "category_id": 2, "bbox": [2, 1, 3, 2], "iscrowd": 1,
             "segmentation": _mask_rle()},
            {"id": 3, "image_id": 2, "category_id": 2, "bbox": [0.5, 0, 2, 2],
             "segmentation": {"size": [4, 6], "counts": [5, 2, 17]}},
            {"id": 4, "image_id": 2, "category_id": 5, "bbox": [0, 0, 1, 1], "segmentation": {}},
            {"id": 5, "image_id": 2, "category_id": 9, "bbox": [0, 0, 1, 1], "segmentation": []},
        ],
    }


def _write(tmp_path, data, name="coco-annotations.json"):
    path = tmp_path / name
    path.write_text(json.dumps(data))
    return path


def test_polygon_and_compressed_rle(tmp_path):
    path = _write(tmp_path, _dataset())
    poly, rle = coco_objects(path, CLASSES, "a.jpg", segmentation=True)
    assert (poly.class_id, poly.bbox, poly.polygons, poly.rle, poly.iscrowd) == (
        1, (1, 2, 4, 3), [[1, 2, 4, 2, 4, 3]], None, 0)
    assert (rle.class_id, rle.bbox, rle.polygons, rle.iscrowd) == (0, (2, 1, 5, 3), None, 1)
    assert rle.rle == _mask_rle()
    assert int(mask_utils.area(rle.rle)) == 6


def test_uncompressed_rle_empty_segmentation_and_dropped_class(tmp_path, caplog):
    path = _write(tmp_path, _dataset())
    with caplog.at_level(logging.WARNING):
        listed, plain = coco_objects(path, CLASSES, "b.jpg", segmentation=False)  # coco:raw: boxes
    assert listed.rle == {"size": [4, 6], "counts": [5, 2, 17]} and listed.bbox == (0.5, 0, 2.5, 2)
    assert (plain.class_id, plain.polygons, plain.rle) == (1, None, None)
    assert "dropped 1 object" in caplog.text and "bird" in caplog.text
    assert coco_objects(path, CLASSES, "empty.jpg", segmentation=False) == []


def test_json_is_parsed_once_per_index_and_objects_are_not_copied(tmp_path, monkeypatch):
    path = _write(tmp_path, _dataset())
    parses = []
    load = coco._load
    monkeypatch.setattr(coco, "_load", lambda *args: parses.append(args[0]) or load(*args))
    files = coco.CocoFiles(CLASSES, segmentation=True)
    first = files.objects(path, "a.jpg")
    again = files.objects(path, "a.jpg")  # the index lists a.jpg twice
    files.objects(path, "b.jpg")
    assert parses == [path]
    assert [o.bbox for o in again] == [o.bbox for o in first] and again[0] is not first[0]
    again[0].bbox = (0, 0, 0, 0)  # a record's objects are its own
    assert first[0].bbox == (1, 2, 4, 3)
    with pytest.raises(DatasetError, match=r"no entry in 'images' has file_name 'zzz\.jpg'"):
        files.objects(path, "zzz.jpg")
    coco.CocoFiles(CLASSES, segmentation=True).objects(path, "a.jpg")  # another index parses again
    assert parses == [path, path]


def test_image_missing_from_json(tmp_path):
    path = _write(tmp_path, _dataset())
    with pytest.raises(DatasetError, match=r"no entry in 'images' has file_name 'zzz\.jpg'"):
        coco_objects(path, CLASSES, "zzz.jpg", segmentation=True)


@pytest.mark.parametrize(("change", "message"), [
    (lambda d: d["annotations"][0].update(category_id=7), r"annotation id 1: category_id 7 is not in"),
    (lambda d: d["annotations"][1].update(image_id=42), r"annotation id 2: image_id 42 is not in"),
    (lambda d: d["annotations"][0].update(bbox=[1, 2, 3]), r"bbox must be \[x, y, w, h\]"),
    (lambda d: d["annotations"][1]["segmentation"].update(size=[5, 6]), r"RLE size \[5, 6\] differs"),
    (lambda d: d["annotations"][0].update(segmentation=[[1, 2, 3, 4, 5, 6, 7]]), r"id 1: .* odd number"),
    (lambda d: d["annotations"][0].pop("image_id"), r"malformed COCO json \(KeyError"),
    (lambda d: d.pop("images"), r"not a COCO json"),
])
def test_bad_json_names_the_file(tmp_path, change, message):
    data = _dataset()
    change(data)
    path = _write(tmp_path, data)
    with pytest.raises(DatasetError, match=message) as err:
        coco_objects(path, CLASSES, "a.jpg", segmentation=True)
    assert str(path) in str(err.value)


def test_invalid_json(tmp_path):
    path = tmp_path / "broken.json"
    path.write_text("{")
    with pytest.raises(DatasetError, match=r"cannot parse annotation file .*broken\.json"):
        coco_objects(path, CLASSES, "a.jpg", segmentation=True)


def _degenerate_dataset():
    """Segmentations YMIR imports and exports: polygons of fewer than 3 points, empty masks."""
    return {
        "images": [{"id": 1, "file_name": "a.jpg", "width": 6, "height": 4}],
        "categories": [{"id": 0, "name": "dog"}, {"id": 1, "name": "cat"}],
        "annotations": [
            {"id": 11, "image_id": 1, "category_id": 0, "bbox": [1, 1, 3, 2],
             "segmentation": [[1, 1, 4, 1, 4, 3], [2, 2, 3, 3]]},          # one good, one 2-point polygon
            {"id": 12, "image_id": 1, "category_id": 1, "bbox": [0, 0, 2, 2],
             "segmentation": [[0, 0, 2, 2]]},                              # nothing usable
            {"id": 13, "image_id": 1, "category_id": 1, "bbox": [2, 0, 2, 2], "segmentation": {}},
            {"id": 14, "image_id": 1, "category_id": 0, "bbox": [3, 1, 2, 2], "segmentation": []},
            {"id": 15, "image_id": 1, "category_id": 0, "bbox": [0, 2, 2, 2], "segmentation": [[]]},
            {"id": 16, "image_id": 1, "category_id": 0, "bbox": [1, 2, 3, 1], "segmentation": _mask_rle()},
        ],
    }


def test_seg_coco_skips_short_polygons_and_objects_without_a_mask(tmp_path, caplog):
    path = _write(tmp_path, _degenerate_dataset())
    with caplog.at_level(logging.WARNING):
        objs = coco_objects(path, CLASSES, "a.jpg", segmentation=True)
    assert [(o.bbox, o.polygons, o.rle) for o in objs] == [
        ((1, 1, 4, 3), [[1, 1, 4, 1, 4, 3]], None),
        ((1, 2, 4, 3), None, _mask_rle()),
    ]
    assert str(path) in caplog.text
    assert "fewer than 6 coordinates in 3 annotation(s) (annotation id 11, 12, 15)" in caplog.text
    assert "dropped 4 seg-coco object(s) without a usable mask (annotation id 12, 13, 14, 15)" in caplog.text


def test_plain_coco_keeps_every_box(tmp_path, caplog):
    """coco:raw detection data: {} and [] are plain boxes; a degenerate polygon leaves a plain box."""
    path = _write(tmp_path, _degenerate_dataset())
    with caplog.at_level(logging.WARNING):
        objs = coco_objects(path, CLASSES, "a.jpg", segmentation=False)
    assert [(o.class_id, o.bbox, o.polygons) for o in objs] == [
        (0, (1, 1, 4, 3), [[1, 1, 4, 1, 4, 3]]), (1, (0, 0, 2, 2), None), (1, (2, 0, 4, 2), None),
        (0, (3, 1, 5, 3), None), (0, (0, 2, 2, 4), None), (0, (1, 2, 4, 3), None)]
    assert objs[-1].rle == _mask_rle()
    # empty segmentations (ids 13, 14) are normal here: no word about them
    assert [r.getMessage().replace(str(path), "FILE") for r in caplog.records] == [
        "annotation FILE: skipped polygons with fewer than 6 coordinates in 3 annotation(s) "
        "(annotation id 11, 12, 15)",
        "annotation FILE: 2 object(s) have no polygon left and are kept as plain boxes (annotation id 12, 15)"]


@pytest.mark.parametrize(("export_format", "ids", "kept"), [
    ("coco:raw", None, 6), ("seg-coco:raw", None, 2), (None, None, 6),
    ("coco:raw", {13, 14, 16}, 3), ("seg-coco:raw", {13, 14, 16}, 1),  # empty segmentations only
])
def test_reader_tells_coco_from_seg_coco(tmp_path, export_format, ids, kept):
    """The reader passes the export format down: plain coco keeps maskless boxes, seg-coco does not;
    without export_format a .json is read as plain coco."""
    Image.new("RGB", (6, 4)).save(tmp_path / "a.jpg")
    data = _degenerate_dataset()
    data["annotations"] = [a for a in data["annotations"] if ids is None or a["id"] in ids]
    _write(tmp_path, data)
    (tmp_path / "train-index.tsv").write_text("/in/a.jpg\t/in/coco-annotations.json\n")
    (record,) = load_split("/in/train-index.tsv", PathMapper(in_dir=tmp_path), CLASSES, export_format)
    assert len(record.objects) == kept
