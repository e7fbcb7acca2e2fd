"""The crashes the fuzzed parser tests found, each as a plain test with its minimal input.

Each test names the reader, the input hypothesis shrank to, and what happened before the fix.
"""

from __future__ import annotations

import pytest

from ymir_base.data.ark import parse_ark
from ymir_base.data.voc import parse_voc
from ymir_base.errors import DatasetError, ErrorCode

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
