"""Fuzzed index readers (``train-index.tsv``/``val-index.tsv`` pairs, ``candidate-index.tsv``):
odd bytes, BOM, CRLF, tabs, blank lines, and paths outside /in."""

from __future__ import annotations

import pytest
from _fuzz import parsed_or_typed, write
from hypothesis import given
from hypothesis import strategies as st

from ymir_base.data.index import read_candidates, read_pairs
from ymir_base.errors import ErrorCode
from ymir_base.protocol.paths import PathMapper


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return tmp_path_factory.mktemp("index")


def container(folder, path) -> str:
    return f"/in/{path.relative_to(folder)}"


# a file name YMIR or a hand-made dataset may use: hex digests, spaces, unicode (no tab, newline,
# NUL, and no whitespace at either end, which the reader strips)
names = st.one_of(
    st.text("0123456789abcdef", min_size=1, max_size=40),
    st.text(st.characters(blacklist_categories=["Cs", "Cc", "Zs", "Zl", "Zp"], blacklist_characters="/\\"),
            min_size=1, max_size=12),
)


@st.composite
def index_path(draw: st.DrawFn) -> tuple[str, bool]:
    """``(path, valid)``: valid means under /in once resolved and without a NUL byte."""
    name = draw(names) + draw(st.sampled_from([".jpg", ".png", ".txt", ".xml", ""]))
    if draw(st.integers(0, 4)):
        middle = draw(st.sampled_from(["assets/aa/", "annotations/", "assets/./", "assets/../assets/", "a b/", ""]))
        return f"/in/{middle}{name}", True
    return draw(st.sampled_from([
        f"/etc/{name}", f"/in/../etc/{name}", f"/in/assets/../../{name}", name, f"assets/{name}", f"//in/{name}",
        f"/out/{name}", f"/input/{name}", f"/in/{name}\x00.jpg", f"\u00a0\ufeff/in/{name}", "/in", "/in/..",
    ])), False


# like YMIR's reader (Python text mode), a lone CR ends a line too
EOL = st.sampled_from(["\n", "\r\n", "\r"])


@st.composite
def pair_index(draw: st.DrawFn) -> tuple[str, list | None, int | None]:
    """``(text, expected pairs, first bad line)``; exactly one of the last two is None."""
    lines, expected, bad = [], [], None
    for line_no in range(1, draw(st.integers(0, 6)) + 1):
        kind = draw(st.sampled_from(["pair", "pair", "image", "blank", "three", "no image"]))
        pad = draw(st.sampled_from(["", " ", "  "]))
        if kind == "blank":
            lines.append(draw(st.sampled_from(["", " ", "\t", "\t\t"])))
            continue
        image, ok_image = draw(index_path())
        annotation, ok_annotation = draw(index_path()) if kind != "image" else ("", True)
        if kind == "three":
            lines.append(f"{image}\t{annotation}\textra")
        elif kind == "no image":
            lines.append(f"\t{annotation}")
        else:
            lines.append(pad + image + pad + (f"\t{annotation}" if annotation else "")
                         + draw(st.sampled_from(["", "\t", "\t\t"])))
        if bad is None and (kind in ("three", "no image") or not (ok_image and ok_annotation)):
            bad = line_no
        expected.append((line_no, image, annotation))
    eol = draw(EOL)
    text = draw(st.sampled_from(["", "\ufeff"])) + eol.join(lines) + draw(st.sampled_from(["", eol]))
    return text, None if bad is not None else expected, bad


@st.composite
def candidate_index(draw: st.DrawFn) -> tuple[str, list | None, int | None]:
    lines, expected, bad = [], [], None
    for line_no in range(1, draw(st.integers(0, 6)) + 1):
        if draw(st.integers(0, 4)) == 0:
            lines.append(draw(st.sampled_from(["", " ", "\t"])))
            continue
        path, ok = draw(index_path())
        lines.append(draw(st.sampled_from(["", " ", "\t"])) + path + draw(st.sampled_from(["", " ", "\t"])))
        expected.append(path)
        if bad is None and not ok:
            bad = line_no
    eol = draw(EOL)
    text = draw(st.sampled_from(["", "\ufeff"])) + eol.join(lines) + draw(st.sampled_from(["", eol]))
    return text, None if bad is not None else expected, bad


@given(st.binary(max_size=300), st.booleans())
def test_random_bytes(folder, data, pairs):
    index = container(folder, write(folder, ".tsv", data))
    read = read_pairs if pairs else read_candidates
    parsed_or_typed(lambda: read(index, PathMapper(in_dir=folder)), ErrorCode.DATASET, [index])


@given(st.text(max_size=300), st.booleans())
def test_random_text(folder, text, pairs):
    index = container(folder, write(folder, ".tsv", text))
    read = read_pairs if pairs else read_candidates
    parsed_or_typed(lambda: read(index, PathMapper(in_dir=folder)), ErrorCode.DATASET, [index])


@given(pair_index())
def test_near_valid_pair_index(folder, doc):
    text, expected, bad = doc
    index = container(folder, write(folder, ".tsv", text))
    mentions = [index] if bad is None else [f"index {index} line {bad}:"]
    pairs, error = parsed_or_typed(lambda: read_pairs(index, PathMapper(in_dir=folder)), ErrorCode.DATASET, mentions)
    assert (error is None) == (bad is None), f"first bad line {bad}, error {error}"
    if expected is not None:
        assert pairs == expected


@given(candidate_index())
def test_near_valid_candidate_index(folder, doc):
    text, expected, bad = doc
    index = container(folder, write(folder, ".tsv", text))
    mentions = [index] if bad is None else [f"index {index} line {bad}:"]
    paths, error = parsed_or_typed(lambda: read_candidates(index, PathMapper(in_dir=folder)), ErrorCode.DATASET,
                                   mentions)
    assert (error is None) == (bad is None), f"first bad line {bad}, error {error}"
    if expected is not None:
        assert paths == expected
