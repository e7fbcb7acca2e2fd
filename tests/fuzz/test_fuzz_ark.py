"""Fuzzed ark reader (``ark`` / ``det-ark``, 5 and 7 fields, with angles), then the box checks."""

from __future__ import annotations

import pytest
from _fuzz import number_texts, parsed_or_typed, write
from hypothesis import given
from hypothesis import strategies as st

from ymir_base.data.ark import parse_ark
from ymir_base.data.validate import check_boxes
from ymir_base.errors import ErrorCode

CLASSES = ["cat", "dog", "bird"]


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return tmp_path_factory.mktemp("ark")


@st.composite
def number(draw: st.DrawFn, valid: bool) -> tuple[str, float | None]:
    """``(text, value)``; value None when the text comes from the junk side."""
    if valid:
        value = draw(st.one_of(st.integers(-50, 5000).map(float),
                               st.floats(-1e4, 1e4, allow_nan=False, allow_infinity=False)))
        text = draw(st.sampled_from([str, repr, "{:.2f}".format, " {} ".format]))(value)
        return text, float(text)
    return draw(number_texts), None


@st.composite
def ark_line(draw: st.DrawFn) -> tuple[str, tuple | None]:
    """One object line and the object it must parse to (None: not known to be valid)."""
    valid = draw(st.integers(0, 9)) < 7
    count = draw(st.sampled_from([5, 6, 7])) if valid else draw(st.integers(1, 9))
    if valid:
        class_id = draw(st.integers(0, len(CLASSES) - 1))
        class_text = str(class_id)
    else:
        class_text = draw(st.one_of(st.integers(-3, 5).map(str), number_texts))
        class_id = None
    numbers = [draw(number(valid or draw(st.booleans()))) for _ in range(count - 1)]
    sep = draw(st.sampled_from([",", ", ", " , ", ",\t"]))
    line = sep.join([class_text, *(text for text, _ in numbers)])
    if not valid or any(v is None for _, v in numbers):
        return line, None
    values = [v for _, v in numbers]
    x1, y1, x2, y2 = values[:4]
    angle = values[5] if count == 7 else 0.0
    return line, (class_id, (x1, y1, x2 + 1, y2 + 1), angle)


@st.composite
def ark_file(draw: st.DrawFn) -> tuple[bytes, list | None]:
    lines, expected = [], []
    for _ in range(draw(st.integers(0, 6))):
        if draw(st.integers(0, 5)) == 0:
            lines.append(draw(st.sampled_from(["", "  ", "\t", "\r"])))
            continue
        line, obj = draw(ark_line())
        lines.append(line)
        expected.append(obj)
    eol = draw(st.sampled_from(["\n", "\r\n"]))
    text = eol.join(lines) + draw(st.sampled_from(["", eol]))
    bom = draw(st.sampled_from(["", "\ufeff"]))
    known = all(obj is not None for obj in expected)
    return (bom + text).encode(), expected if known else None


def check(path, size: tuple[int, int]) -> None:
    """The whole ark path of the reader: parse, then the box policy against an image size."""
    objects, error = parsed_or_typed(lambda: parse_ark(path, CLASSES), ErrorCode.DATASET, [str(path)])
    if error is None:
        parsed_or_typed(lambda: check_boxes(objects, *size, str(path)), ErrorCode.DATASET, [str(path)])


sizes = st.tuples(st.integers(0, 4000), st.integers(0, 4000))


@given(st.binary(max_size=300), sizes)
def test_random_bytes(folder, data, size):
    check(write(folder, ".txt", data), size)


@given(st.text(max_size=200), sizes)
def test_random_text(folder, text, size):
    check(write(folder, ".txt", text), size)


@given(ark_file(), sizes)
def test_near_valid_lines(folder, doc, size):
    data, expected = doc
    path = write(folder, ".txt", data)
    objects, error = parsed_or_typed(lambda: parse_ark(path, CLASSES), ErrorCode.DATASET, [str(path), " line "])
    if expected is not None:
        assert error is None, f"a valid file was refused: {error}"
        assert [(o.class_id, o.bbox, o.angle) for o in objects] == expected
    if error is None:
        parsed_or_typed(lambda: check_boxes(objects, *size, str(path)), ErrorCode.DATASET, [str(path)])
