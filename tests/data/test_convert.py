import json

import numpy as np
import pytest
import yaml
from PIL import Image
from pycocotools import mask as mask_utils
from pycocotools.coco import COCO

from ymir_base.data.convert import write_coco_json, write_yolo_dataset
from ymir_base.data.types import Dataset, ImageRecord, ObjectAnnotation

CLASSES = ["a", "b", "c"]


def _record(tmp_path, name, objects, size=(200, 100)):
    path = tmp_path / "assets" / name
    path.parent.mkdir(exist_ok=True)
    Image.new("RGB", size).save(path)
    return ImageRecord(asset=f"/in/assets/{name}", path=path, width=size[0], height=size[1], objects=objects)


@pytest.fixture
def dataset(tmp_path):
    train = [_record(tmp_path, "t1.jpg", [ObjectAnnotation(1, (20, 10, 60, 50)),
                                          ObjectAnnotation(0, (0, 0, 200, 100), angle=0.3)]),
             _record(tmp_path, "t2.png", [])]
    val = [_record(tmp_path, "v1.jpg", [ObjectAnnotation(2, (150, 25, 200, 50))], size=(200, 50))]
    return Dataset(class_names=CLASSES, train=train, val=val)


def test_yolo_layout_labels_and_data_yaml(tmp_path, dataset):
    out = tmp_path / "yolo"
    data_yaml = write_yolo_dataset(dataset, out)
    assert (out / "labels/train/t1.txt").read_text() == (
        "1 0.200000 0.300000 0.200000 0.400000\n"   # cx 40/200, cy 30/100, w 40/200, h 40/100
        "0 0.500000 0.500000 1.000000 1.000000\n")
    assert (out / "labels/train/t2.txt").read_text() == ""
    assert (out / "labels/val/v1.txt").read_text() == "2 0.875000 0.750000 0.250000 0.500000\n"
    link = out / "images/train/t1.jpg"
    assert link.is_symlink() and link.resolve() == dataset.train[0].path.resolve()
    assert sorted(p.name for p in (out / "images/train").iterdir()) == ["t1.jpg", "t2.png"]
    assert yaml.safe_load(data_yaml.read_text()) == {
        "train": str(out.absolute() / "images/train"), "val": str(out.absolute() / "images/val"),
        "nc": 3, "names": CLASSES}


def test_yolo_rewrite_removes_stale_files(tmp_path, dataset):
    out = tmp_path / "yolo"
    write_yolo_dataset(dataset, out)
    dataset.train.pop()
    write_yolo_dataset(dataset, out)
    assert sorted(p.name for p in (out / "images/train").iterdir()) == ["t1.jpg"]
    assert sorted(p.name for p in (out / "labels/train").iterdir()) == ["t1.txt"]


def test_coco_json_round_trip(tmp_path):
    mask = np.zeros((100, 200), np.uint8)
    mask[10:20, 30:35] = 1
    rle = mask_utils.encode(np.asfortranarray(mask))
    rle = {"size": [100, 200], "counts": rle["counts"].decode("ascii")}
    square = [[0, 0, 10, 0, 10, 10, 0, 10]]
    listed = {"size": [100, 200], "counts": [5, 3, 19992]}  # uncompressed RLE, 3 pixels
    records = [
        _record(tmp_path, "x.jpg", [ObjectAnnotation(2, (20, 10, 60, 50)),
                                    ObjectAnnotation(0, (0, 0, 10, 10), polygons=square)]),
        _record(tmp_path, "y.jpg", [ObjectAnnotation(1, (30, 10, 35, 20), rle=rle, iscrowd=1),
                                    ObjectAnnotation(1, (0, 0, 2, 3), rle=listed)]),
        _record(tmp_path, "z.jpg", []),
    ]
    out = tmp_path / "sub" / "coco.json"
    write_coco_json(records, CLASSES, out)
    assert [p.name for p in out.parent.iterdir()] == ["coco.json"]  # no temp file left

    coco = COCO(str(out))
    assert sorted(coco.getCatIds()) == [0, 1, 2]
    assert [coco.loadCats(i)[0]["name"] for i in (0, 1, 2)] == CLASSES
    assert [coco.imgs[i]["file_name"] for i in (1, 2, 3)] == [str(r.path.absolute()) for r in records]
    assert coco.imgs[1]["width"] == 200 and coco.imgs[1]["height"] == 100
    box, poly, masked, counted = (coco.anns[i] for i in (1, 2, 3, 4))
    assert (box["bbox"], box["area"], box["segmentation"]) == ([20, 10, 40, 40], 1600, [])
    assert box["category_id"] == 2 and box["image_id"] == 1
    assert masked["image_id"] == 2 and masked["iscrowd"] == 1
    assert poly["segmentation"] == square and 100 <= poly["area"] <= 121
    assert masked["area"] == 50 and coco.annToMask(masked).sum() == 50
    assert counted["segmentation"] == listed and counted["area"] == 3 and coco.annToMask(counted).sum() == 3
    assert json.loads(out.read_text())["annotations"][2]["segmentation"] == rle


def test_coco_json_is_world_readable(tmp_path):
    import stat

    out = tmp_path / "coco.json"
    write_coco_json([], CLASSES, out)
    assert stat.S_IMODE(out.stat().st_mode) == 0o644  # as every other file we write atomically


def test_link_or_copy_atomic_symlinks_when_asked(tmp_path):
    from ymir_base.results.atomic import link_or_copy_atomic

    source = tmp_path / "a.jpg"
    source.write_bytes(b"img")
    link_or_copy_atomic(source, tmp_path / "sym.jpg", symlink=True)
    link_or_copy_atomic(source, tmp_path / "hard.jpg")
    assert (tmp_path / "sym.jpg").is_symlink() and not (tmp_path / "hard.jpg").is_symlink()
    assert (tmp_path / "hard.jpg").stat().st_ino == source.stat().st_ino
    link_or_copy_atomic(tmp_path / "hard.jpg", tmp_path / "sym.jpg", symlink=True)  # replaced in place
    assert (tmp_path / "sym.jpg").resolve() == tmp_path / "hard.jpg"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.jpg", "hard.jpg", "sym.jpg"]
