"""The active-learning benchmark's datasets on synthetic inputs: no download, no Debian package."""

from __future__ import annotations

import gzip
import json
import math
import sys
from collections import Counter
from pathlib import Path

import cv2
import numpy as np
import pytest
from pycocotools import mask as mask_utils

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "bench"))

from al import cache, data, fashion, trees  # noqa: E402

SMALL = fashion.Settings(size=96, objects=(2, 4), scale=(12.0, 36.0))


def synthetic_items(per_class: int = 3) -> tuple[np.ndarray, np.ndarray]:
    """Light shapes on black, one shape size per class, like Fashion-MNIST's 28x28 photos."""
    rng = np.random.default_rng(5)
    items, labels = [], []
    for c in range(len(fashion.CLASS_NAMES)):
        for _ in range(per_class):
            item = np.zeros((28, 28), np.uint8)
            half_w, half_h = 4 + c, 13 - c // 2
            value = int(rng.integers(120, 250))
            cv2.ellipse(item, (14, 14), (half_w, half_h), 0, 0, 360, value, -1)
            items.append(item)
            labels.append(c)
    return np.stack(items), np.array(labels)


def synthetic_backgrounds() -> list[np.ndarray]:
    yy, xx = np.mgrid[0:120, 0:150]
    gradient = np.stack([xx % 256, yy * 2, (xx + yy) % 256], axis=2).astype(np.uint8)
    checker = (((yy // 10 + xx // 10) % 2) * 120 + 60).astype(np.uint8)
    return [gradient, fashion.as_rgb(checker)]


def make(folder: Path, seed: int = 3, n_pool: int = 30, n_test: int = 10, variant: str = "detection",
         settings: fashion.Settings = SMALL) -> Path:
    fashion.generate(folder, synthetic_items(), synthetic_items(2), synthetic_backgrounds(), seed=seed,
                     n_pool=n_pool, n_test=n_test, settings=settings, variant=variant)
    return folder


def files(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def block_layer(width: int, height: int, angle: float = 0.0) -> fashion.Layer:
    """An item whose mask is its whole frame."""
    return fashion.item_layer(np.full((28, 28), 200, np.uint8), width, height, np.ones(3), angle)


def flat_scene(*layers: tuple[fashion.Layer, int, int]) -> fashion.Scene:
    scene = fashion.Scene(np.zeros((SMALL.size + 2 * fashion.PAD,) * 2 + (3,), np.float32))
    for category, (layer, x, y) in enumerate(layers):
        layer.x, layer.y, layer.category = x, y, category
        scene.objects.append(layer)
    return scene


# --- the derived set ---------------------------------------------------------------------------------

def test_generation_is_byte_identical_for_a_seed(tmp_path):
    first, again, other = (make(tmp_path / n, seed=s) for n, s in (("a", 3), ("b", 3), ("c", 4)))
    assert files(first) == files(again)
    assert files(first).keys() == files(other).keys()
    assert files(first) != files(other)


def test_the_source_set_pastes_no_item_photo_of_the_pool(tmp_path):
    items, labels = synthetic_items(per_class=12)
    items[:, 0, 0] = np.arange(len(items))  # every photo unique
    pool = fashion.generate_split(items, labels, synthetic_backgrounds(), 12, np.random.default_rng(0), SMALL,
                                  balanced=False)
    used = {i for r in pool for i in r.items}
    assert all(len(r.items) >= len(r.annotations) for r in pool) and used
    left, left_labels = fashion.unused_items((items, labels), pool)
    assert len(left) == len(items) - len(used)
    assert not {int(x) for x in left[:, 0, 0]} & used  # the pixel carries the index
    assert list(left_labels) == [int(labels[i]) for i in sorted(set(range(len(items))) - used)]


def test_a_source_set_replaces_the_pool_and_keeps_the_test_set(tmp_path):
    train = synthetic_items(per_class=12)
    plain = make(tmp_path / "plain", n_pool=6, n_test=4)
    fashion.generate(tmp_path / "source", train, synthetic_items(2), synthetic_backgrounds(), seed=3, n_pool=6,
                     n_test=4, settings=SMALL, source=6)
    source = json.loads((tmp_path / "source" / "pool.json").read_text())
    assert len(source["images"]) == 6 and all(i["group"] == i["id"] for i in source["images"])  # no near-copies
    assert "pretraining source set of 6" in source["info"]["description"]
    tests = [json.loads((f / "test.json").read_text()) for f in (plain, tmp_path / "source")]
    assert tests[0]["annotations"] == tests[1]["annotations"]
    assert all((plain / "images" / i["file_name"]).read_bytes() == (tmp_path / "source" / "images" / i["file_name"])
               .read_bytes() for i in tests[0]["images"])


def test_a_box_is_the_visible_extent_of_the_pasted_mask():
    scene = flat_scene((block_layer(20, 14), 10, 12), (block_layer(16, 16), 60, 50))
    _, annotations = fashion.render(scene, SMALL, "detection", np.random.default_rng(0))
    assert [a["xyxy"] for a in annotations] == [[10, 12, 30, 26], [60, 50, 76, 66]]
    # half the second one off the right border: its box stops at the border, it keeps its label
    scene = flat_scene((block_layer(20, 14), 86, 12))
    _, annotations = fashion.render(scene, SMALL, "detection", np.random.default_rng(0))
    assert [a["xyxy"] for a in annotations] == [[86, 12, 96, 26]]


def test_the_pixels_under_a_box_are_the_object(tmp_path):
    # a white object on black: the box's edge rows and columns hold object pixels, outside holds none
    scene = flat_scene((block_layer(18, 24), 30, 20))
    scene.objects[0].colour[:] = 255
    jpeg, annotations = fashion.render(scene, SMALL, "detection", np.random.default_rng(0))
    image = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_GRAYSCALE)
    x1, y1, x2, y2 = annotations[0]["xyxy"]
    bright = image > 128
    assert bright[y1:y2, x1].any() and bright[y1:y2, x2 - 1].any()
    assert bright[y1, x1:x2].any() and bright[y2 - 1, x1:x2].any()
    outside = bright.copy()
    outside[y1:y2, x1:x2] = False
    assert not outside.any()


def test_an_object_more_than_half_hidden_loses_its_label():
    # the later square hides the right 12 of the first one's 20 columns (60 %): dropped
    scene = flat_scene((block_layer(20, 20), 10, 10), (block_layer(20, 20), 18, 10))
    _, annotations = fashion.render(scene, SMALL, "detection", np.random.default_rng(0))
    assert [(a["category_id"], a["xyxy"]) for a in annotations] == [(1, [18, 10, 38, 30])]
    # hiding 8 of 20 columns (40 %) keeps it, with the box of what still shows
    scene = flat_scene((block_layer(20, 20), 10, 10), (block_layer(20, 20), 22, 10))
    _, annotations = fashion.render(scene, SMALL, "detection", np.random.default_rng(0))
    assert [(a["category_id"], a["xyxy"]) for a in annotations] == [(0, [10, 10, 22, 30]), (1, [22, 10, 42, 30])]


def test_near_copies_make_the_requested_share_of_the_pool():
    items, labels = synthetic_items()
    rendered = fashion.generate_split(items, labels, synthetic_backgrounds(), 50, np.random.default_rng(1), SMALL,
                                      balanced=False)
    groups = Counter(r.scene for r in rendered)
    assert len(rendered) == 50
    assert sum(n - 1 for n in groups.values()) == round(0.2 * 50)
    assert max(groups.values()) <= 4 and sum(n > 1 for n in groups.values()) >= 3
    # a copy holds the original's objects (its jitter may uncover or hide one at most now and then)
    by_scene: dict[int, list[fashion.Rendered]] = {}
    for r in rendered:
        by_scene.setdefault(r.scene, []).append(r)
    pairs = [(g[0], copy) for g in by_scene.values() for copy in g[1:]]
    same = sum(sorted(a["category_id"] for a in o.annotations) == sorted(a["category_id"] for a in c.annotations)
               for o, c in pairs)
    assert same >= 0.8 * len(pairs)
    assert all(o.jpeg != c.jpeg for o, c in pairs)
    balanced = fashion.generate_split(items, labels, synthetic_backgrounds(), 20, np.random.default_rng(1), SMALL,
                                      balanced=True)
    assert len({r.scene for r in balanced}) == 20


def test_the_pool_is_imbalanced_and_the_test_set_balanced(tmp_path):
    folder = make(tmp_path / "d", n_pool=120, n_test=50)
    pool = Counter(a["category_id"] for a in json.loads((folder / "pool.json").read_text())["annotations"])
    test = Counter(a["category_id"] for a in json.loads((folder / "test.json").read_text())["annotations"])
    counts = [pool[c] for c in range(10)]
    assert counts[0] >= 5 * counts[9] > 0
    assert counts[:3] > counts[-3:] and sum(counts[:5]) > 2 * sum(counts[5:])
    assert max(test.values()) <= 1.35 * min(test.values())
    # before occlusion the quotas are exact
    assert list(fashion.quotas(30, np.ones(10))) == [3] * 10
    assert list(fashion.quotas(100, fashion.class_weights(10, 10.0))) == [25, 19, 15, 11, 9, 7, 5, 4, 3, 2]
    assert math.isclose(fashion.class_weights(10, 10.0)[0] / fashion.class_weights(10, 10.0)[9], 10.0)


def test_rotated_variant_boxes_follow_the_item():
    layer = block_layer(30, 12, angle=math.radians(30))
    scene = flat_scene((layer, 30, 30))
    _, annotations = fashion.render(scene, SMALL, "rotated", np.random.default_rng(0))
    cx, cy, w, h, angle = annotations[0]["rbox"]
    assert abs(w - 30) <= 1.5 and abs(h - 12) <= 1.5 and abs(math.degrees(angle) - 30) < 1e-6
    # every mask pixel lies in the rotated box (turned the other way, the corners would miss)
    corners = cv2.boxPoints(((cx, cy), (w, h), math.degrees(angle))).reshape(-1, 1, 2)
    ys, xs = np.nonzero(layer.mask)
    distance = [cv2.pointPolygonTest(corners, (float(x) + 30.5, float(y) + 30.5), True)
                for x, y in zip(xs, ys, strict=True)]
    assert min(distance) >= -0.75
    # a tall item becomes le90's w >= h, the angle turned by 90 degrees into [-90, 90)
    scene = flat_scene((block_layer(10, 26, angle=math.radians(20)), 30, 30))
    _, annotations = fashion.render(scene, SMALL, "rotated", np.random.default_rng(0))
    _, _, w, h, angle = annotations[0]["rbox"]
    assert w > h and abs(math.degrees(angle) - (-70)) < 1e-6


def test_instance_variant_masks_are_the_visible_pixels():
    # the middle of the first square is hidden by a later one: its mask has a hole, its box does not
    scene = flat_scene((block_layer(30, 20), 10, 10), (block_layer(10, 10), 20, 15))
    _, annotations = fashion.render(scene, SMALL, "instance", np.random.default_rng(0))
    expected = np.zeros((96, 96), np.uint8)
    expected[10:30, 10:40] = 1
    expected[15:25, 20:30] = 0
    first = annotations[0]
    assert first["xyxy"] == [10, 10, 40, 30] and first["area"] == 500
    assert isinstance(first["segmentation"]["counts"], str)
    assert np.array_equal(mask_utils.decode(first["segmentation"]), expected)


# --- the COCO files and the cache ----------------------------------------------------------------------

@pytest.mark.parametrize("variant", fashion.VARIANTS)
def test_the_files_follow_the_contract(tmp_path, variant):
    folder = make(tmp_path / "d", variant=variant)
    pool, test = (json.loads((folder / f"{s}.json").read_text()) for s in ("pool", "test"))
    assert pool["categories"] == test["categories"] == [{"id": i, "name": n} for i, n in
                                                         enumerate(fashion.CLASS_NAMES)]
    assert set(pool["info"]) == {"description", "source", "license", "derived", "seed"}
    assert pool["info"]["derived"] is True and pool["info"]["seed"] == 3 and "DERIVED" in pool["info"]["description"]
    image_ids = [i["id"] for coco in (pool, test) for i in coco["images"]]
    assert len(set(image_ids)) == len(image_ids) == 40 and min(image_ids) >= 1
    for coco in (pool, test):
        images = {i["id"]: i for i in coco["images"]}
        assert {"id", "file_name", "width", "height", "group"} <= set(next(iter(images.values())))
        ann_ids = [a["id"] for a in coco["annotations"]]
        assert len(set(ann_ids)) == len(ann_ids) and min(ann_ids) == 1
        for image in images.values():
            assert cv2.imread(str(folder / "images" / image["file_name"])).shape == (96, 96, 3)
        for a in coco["annotations"]:
            image = images[a["image_id"]]
            x, y, w, h = a["bbox"]
            assert 0 <= x < x + w <= image["width"] and 0 <= y < y + h <= image["height"]
            assert a["iscrowd"] == 0 and 0 <= a["category_id"] < 10 and a["area"] > 0
            assert ("rbox" in a) == (variant == "rotated") and ("segmentation" in a) == (variant == "instance")
        # a group is the id of one of its images; an image alone is its own group
        groups = Counter(i["group"] for i in images.values())
        assert all(g in images for g in groups)
        assert all(i["group"] == i["id"] for i in images.values() if groups[i["group"]] == 1)
    assert len({i["group"] for i in test["images"]}) == 10
    assert len(list((folder / "images").iterdir())) == 40


def test_the_writer_renames_into_place_and_writes_ready_last(tmp_path):
    target = tmp_path / "set"
    with cache.dataset_writer(target) as tmp:
        assert tmp == tmp_path / "set.tmp" and not target.exists()
        (tmp / "pool.json").write_text("{}")
    assert cache.is_ready(target) and not (tmp_path / "set.tmp").exists()
    assert (target / "READY").stat().st_mtime_ns >= (target / "pool.json").stat().st_mtime_ns
    with pytest.raises(RuntimeError), cache.dataset_writer(target) as tmp:
        (tmp / "pool.json").write_text("half")
        raise RuntimeError("killed")
    assert (target / "pool.json").read_text() == "{}" and cache.is_ready(target)


def test_prepare_writes_once_and_a_rerun_does_nothing(tmp_path, monkeypatch):
    calls = []

    def fake_build(folder, *, seed, n_pool, n_test, variant, source):
        calls.append((seed, n_pool, n_test, variant))
        assert source == 0
        make(folder, seed=seed, n_pool=n_pool, n_test=n_test, variant=variant)

    monkeypatch.setattr(fashion, "build", fake_build)
    folder, written = data.prepare("fashion", tmp_path, seed=1, pool=8, test=4)
    assert written and folder == tmp_path / "fashion_seed1_pool8_test4" and cache.is_ready(folder)
    before = files(folder)
    assert data.prepare("fashion", tmp_path, seed=1, pool=8, test=4) == (folder, False)
    assert calls == [(1, 8, 4, "detection")] and files(folder) == before
    assert data.prepare("fashion", tmp_path, seed=1, pool=8, test=4, force=True) == (folder, True)
    assert len(calls) == 2 and files(folder) == before
    assert "pool: 8 images" in data.summary(folder)
    assert data.folder_name("fashion") == "fashion" and data.folder_name("fashion", "rotated") == "fashion-rotated"
    assert data.folder_name("fashion", source=500) == "fashion_source500"
    with pytest.raises(ValueError, match="fixed set"):
        data.prepare("trees", tmp_path, pool=5)
    with pytest.raises(ValueError, match="--pool must be at least 1"):
        data.prepare("fashion", tmp_path, pool=0)
    assert len(calls) == 2


def test_preview_draws_a_sheet(tmp_path):
    folder = make(tmp_path / "d", variant="rotated")
    sheet = cv2.imread(str(data.preview(folder, tmp_path / "p.png", n=8, columns=4)))
    assert sheet.shape[0] > 2 * 96 * 2 and sheet.shape[1] >= 4 * 96 * 2


def test_missing_debian_package_says_how_to_install(tmp_path):
    with pytest.raises(FileNotFoundError, match="apt-get install dataset-fashion-mnist"):
        fashion.load_fashion("train", tmp_path)


def test_idx_files_are_read_with_their_shape(tmp_path):
    images = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    header = bytes([0, 0, 8, 3]) + b"".join(d.to_bytes(4, "big") for d in images.shape)
    (tmp_path / "x.gz").write_bytes(gzip.compress(header + images.tobytes()))
    assert np.array_equal(fashion.read_idx(tmp_path / "x.gz"), images)
    (tmp_path / "y.gz").write_bytes(gzip.compress(header + images.tobytes()[:-1]))
    with pytest.raises(ValueError, match="shape"):
        fashion.read_idx(tmp_path / "y.gz")


# --- the trees set ------------------------------------------------------------------------------------------

def test_tile_starts_cover_the_side_and_end_at_the_border():
    assert trees.tile_starts(700) == [0, 256, 380]
    assert trees.tile_starts(2299) == [0, 256, 512, 768, 1024, 1280, 1536, 1792, 1979]
    assert trees.tile_starts(320) == [0] and trees.tile_starts(200) == [0]


def test_tiling_clips_boxes_and_drops_slivers():
    image = np.zeros((500, 700, 3), np.uint8)
    boxes = np.array([
        [10, 10, 50, 60],      # inside the first tile
        [300, 100, 340, 140],  # across x=320: half kept in tile (0, 0), whole in (0, 1)
        [310, 200, 350, 240],  # 10 of 40 px inside tile (0, 0): 25 % -> dropped there
        [317, 300, 340, 330],  # 3 px inside tile (0, 0): a sliver under 4 px -> dropped there
    ], float)
    out = {(r, c): (crop.shape, b) for r, c, crop, b in trees.tiles(image, boxes)}
    assert set(out) == {(r, c) for r in range(2) for c in range(3)}
    assert all(shape == (320, 320, 3) for shape, _ in out.values())
    assert out[(0, 0)][1].tolist() == [[10, 10, 50, 60], [300, 100, 320, 140]]
    assert out[(0, 1)][1].tolist() == [[44, 100, 84, 140], [54, 200, 94, 240], [61, 300, 84, 320]]
    # tile (1, 2) starts at (380, 180): the second to fourth boxes fall before x=380
    assert out[(1, 2)][1].tolist() == []
    assert trees.clip_boxes(np.array([[0, 0, 10, 10.0]]), (0, 0, 10, 5.5)).tolist() == [[0, 0, 10, 5.5]]
    assert trees.clip_boxes(np.array([[0, 0, 10, 10.0]]), (0, 0, 10, 3.9)).tolist() == []


def test_voc_boxes_are_read_with_their_names():
    xml = """<annotation><size><width>40</width><height>30</height></size>
      <object><name>Dead</name><bndbox><xmin>1</xmin><ymin>2</ymin><xmax>11</xmax><ymax>12</ymax></bndbox></object>
      <object><name>Tree</name><bndbox><xmin>5</xmin><ymin>6</ymin><xmax>40</xmax><ymax>30</ymax></bndbox></object>
    </annotation>"""
    boxes, names = trees.read_voc(xml)
    assert boxes.tolist() == [[1, 2, 11, 12], [5, 6, 40, 30]] and names == ["Dead", "Tree"]
