"""The crashes the fuzzed parser tests found, each as a plain test with its minimal input.

Each test names the reader, the input hypothesis shrank to, and what happened before the fix.
"""

from __future__ import annotations

import pytest
from _fuzz import time_limit

from ymir_base.data.ark import parse_ark
from ymir_base.data.coco import coco_objects
from ymir_base.data.index import read_candidates, read_pairs
from ymir_base.data.voc import parse_voc
from ymir_base.errors import ConfigError, DatasetError, ErrorCode, ObjectTypeError
from ymir_base.protocol.config import merge_config, object_type_of
from ymir_base.protocol.env import load_env
from ymir_base.protocol.params import ParamSpec
from ymir_base.protocol.paths import PathMapper

CLASSES = ["cat", "dog", "bird"]
VOC_BODY = "<annotation><object><name>cat</name></object></annotation>"


@pytest.mark.parametrize("encoding", ["no-such-codec", "cp932"])
def test_voc_declaring_an_unknown_or_multibyte_encoding(tmp_path, encoding):
    """Was LookupError ("unknown encoding") / ValueError ("multi-byte encodings are not supported")
    out of ElementTree."""
    path = tmp_path / "a.xml"
    path.write_text(f'<?xml version="1.0" encoding="{encoding}"?>\n{VOC_BODY}')
    with pytest.raises(DatasetError, match=rf"cannot parse annotation file {path}") as err:
        parse_voc(path, CLASSES)
    assert err.value.code == ErrorCode.DATASET


def test_ark_huge_line_gives_a_short_message(tmp_path):
    """Was a DatasetError quoting the whole 5000-character line (a megabyte line: a megabyte
    monitor.txt)."""
    path = tmp_path / "a.txt"
    path.write_text("0," + "9" * 5000)
    with pytest.raises(DatasetError, match=rf"annotation {path} line 1: expected 5 to 7") as err:
        parse_ark(path, CLASSES)
    assert len(str(err.value)) < 400


def test_voc_huge_number_gives_a_short_message(tmp_path):
    """Was a DatasetError quoting the whole 5000-digit <xmin>."""
    path = tmp_path / "a.xml"
    path.write_text(f"<annotation><object><name>cat</name><bndbox><xmin>{'9' * 5000}x</xmin></bndbox>"
                    "</object></annotation>")
    with pytest.raises(DatasetError, match=rf"annotation {path} object 1: <bndbox><xmin> '9+\.\.\.") as err:
        parse_voc(path, CLASSES)
    assert len(str(err.value)) < 400


COCO_IMAGE = '{"id": 0, "file_name": "a.jpg", "height": 4, "width": 4}'
COCO_CATEGORY = '{"id": 0, "name": "cat"}'


def coco_file(tmp_path, images=f"[{COCO_IMAGE}]", annotations="[]"):
    path = tmp_path / "coco-annotations.json"
    path.write_text(f'{{"images": {images}, "categories": [{COCO_CATEGORY}], "annotations": {annotations}}}')
    return path


def coco_annotation(**fields):
    ann = {"id": 7, "image_id": 0, "category_id": 0, "bbox": "[0, 0, 2, 2]", "segmentation": "[]", **fields}
    return "[{" + ", ".join(f'"{k}": {v}' for k, v in ann.items()) + "}]"


