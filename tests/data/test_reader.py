import logging
import re

import pytest
from PIL import Image

from ymir_base.data.reader import load_dataset, load_split
from ymir_base.errors import ConfigError, DatasetError, ImageFormatError
from ymir_base.protocol.paths import PathMapper
from ymir_base.sample.generator import generate

CLASSES = ["a", "b"]


def _load_generated(tmp_path, object_type, fmt, export_format):
    folder = generate(tmp_path / f"{object_type}-{fmt}", task="training", object_type=object_type, fmt=fmt,
                      images=6)
    return folder, load_dataset("/in/train-index.tsv", "/in/val-index.tsv", PathMapper(in_dir=folder),
                                ["circle", "square", "triangle"], export_format)


def _boxes(ds):
    return [[(o.class_id, o.bbox, o.angle) for o in r.objects] for r in ds.train + ds.val]


def test_generated_folders_read_back_the_same_in_every_format(tmp_path):
    """The generator draws the same shapes for the same seed whatever the format."""
    folder, ds = _load_generated(tmp_path, "detection", "ark", "ark:raw")
    assert (len(ds.train), len(ds.val)) == (4, 2)
    first = ds.train[0]
    assert first.asset.startswith("/in/assets/") and first.path == folder / first.asset.removeprefix("/in/")
    assert (first.width, first.height, first.line) == (160, 128, 1)
    assert (ds.train[1].width, ds.train[1].height, ds.train[1].objects) == (128, 160, [])  # negative sample
    expected = _boxes(ds)
    assert sum(map(len, expected)) >= 5
    others = [("detection", "voc", "det-voc:raw"), ("detection", "coco", "coco:raw"),
              ("instance", "coco", "seg-coco:raw"), ("semantic", "coco", "seg-coco:raw")]
    for object_type, fmt, export_format in others:
        _, other = _load_generated(tmp_path, object_type, fmt, export_format)
        assert _boxes(other) == expected, (object_type, fmt)
        assert [r.asset for r in other.train] == [r.asset for r in ds.train]
    _, instance = _load_generated(tmp_path, "instance", "coco", "seg-coco:raw")
    assert all(o.polygons and o.rle is None for r in instance.train for o in r.objects)


def test_rotated_angles_survive_ark_and_voc(tmp_path):
    _, ark = _load_generated(tmp_path, "rotated", "ark", "det-ark:raw")
    _, voc = _load_generated(tmp_path, "rotated", "voc", "voc:raw")
    assert _boxes(ark) == _boxes(voc)
    assert any(o.angle != 0 for r in ark.train + ark.val for o in r.objects)


def test_missing_export_format_uses_the_annotation_suffix(tmp_path):
    folder = generate(tmp_path / "in", task="training", object_type="detection", fmt="voc", images=4)
    records = load_split("/in/train-index.tsv", PathMapper(in_dir=folder), ["circle", "square", "triangle"],
                         None)
    assert len(records) == 2 and records[0].objects


def _folder(tmp_path, ark_lines, size=(40, 30), val_lines=None):
    """A hand-made /in with one PNG image and one ark file in train (and val) index."""
    Image.new("RGB", size).save(tmp_path / "img.png")
    (tmp_path / "img.txt").write_text(ark_lines)
    line = "/in/img.png\t/in/img.txt\n"
    (tmp_path / "train-index.tsv").write_text(line)
    (tmp_path / "val-index.tsv").write_text(line if val_lines is None else val_lines)
    return PathMapper(in_dir=tmp_path)


def _load(mapper, export_format="ark:raw", **kwargs):
    return load_split("/in/train-index.tsv", mapper, CLASSES, export_format, **kwargs)


def test_one_pixel_overhang_is_clipped(tmp_path):
    (record,) = _load(_folder(tmp_path, "0, 0, 0, 40, 29\n1, -1, 0, 9, 9\n"))
    assert [o.bbox for o in record.objects] == [(0, 0, 40, 30), (0, 0, 10, 10)]


