"""infer-result.json streamed from encoded entries and result.tsv written line by line: the same
bytes as the whole document dumped at once (the form they had before), without a copy of the
file in memory (bench/scale.py). Memory is measured with tracemalloc (deterministic), not RSS."""

from __future__ import annotations

import io
import tracemalloc

import numpy as np
import pytest
from pycocotools import mask as mask_utils

from ymir_base.prediction import Prediction
from ymir_base.results.atomic import open_atomic
from ymir_base.results.infer import dumps
from ymir_base.results.mining import format_mining_result, write_mining_result
from ymir_base.tasks import INSTANCE, ROTATED, SEMANTIC, DetectionWriter
from ymir_base.tasks.writers import encode

NAMES = ["chat", "чайка", "鳥"]  # non-ASCII names stay unescaped in the file


def _boxes(k: int) -> Prediction:
    rng = np.random.default_rng(k)
    xy = rng.uniform(0, 30, (3, 2))
    return Prediction((48, 64), boxes=np.hstack([xy, xy + rng.uniform(2, 20, (3, 2))]),
                      scores=rng.uniform(0, 1, 3), class_ids=np.array([0, 1, 2]))


def _streamed(writer, entries: dict, class_names: list[str]) -> str:
    out = io.StringIO()
    writer.write(out, {name: encode(entry) for name, entry in entries.items()}, class_names)
    return out.getvalue()


@pytest.mark.parametrize("legacy", [False, True])
@pytest.mark.parametrize("writer", [DetectionWriter(), ROTATED.writer])
def test_detection_stream_is_the_dumped_document_byte_for_byte(writer, legacy):
    entries = {f"{k:040x}.jpg": writer.entry(_boxes(k), NAMES, legacy=legacy) for k in range(5)}
    entries["ünreadable.jpg"] = writer.entry(None, NAMES, legacy=legacy)
    assert _streamed(writer, entries, NAMES) == dumps({"detection": entries})
    assert _streamed(writer, {}, NAMES) == dumps({"detection": {}})


def _segmentation_document(entries: dict, class_names: list[str]) -> dict:
    """The COCO form as one dict, numbered the way the writer documents it (an independent oracle)."""
    images, annotations = [], []
    for image_id, (name, entry) in enumerate(entries.items(), start=1):
        images.append({"id": image_id, "file_name": name, "width": entry["width"], "height": entry["height"]})
        for ann in entry["annotations"]:
            annotations.append({"id": len(annotations) + 1, "image_id": image_id, **ann})
    return {"images": images, "categories": [{"id": i, "name": n, "supercategory": "none"}
                                             for i, n in enumerate(class_names)], "annotations": annotations}


def test_segmentation_stream_is_the_dumped_document_byte_for_byte():
    masks = [np.zeros((6, 8), np.uint8) for _ in range(3)]
    masks[0][1:3, 1:4] = 1
    masks[1][2:5, 5:7] = 1
    masks[2][0:1, 0:8] = 1
    rles = [mask_utils.encode(np.asfortranarray(m)) for m in masks]
    instance = {"a.jpg": INSTANCE.writer.entry(Prediction((6, 8), boxes=[[0, 0, 1, 1]] * 2, scores=[0.5, 0.25],
                                                          class_ids=[0, 2], masks=rles[:2]), NAMES),
                "b.jpg": INSTANCE.writer.entry(None, NAMES),
                "c.jpg": INSTANCE.writer.entry(Prediction((6, 8), boxes=[[0, 0, 1, 1]], scores=[0.9], class_ids=[1],
                                                          masks=rles[2:]), NAMES)}
    semantic = {"d.jpg": SEMANTIC.writer.entry(Prediction((2, 3), label_map=np.array([[0, 0, 1], [2, -1, 1]])), NAMES),
                "e.jpg": SEMANTIC.writer.entry(None, NAMES)}
    for writer, entries in ((INSTANCE.writer, instance), (SEMANTIC.writer, semantic)):
        expected = _segmentation_document(entries, NAMES)
        assert len(expected["annotations"]) >= 3
        assert _streamed(writer, entries, NAMES) == dumps(expected)
        assert writer.document(entries, NAMES) == expected


def test_writing_a_large_result_holds_one_entry_at_a_time_not_the_file(tmp_path):
    writer = DetectionWriter()
    entries = {f"{k:040x}.jpg": encode(writer.entry(_boxes(k % 50), NAMES)) for k in range(6000)}
    path = tmp_path / "infer-result.json"
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        before = tracemalloc.get_traced_memory()[0]
        with open_atomic(path) as out:
            writer.write(out, entries, NAMES)
        peak = tracemalloc.get_traced_memory()[1] - before
    finally:
        tracemalloc.stop()
    size = path.stat().st_size
    assert size > 1_500_000
    # dumping the document at once held its string and then its bytes (twice the file); streaming
    # holds the file object's buffer and one entry
    assert peak < 100_000, (peak, size)


def test_result_tsv_is_written_line_by_line_with_the_same_bytes(tmp_path):
    rng = np.random.default_rng(3)
    scores = [(f"/in/assets/{k % 256:02x}/{k:040x}.jpg", float(s)) for k, s in enumerate(rng.random(20000))]
    scores[7] = (scores[7][0], scores[3][1])  # a tie keeps candidate order
    path = tmp_path / "result.tsv"
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        before = tracemalloc.get_traced_memory()[0]
        write_mining_result(path, scores)
        peak = tracemalloc.get_traced_memory()[1] - before
    finally:
        tracemalloc.stop()
    assert path.read_text() == format_mining_result(scores)
    size = path.stat().st_size
    # the sorted rows and their sort keys (about twice the file); the file as one string, its
    # bytes and the list of its lines came on top (about six times)
    assert peak < 3 * size, (peak, size)