COCO_CASES = [
    # AttributeError: 'NoneType' object has no attribute 'get'
    ("null annotation", f"[{COCO_IMAGE}]", "[null]", r"'annotations' item 1 must be an object, got None"),
    ("string image", '["a.jpg"]', "[]", r"'images' item 1 must be an object, got 'a.jpg'"),
    ("annotations not a list", f"[{COCO_IMAGE}]", "{}", r"'annotations' must be a list, got dict"),
    # OverflowError: cannot convert float infinity to integer
    ("infinite height", '[{"id": 0, "file_name": "a.jpg", "height": Infinity, "width": 4}]', "[]",
     r"malformed COCO json \(OverflowError"),
    # OverflowError: int too large to convert to float
    ("huge bbox number", f"[{COCO_IMAGE}]", coco_annotation(bbox=f"[0, 0, 2, 1{'0' * 400}]"),
     r"annotation id 7: bbox \[0, 0, 2, .*\] is not finite"),
    ("string bbox number", f"[{COCO_IMAGE}]", coco_annotation(bbox='[0, 0, 2, "2"]'),
     r"annotation id 7: bbox .* holds a non-number '2'"),
    # NaN polygon coordinates were kept and reached pycocotools
    ("NaN polygon", f"[{COCO_IMAGE}]", coco_annotation(segmentation="[[0, 0, 2, 0, 2, NaN]]"),
     r"annotation id 7: polygon .* is not finite"),
    # RLE counts that cover more pixels than h x w make pycocotools write past its buffer
    ("RLE counts too long", f"[{COCO_IMAGE}]", coco_annotation(segmentation='{"size": [4, 4], "counts": [10, 10]}'),
     r"annotation id 7: RLE counts cover 20 pixels, not the mask's 4 x 4"),
    ("RLE counts negative", f"[{COCO_IMAGE}]", coco_annotation(segmentation='{"size": [4, 4], "counts": [20, -4]}'),
     r"annotation id 7: RLE counts have a negative run"),
    ("RLE counts bad string", f"[{COCO_IMAGE}]", coco_annotation(segmentation='{"size": [4, 4], "counts": "~~"}'),
     r"annotation id 7: RLE counts string has the invalid character '~'"),
    ("RLE size not integers", f"[{COCO_IMAGE}]", coco_annotation(segmentation='{"size": [4.5, 4], "counts": [16]}'),
     r"annotation id 7: RLE size \[4.5, 4\] is not two non-negative integers"),
]


@pytest.mark.parametrize("name, images, annotations, message", COCO_CASES, ids=[c[0] for c in COCO_CASES])
def test_coco_malformed_documents(tmp_path, name, images, annotations, message):
    path = coco_file(tmp_path, images, annotations)
    with pytest.raises(DatasetError, match=rf"annotation {path}.*{message}") as err:
        coco_objects(path, CLASSES, "a.jpg", segmentation=False)
    assert err.value.code == ErrorCode.DATASET


def test_coco_nested_ten_thousand_deep(tmp_path):
    """Was a RecursionError out of json.load."""
    path = tmp_path / "coco-annotations.json"
    path.write_text("[" * 10000 + "]" * 10000)
    with pytest.raises(DatasetError, match=rf"cannot parse annotation file {path}: maximum recursion depth"):
        coco_objects(path, CLASSES, "a.jpg", segmentation=False)


def test_coco_valid_rle_and_polygon_still_parse(tmp_path):
    rle = coco_annotation(segmentation='{"size": [4, 4], "counts": [5, 2, 9]}')
    polygon = coco_annotation(id=8, segmentation="[[0, 0, 2, 0, 2, 2]]")
    path = coco_file(tmp_path, annotations=rle[:-1] + ", " + polygon[1:])
    objects = coco_objects(path, CLASSES, "a.jpg", segmentation=True)
    assert [(o.ann_id, o.rle, o.polygons) for o in objects] == [
        ("7", {"size": [4, 4], "counts": [5, 2, 9]}, None), ("8", None, [[0.0, 0.0, 2.0, 0.0, 2.0, 2.0]])]


@pytest.mark.parametrize("line", ["/in/../etc/passwd", "/in/assets/../../etc/passwd", "/etc/passwd", "assets/a.jpg",
                                  "//in/a.jpg", "/in/a\x00.jpg"])
@pytest.mark.parametrize("read", [read_pairs, read_candidates])
def test_index_line_outside_in(tmp_path, line, read):
    """Was returned as a path to read: a training index could make the task read any file of the
    container (or of the host, on a host run), and a NUL byte reached np.fromfile as a ValueError."""
    (tmp_path / "index.tsv").write_text(f"/in/assets/a.jpg\n{line}\n")
    with pytest.raises(DatasetError, match=r"index /in/index.tsv line 2: ") as err:
        read("/in/index.tsv", PathMapper(in_dir=tmp_path))
    assert err.value.code == ErrorCode.DATASET


def test_index_annotation_outside_in(tmp_path):
    (tmp_path / "index.tsv").write_text("/in/assets/a.jpg\t/in/../../root/a.txt\n")
    with pytest.raises(DatasetError, match=r"line 1: '/in/../../root/a.txt' is not a path under /in"):
        read_pairs("/in/index.tsv", PathMapper(in_dir=tmp_path))


def test_index_paths_resolving_inside_in_are_kept_as_written(tmp_path):
    (tmp_path / "index.tsv").write_text("/in/assets/./a.jpg\t/in/x/../annotations/a.txt\n")
    assert read_pairs("/in/index.tsv", PathMapper(in_dir=tmp_path)) == [
        (1, "/in/assets/./a.jpg", "/in/x/../annotations/a.txt")]


