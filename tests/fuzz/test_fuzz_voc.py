"""Fuzzed Pascal-VOC reader (``voc`` / ``det-voc``, with ``rotate_angle``), then the box checks."""

from __future__ import annotations

from xml.sax.saxutils import escape

import pytest
from _fuzz import number_texts, parsed_or_typed, write
from hypothesis import given
from hypothesis import strategies as st

from ymir_base.data.validate import check_boxes
from ymir_base.data.voc import parse_voc
from ymir_base.errors import ErrorCode

CLASSES = ["cat", "dog", "bird"]
TAGS = ("xmin", "ymin", "xmax", "ymax")


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return tmp_path_factory.mktemp("voc")


@st.composite
def voc_object(draw: st.DrawFn) -> tuple[str, tuple | None | str]:
    """One ``<object>`` and what it must parse to: a tuple, "dropped" (a class not in class_names),
    or None (not known to be valid)."""
    valid = draw(st.integers(0, 9)) < 7
    # "fish" is a class YMIR may export that the model does not train: dropped with a warning
    name = draw(st.sampled_from([*CLASSES, "fish"])) if valid else draw(
        st.one_of(st.sampled_from([*CLASSES, "", " cat "]), st.text(max_size=8)))
    values, parts = [], []
    tags = list(TAGS) + (["rotate_angle"] if draw(st.booleans()) else [])
    for tag in tags:
        if valid:
            value = float(draw(st.integers(-20, 3000)))
            values.append(value)
            parts.append(f"<{tag}>{value:g}</{tag}>")
        elif draw(st.integers(0, 5)):
            parts.append(f"<{tag}>{escape(draw(number_texts))}</{tag}>")
    box = f"<bndbox>{''.join(parts)}</bndbox>" if valid or draw(st.booleans()) else ""
    extra = draw(st.sampled_from(["", "<difficult>0</difficult>", "<pose>Unspecified</pose>"]))
    xml = f"<object><name>{escape(name)}</name>{extra}{box}</object>"
    if not valid:
        return xml, None
    if name not in CLASSES:
        return xml, "dropped"
    x1, y1, x2, y2 = values[:4]
    return xml, (CLASSES.index(name), (x1, y1, x2 + 1, y2 + 1), values[4] if len(values) == 5 else 0.0)


ENCODINGS = ["utf-8", "UTF-8", "utf-16", "latin-1", "ascii", "cp932", "shift_jis", "no-such-codec", "utf-32"]


@st.composite
def voc_file(draw: st.DrawFn) -> tuple[bytes, list | None]:
    objects = [draw(voc_object()) for _ in range(draw(st.integers(0, 4)))]
    body = ("<annotation><folder>VOC</folder><filename>a.jpg</filename><size><width>640</width>"
            f"<height>480</height><depth>3</depth></size>{''.join(xml for xml, _ in objects)}</annotation>")
    declared = draw(st.one_of(st.none(), st.sampled_from(ENCODINGS)))
    head = "" if declared is None else f'<?xml version="1.0" encoding="{declared}"?>\n'
    codec = draw(st.sampled_from(["utf-8", "utf-16", "latin-1"]))
    data = (head + body).encode(codec, "replace")
    known = codec == "utf-8" and declared in (None, "utf-8", "UTF-8") and all(o is not None for _, o in objects)
    return data, [o for _, o in objects if o != "dropped"] if known else None


def check(path, size: tuple[int, int]) -> None:
    objects, error = parsed_or_typed(lambda: parse_voc(path, CLASSES), ErrorCode.DATASET, [str(path)])
    if error is None:
        parsed_or_typed(lambda: check_boxes(objects, *size, str(path)), ErrorCode.DATASET, [str(path)])


sizes = st.tuples(st.integers(0, 4000), st.integers(0, 4000))


@given(st.binary(max_size=300), sizes)
def test_random_bytes(folder, data, size):
    check(write(folder, ".xml", data), size)


@given(st.text(max_size=200).map(lambda t: f"<annotation>{t}</annotation>"), sizes)
def test_random_text_inside_the_root(folder, text, size):
    check(write(folder, ".xml", text), size)


@given(voc_file(), sizes)
def test_near_valid_documents(folder, doc, size):
    data, expected = doc
    path = write(folder, ".xml", data)
    objects, error = parsed_or_typed(lambda: parse_voc(path, CLASSES), ErrorCode.DATASET, [str(path)])
    if expected is not None:
        assert error is None, f"a valid file was refused: {error}"
        assert [(o.class_id, o.bbox, o.angle) for o in objects] == expected
    if error is None:
        parsed_or_typed(lambda: check_boxes(objects, *size, str(path)), ErrorCode.DATASET, [str(path)])
