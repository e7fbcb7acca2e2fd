import pytest

from ymir_base.data.ark import parse_ark
from ymir_base.errors import DatasetError

CLASSES = ["dog", "cat", "person"]


def _ark(tmp_path, text):
    path = tmp_path / "a.txt"
    path.write_text(text)
    return path


def test_seven_fields_inclusive_max_and_angle(tmp_path):
    text = "0, 242, 61, 424, 249, -1.0, 0.0\n2, 10, 20, 30, 40, 0.8999999761581421, 0.5236\n"
    objs = parse_ark(_ark(tmp_path, text), CLASSES)
    assert [(o.class_id, o.bbox, o.angle) for o in objs] == [
        (0, (242, 61, 425, 250), 0.0),
        (2, (10, 20, 31, 41), 0.5236),
    ]


def test_legacy_five_fields_without_spaces(tmp_path):
    (obj,) = parse_ark(_ark(tmp_path, "1,128,105,1064,548"), CLASSES)
    assert obj.class_id == 1 and obj.bbox == (128, 105, 1065, 549) and obj.angle == 0.0


def test_six_fields_and_blank_lines(tmp_path):
    objs = parse_ark(_ark(tmp_path, "\n1, 0, 0, 9, 9, 0.5\n\n"), CLASSES)
    assert [o.bbox for o in objs] == [(0, 0, 10, 10)]


def test_empty_file_is_a_negative_sample(tmp_path):
    assert parse_ark(_ark(tmp_path, ""), CLASSES) == []


@pytest.mark.parametrize(("text", "message"), [
    ("0, 1, 2, 3, 4\n0, x, 2, 3, 4\n", r"line 2: field 'x' is not a number"),
    ("0, 1, 2, 3\n", r"line 1: expected 5 to 7 comma-separated fields .* got 4"),
    ("0, 1, 2, 3, 4, -1.0, 0.0, 9\n", r"line 1: expected 5 to 7 .* got 8"),
    ("\n\n1.5, 1, 2, 3, 4\n", r"line 3: class index '1.5' is not an integer"),
    ("5, 1, 2, 3, 4\n", r"line 1: class index 5 outside class_names \(3 classes\)"),
    ("-1, 1, 2, 3, 4\n", r"line 1: class index -1 outside class_names"),
    ("0, 1, 2, nan, 4\n", r"line 1: field 'nan' is not a finite number"),
    ("0, 1, 2, 3, 4, -1.0, 0.5\n0, 1, 2, 3, 4, -1.0, nan\n", r"line 2: field 'nan' is not a finite number"),
    ("0, 1, 2, 3, 4, -1.0, inf\n", r"line 1: field 'inf' is not a finite number"),
])
def test_bad_lines_name_file_and_line(tmp_path, text, message):
    path = _ark(tmp_path, text)
    with pytest.raises(DatasetError, match=message) as err:
        parse_ark(path, CLASSES)
    assert str(path) in str(err.value)


def test_missing_file(tmp_path):
    with pytest.raises(DatasetError, match=r"nope\.txt"):
        parse_ark(tmp_path / "nope.txt", CLASSES)
