import logging
import re

import pytest

from ymir_base.data.voc import parse_voc
from ymir_base.errors import DatasetError

XML = """<annotation>
  <filename>/in/assets/aa/1.jpg</filename>
  <size><width>100</width><height>80</height><depth>3</depth></size>
  <object><name>cat</name><bndbox><xmin>1</xmin><ymin>2</ymin><xmax>10</xmax><ymax>20</ymax>
    <rotate_angle>0.2500</rotate_angle></bndbox></object>
  <object><name>dog</name><bndbox><xmin>0</xmin><ymin>0</ymin><xmax>5</xmax><ymax>5</ymax></bndbox></object>
  <object><name> person </name><bndbox><xmin>30.5</xmin><ymin>40</ymin><xmax>50</xmax><ymax>60</ymax>
    </bndbox></object>
</annotation>
"""


def _voc(tmp_path, text):
    path = tmp_path / "a.xml"
    path.write_text(text)
    return path


def test_classes_mapped_by_name_and_unknown_dropped(tmp_path, caplog):
    path = _voc(tmp_path, XML)
    with caplog.at_level(logging.WARNING):
        objs = parse_voc(path, ["person", "cat"])
    assert [(o.class_id, o.bbox, o.angle) for o in objs] == [
        (1, (1, 2, 11, 21), 0.25),
        (0, (30.5, 40, 51, 61), 0.0),
    ]
    assert "dropped 1 object" in caplog.text and "dog" in caplog.text and str(path) in caplog.text


def test_no_objects(tmp_path):
    assert parse_voc(_voc(tmp_path, "<annotation><filename>x</filename></annotation>"), ["cat"]) == []


def test_malformed_xml_names_the_file(tmp_path):
    path = _voc(tmp_path, "<annotation><object>")
    with pytest.raises(DatasetError, match=re.escape(f"cannot parse annotation file {path}")):
        parse_voc(path, ["cat"])


@pytest.mark.parametrize(("obj", "message"), [
    ("<name>cat</name>", r"object 1: <bndbox> is missing"),
    ("<name>cat</name><bndbox><xmin>1</xmin><ymin>1</ymin><ymax>3</ymax></bndbox>", r"<xmax> is missing"),
    ("<name>cat</name><bndbox><xmin>1</xmin><ymin>1</ymin><xmax>a</xmax><ymax>3</ymax></bndbox>",
     r"<xmax> 'a' is not a number"),
    ("<name>cat</name><bndbox><xmin>1</xmin><ymin>1</ymin><xmax>3</xmax><ymax>3</ymax>"
     "<rotate_angle>NaN</rotate_angle></bndbox>", r"object 1: <bndbox><rotate_angle> 'NaN' is not a finite"),
    ("<bndbox/>", r"<name> is missing"),
])
def test_bad_objects_name_the_file(tmp_path, obj, message):
    path = _voc(tmp_path, f"<annotation><object>{obj}</object></annotation>")
    with pytest.raises(DatasetError, match=message) as err:
        parse_voc(path, ["cat"])
    assert str(path) in str(err.value)