ALIAS_BOMB = "".join(f"{c}: &{c} [{', '.join([f'*{p}'] * 9)}]\n" for p, c in zip("abcdefgh", "bcdefghi", strict=True))


@pytest.mark.parametrize("text, message", [
    # ValueError: month must be in 1..12 (PyYAML builds a date)
    ("run_training: true\ntask_id: 2001-13-01\n", r"is not valid YAML \(a value cannot be read: ValueError"),
    # AttributeError: 'NoneType' object has no attribute 'groupdict'
    ("run_training: true\ntask_id: !!timestamp x\n", r"is not valid YAML \(a value cannot be read: AttributeError"),
    # RecursionError
    ("run_training: " + "[" * 600 + "]" * 600 + "\n", r"is not valid YAML \(a value cannot be read: RecursionError"),
    # was "env.yaml: ..." whatever the file's path
    ("run_training: true\noutput: [a]\n", r"'output' must be a mapping, got list"),
    # a list became the path "['a', 'b']"
    ("run_training: true\ninput: {models_dir: [a, b]}\n", r"key 'input.models_dir' must be a string, got list"),
    # str() of 9**8 aliased lists never ends
    (f"a: &a [1, 2, 3, 4, 5, 6, 7, 8, 9]\n{ALIAS_BOMB}run_infer: true\ntask_id: *i\n",
     r"key 'task_id' must be a string, got list \[\[\["),
    # KeyError: '' (PyYAML looks the empty string up in its table of booleans)
    ("0: !!bool\n", r"is not valid YAML \(a value cannot be read: KeyError"),
    # IndexError: string index out of range
    ("run_training: !!int ''\n", r"is not valid YAML \(a value cannot be read: IndexError"),
], ids=["bad date", "bad timestamp", "deep nesting", "section not a mapping", "list path", "alias bomb", "empty bool",
        "empty int"])
def test_env_yaml_values_that_crashed(tmp_path, text, message):
    path = tmp_path / "env.yaml"
    path.write_text(text)
    with time_limit(5), pytest.raises(ConfigError, match=rf"{path}.*{message}") as err:
        load_env(path)
    assert err.value.code == ErrorCode.CONFIG and len(str(err.value)) < 500


@pytest.mark.parametrize("value", [2, "2", " 2 ", 2.0, "2.0"])
def test_object_type_as_the_ui_sends_it(value):
    """Was ObjectTypeError "config key 'object_type': 2 is not supported" for the string "2"."""
    assert object_type_of({"object_type": value}, [2, 3]) == 2


def test_object_type_junk_is_still_refused():
    with pytest.raises(ObjectTypeError, match=r"config key 'object_type': 'det' is not supported"):
        object_type_of({"object_type": "det"}, [2, 3])


LR = {"learning_rate": ParamSpec("learning_rate", "float", 0.01, minimum=0)}


@pytest.mark.parametrize("value, message", [
    # NaN passed every min/max comparison and became the learning rate
    (".nan", "expected a finite number, got nan"),
    ("nan", "expected a finite number, got 'nan'"),
    # no maximum: infinity was accepted
    ("inf", "expected a finite number, got 'inf'"),
    # OverflowError: int too large to convert to float
    (10**400, "expected a finite number, got 1000"),
])
def test_float_hyper_parameter_not_finite(value, message):
    user = yaml_value(value)
    with pytest.raises(ConfigError, match=rf"config key 'learning_rate': {message}") as err:
        merge_config(LR, {}, {"learning_rate": user})
    assert err.value.code == ErrorCode.CONFIG


def yaml_value(value):
    """``value`` as config.yaml's loader gives it (".nan" is YAML for NaN)."""
    import yaml

    return yaml.safe_load(f"v: {value}")["v"] if isinstance(value, str) and value.startswith(".") else value


def test_alias_bombed_hyper_parameter_gives_a_short_message():
    """The message quoted repr(value) of 9**8 aliased lists: a hang, then a huge monitor.txt."""
    import yaml

    doc = yaml.safe_load(f"a: &a [1, 2, 3, 4, 5, 6, 7, 8, 9]\n{ALIAS_BOMB}")
    specs = {"model": ParamSpec("model", "str", "yolov5s")}
    with time_limit(5), pytest.raises(ConfigError, match=r"config key 'model': expected a string, got list") as err:
        merge_config(specs, {}, {"model": doc["i"]})
    assert len(str(err.value)) < 300
