"""Fuzzed COCO reader (``coco`` and ``seg-coco``, polygons and RLE), then the box checks."""

from __future__ import annotations

import json

import pytest
from _fuzz import junk, parsed_or_typed, write
from hypothesis import given
from hypothesis import strategies as st

from ymir_base.data.coco import coco_objects
from ymir_base.data.validate import check_boxes
from ymir_base.errors import ErrorCode

CLASSES = ["cat", "dog", "bird"]
MISSING = object()  # a key left out of the document


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return tmp_path_factory.mktemp("coco")


class Doc:
    """Draws the fields of one document; each may come out as junk or missing at ``rate`` percent,
    and ``mutated`` says whether any did (then the expected result is unknown)."""

    def __init__(self, draw: st.DrawFn, rate: int):
        self.draw, self.rate, self.mutated = draw, rate, False

    def field(self, valid: st.SearchStrategy) -> object:
        if self.rate and self.draw(st.integers(0, 99)) < self.rate:
            self.mutated = True
            return self.draw(st.one_of(st.just(MISSING), junk))
        return self.draw(valid)

    def mapping(self, **fields: st.SearchStrategy) -> dict:
        values = {key: self.field(strategy) for key, strategy in fields.items()}
        return {key: value for key, value in values.items() if value is not MISSING}


def polygons(h: int, w: int) -> st.SearchStrategy:
    point = st.tuples(st.floats(0, w), st.floats(0, h))
    return st.lists(st.lists(point, min_size=3, max_size=6).map(lambda ps: [v for p in ps for v in p]),
                    min_size=1, max_size=2)


@st.composite
def rle(draw: st.DrawFn, h: int, w: int) -> dict:
    """A valid RLE of an ``h x w`` mask: run lengths as a list, or compressed as pycocotools writes."""
    from pycocotools import mask as mask_utils

    cuts = sorted(draw(st.lists(st.integers(0, h * w), max_size=6)))
    counts = [b - a for a, b in zip([0, *cuts], [*cuts, h * w], strict=True)]
    if draw(st.booleans()):
        return {"size": [h, w], "counts": counts}
    compressed = mask_utils.frPyObjects({"size": [h, w], "counts": counts}, h, w)["counts"]
    return {"size": [h, w], "counts": compressed.decode()}


@st.composite
def coco_file(draw: st.DrawFn) -> tuple[bytes, str, bool, list | None]:
    """``(bytes, image_name, segmentation, expected)``: expected (class_id, bbox) per object, None
    when a field was mutated."""
    doc = Doc(draw, draw(st.sampled_from([0, 0, 2, 5, 20])))
    segmentation = draw(st.booleans())
    sizes = [(draw(st.integers(1, 1000)), draw(st.integers(1, 1000))) for _ in range(draw(st.integers(1, 3)))]
    images = [doc.mapping(id=st.just(i), file_name=st.sampled_from([f"img{i}.jpg", f"/in/assets/aa/img{i}.jpg"]),
                          height=st.just(h), width=st.just(w)) for i, (h, w) in enumerate(sizes)]
    names = draw(st.lists(st.sampled_from([*CLASSES, "fish"]), min_size=1, max_size=4, unique=True))
    categories = [doc.mapping(id=st.just(i), name=st.just(name), supercategory=st.just("object"))
                  for i, name in enumerate(names)]
    annotations, expected = [], {i: [] for i in range(len(sizes))}
    for number in range(draw(st.integers(0, 5))):
        image = draw(st.integers(0, len(sizes) - 1))
        category = draw(st.integers(0, len(names) - 1))
        h, w = sizes[image]
        x, y = draw(st.floats(0, w - 1)), draw(st.floats(0, h - 1))
        box = [x, y, draw(st.floats(0, w - x)), draw(st.floats(0, h - y))]
        mask = draw(st.one_of(st.just({}), st.just([]), polygons(h, w), rle(h, w)))
        annotations.append(doc.mapping(id=st.just(number), image_id=st.just(image), category_id=st.just(category),
                                       bbox=st.just(box), segmentation=st.just(mask), area=st.just(box[2] * box[3]),
                                       iscrowd=st.sampled_from([0, 1])))
        if names[category] in CLASSES and (mask or not segmentation):
            expected[image].append((CLASSES.index(names[category]), (box[0], box[1], box[0] + box[2], box[1] + box[3])))
    top = {"images": images, "categories": categories, "annotations": annotations,
           "info": {"description": "fuzz"}}
    for key in ("images", "categories", "annotations"):
        if doc.rate and draw(st.integers(0, 99)) < doc.rate:
            doc.mutated = True
            top[key] = draw(junk)
    text = json.dumps(top)
    if doc.rate and draw(st.integers(0, 9)) == 0:
        doc.mutated = True
        text = text[:draw(st.integers(0, len(text)))]
    image = draw(st.integers(0, len(sizes) - 1))
    bom = draw(st.sampled_from(["", "\ufeff"]))
    return (bom + text).encode(), f"img{image}.jpg", segmentation, None if doc.mutated else expected[image]


def check(path, image_name: str, segmentation: bool, size: tuple[int, int]) -> tuple[list | None, object]:
    objects, error = parsed_or_typed(lambda: coco_objects(path, CLASSES, image_name, segmentation=segmentation),
                                     ErrorCode.DATASET, [str(path)])
    if error is None:
        parsed_or_typed(lambda: check_boxes(objects, *size, str(path)), ErrorCode.DATASET, [str(path)])
    return objects, error


sizes = st.tuples(st.integers(0, 1000), st.integers(0, 1000))


@given(st.binary(max_size=300), st.booleans(), sizes)
def test_random_bytes(folder, data, segmentation, size):
    check(write(folder, ".json", data), "img0.jpg", segmentation, size)


@given(junk, st.booleans(), sizes)
def test_random_json(folder, value, segmentation, size):
    check(write(folder, ".json", json.dumps(value)), "img0.jpg", segmentation, size)


@given(coco_file(), sizes)
def test_near_valid_documents(folder, doc, size):
    data, image_name, segmentation, expected = doc
    objects, error = check(write(folder, ".json", data), image_name, segmentation, size)
    if expected is not None:
        assert error is None, f"a valid file was refused: {error}"
        assert [(o.class_id, o.bbox) for o in objects] == expected
