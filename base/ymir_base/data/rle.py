"""COCO run-length masks: decoding the compressed counts string, checking that counts cover the
mask exactly (pycocotools writes past its buffer when they cover more)."""

from __future__ import annotations

from typing import Any

from ymir_base.errors import DatasetError, brief


def rle_counts(counts: str | bytes, where: str) -> list[int]:
    """The run lengths of COCO's compressed RLE string: each number in 5-bit groups, least
    significant first, as characters from '0' (48) with 0x20 marking a following group and 0x10
    in the last group the sign; from the third run on, a number is the difference to the run two
    places before."""
    text = counts.decode("ascii", "replace") if isinstance(counts, bytes) else counts
    runs: list[int] = []
    pos = 0
    while pos < len(text):
        value, shift, more = 0, 0, True
        while more:
            if pos >= len(text):
                raise DatasetError(f"{where}: RLE counts string ends inside a number")
            c = ord(text[pos]) - 48
            if not 0 <= c < 64:
                raise DatasetError(f"{where}: RLE counts string has the invalid character {text[pos]!r}")
            value |= (c & 0x1F) << shift
            more = bool(c & 0x20)
            pos += 1
            shift += 5
            if not more and c & 0x10:
                value -= 1 << shift
        if len(runs) > 2:
            value += runs[-2]
        runs.append(value)
    return runs


def check_rle_counts(counts: Any, height: int, width: int, where: str) -> None:
    """A DatasetError unless ``counts`` (compressed string or list of run lengths) are non-negative
    runs covering exactly ``height x width`` pixels."""
    if isinstance(counts, str):
        runs = rle_counts(counts, where)
    elif isinstance(counts, list) and all(isinstance(n, int) and not isinstance(n, bool) for n in counts):
        runs = counts
    else:
        raise DatasetError(f"{where}: RLE counts must be a string or a list of integers, got {brief(counts)}")
    if any(n < 0 for n in runs):
        raise DatasetError(f"{where}: RLE counts have a negative run")
    if sum(runs) != height * width:
        raise DatasetError(f"{where}: RLE counts cover {sum(runs)} pixels, not the mask's {height} x {width}")
