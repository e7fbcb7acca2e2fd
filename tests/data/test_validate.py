"""check_boxes on rotated objects: the rotated corners are what must lie in the image."""

import logging
import math

import pytest
from PIL import Image

from ymir_base.data.reader import load_split
from ymir_base.data.types import ObjectAnnotation
from ymir_base.data.validate import check_boxes
from ymir_base.errors import DatasetError
from ymir_base.protocol.paths import PathMapper

SOURCE = "/in/annotations/aa/a.txt"


def _obj(x1, y1, x2, y2, angle=0.0):
    return ObjectAnnotation(class_id=0, bbox=(x1, y1, x2, y2), angle=angle)


def test_rotated_box_inside_once_rotated_is_kept_unchanged():
    """The issue's example: 200x20 at 45 degrees centred at (80, 500); the unrotated extent starts at
    x = -20, the rotated corners at x = 2.2."""
    obj = _obj(-20, 490, 180, 510, math.pi / 4)
    assert check_boxes([obj], 1024, 1024, SOURCE) == [obj]


def test_rotated_corners_within_the_tolerance_keep_the_box_unchanged(caplog):
    # 45 degrees, corners reach x = 80 - 110 / sqrt(2) - 10 = -7.8: inside 1 % of 1024 px
    obj = _obj(-30, 490, 170, 510, math.pi / 4)
    with caplog.at_level(logging.WARNING):
        assert check_boxes([obj], 1024, 1024, SOURCE) == [obj]  # not clipped
    assert not caplog.text


def test_rotated_corners_far_outside_drop_the_object_with_a_warning(caplog):
    inside = _obj(-20, 490, 180, 510, math.pi / 4)
    left = _obj(-95, 490, 105, 510, math.pi / 4)          # corners from x = -72.8
    standing = _obj(0, 5, 200, 25, math.pi / 2)           # extent inside, rotated: y from -85 to 115
    with caplog.at_level(logging.WARNING):
        kept = check_boxes([inside, left, _obj(1, 1, 5, 5), standing], 1024, 1024, SOURCE)
    assert kept == [inside, _obj(1, 1, 5, 5)]
    assert SOURCE in caplog.text and "dropped 2 rotated object(s) (object 2, 4)" in caplog.text


def test_axis_aligned_policy_is_unchanged():
    assert check_boxes([_obj(-1, 0, 10, 10)], 100, 100, SOURCE) == [_obj(0, 0, 10, 10)]
    with pytest.raises(DatasetError, match=r"a\.txt object 1: .* 20 px outside"):
        check_boxes([_obj(-20, 490, 180, 510)], 1024, 1024, SOURCE)


@pytest.mark.parametrize("angle", [math.nan, math.inf, -math.inf])
@pytest.mark.parametrize("size", [(1024, 1024), (0, 0)])
def test_non_finite_angle_is_an_error_naming_file_and_object(angle, size):
    with pytest.raises(DatasetError, match=rf"annotation {SOURCE} object 2: rotate_angle .* not a finite"):
        check_boxes([_obj(1, 1, 5, 5), _obj(1, 1, 5, 5, angle)], *size, SOURCE)


def test_reader_keeps_a_rotated_box_whose_extent_sticks_out(tmp_path):
    Image.new("RGB", (1024, 1024)).save(tmp_path / "img.png")
    (tmp_path / "img.txt").write_text("0, -20, 490, 179, 509, -1.0, 0.785398\n")
    (tmp_path / "train-index.tsv").write_text("/in/img.png\t/in/img.txt\n")
    (record,) = load_split("/in/train-index.tsv", PathMapper(in_dir=tmp_path), ["a"], "ark:raw")
    assert [(o.bbox, o.angle) for o in record.objects] == [((-20, 490, 180, 510), 0.785398)]