def test_overhang_within_one_percent_is_clipped_with_a_warning(tmp_path, caplog):
    mapper = _folder(tmp_path, "0, 290, 0, 302, 9\n", size=(300, 30))  # x2 = 303: 3 px = 1 % of 300
    with caplog.at_level(logging.WARNING):
        (record,) = _load(mapper)
    assert record.objects[0].bbox == (290, 0, 300, 10)
    assert "clipped 1 box" in caplog.text and "/in/img.txt" in caplog.text


@pytest.mark.parametrize(("line", "axis"), [("0, 290, 0, 303, 9", "x"), ("0, 0, 0, 9, 31", "y")])
def test_box_far_outside_the_image_is_an_error(tmp_path, line, axis):
    mapper = _folder(tmp_path, f"1, 1, 1, 2, 2\n{line}\n", size=(300, 30))
    with pytest.raises(DatasetError, match=rf"annotation /in/img.txt object 2: .* outside the 300x30 image "
                                           rf"along {axis}"):
        _load(mapper)


def test_zero_area_boxes_are_dropped_with_a_warning(tmp_path, caplog):
    mapper = _folder(tmp_path, "0, 5, 5, 4, 10\n1, 5, 5, 10, 3\n1, 1, 1, 3, 3\n0, 40, 0, 40, 5\n")
    with caplog.at_level(logging.WARNING):
        (record,) = _load(mapper)
    assert [o.bbox for o in record.objects] == [(1, 1, 4, 4)]
    assert "dropped 3 zero-area box(es)" in caplog.text and "/in/img.txt" in caplog.text


def test_without_image_check_sizes_are_unknown(tmp_path):
    (record,) = _load(_folder(tmp_path, "0, 0, 0, 99, 99\n"), check_images=False)
    assert (record.width, record.height) == (0, 0) and record.objects[0].bbox == (0, 0, 100, 100)


def test_empty_train_index(tmp_path):
    mapper = _folder(tmp_path, "")
    (tmp_path / "train-index.tsv").write_text("")
    with pytest.raises(DatasetError, match=r"training index /in/train-index.tsv is empty"):
        load_dataset("/in/train-index.tsv", "/in/val-index.tsv", mapper, CLASSES, "ark:raw")


def test_empty_val_index(tmp_path):
    mapper = _folder(tmp_path, "0, 1, 1, 5, 5\n", val_lines="\n")
    with pytest.raises(DatasetError, match=r"validation index /in/val-index.tsv is empty"):
        load_dataset("/in/train-index.tsv", "/in/val-index.tsv", mapper, CLASSES, "ark:raw")


@pytest.mark.parametrize("export_format", ["xyz:raw", "ark:lmdb", "ls_json:raw"])
def test_unsupported_export_format(tmp_path, export_format):
    with pytest.raises(ConfigError, match=re.escape(f"export_format '{export_format}' is not supported; "
                                                    "use one of ark:raw, det-ark:raw")):
        _load(_folder(tmp_path, ""), export_format)


def test_empty_class_names(tmp_path):
    with pytest.raises(ConfigError, match="class_names is empty"):
        load_split("/in/train-index.tsv", _folder(tmp_path, ""), [], "ark:raw")


def test_annotation_suffix_contradicting_export_format(tmp_path):
    with pytest.raises(DatasetError, match=r"line 1: annotation /in/img.txt looks like ark but export_format "
                                           r"selects voc"):
        _load(_folder(tmp_path, ""), "voc:raw")


def test_missing_and_unreadable_images(tmp_path):
    mapper = _folder(tmp_path, "")
    (tmp_path / "train-index.tsv").write_text("/in/img.png\t/in/img.txt\n/in/gone.jpg\t/in/img.txt\n")
    with pytest.raises(DatasetError, match=r"train-index.tsv line 2: image /in/gone.jpg does not exist"):
        _load(mapper)
    (tmp_path / "gone.jpg").write_bytes(b"\xff\xd8 not really")
    with pytest.raises(ImageFormatError, match=r"gone\.jpg"):
        _load(mapper)
