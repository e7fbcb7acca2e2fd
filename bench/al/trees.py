"""The trees dataset: NEON aerial RGB photos with hand-drawn tree crowns (Pascal VOC boxes), as
shipped in the data folder of the ``deepforest`` wheel (PyPI, MIT). Only the photos and their XML
are read out of the wheel; deepforest is neither installed nor imported.

The big YELL photo is cut into overlapping 320 px tiles for the pool, together with two whole
400 px photos (OSBS, SOAP); the second YELL photo is tiled the same way and held out for testing.
"""

from __future__ import annotations

import subprocess
import sys
import xml.etree.ElementTree as ET
import zipfile
from collections import Counter
from pathlib import Path

import cv2
import numpy as np

from al.cache import CocoSplit, write_coco

WHEEL = "deepforest==2.1.0"
TILE = 320
STRIDE = 256
MIN_KEPT = 0.4  # a clipped box must keep this share of its area
MIN_SIDE = 4.0  # and both sides this many pixels
JPEG_QUALITY = 95
CATEGORIES = [{"id": 0, "name": "tree"}]

# (photo in deepforest/data/, file name stem, split, tiled)
PHOTOS = (
    ("2019_YELL_2_528000_4978000_image_crop2", "crop2", "pool", True),
    ("OSBS_029", "osbs029", "pool", False),
    ("SOAP_061", "soap061", "pool", False),
    ("2019_YELL_2_541000_4977000_image_crop", "crop", "test", True),
)
INFO = {
    "description": "Trees: NEON aerial RGB photos with tree crown boxes, cut into 320 px tiles (stride 256); "
                   "the 1249x1035 YELL photo is held out as the test set. Every crown class maps to 'tree'.",
    "source": f"National Ecological Observatory Network (NEON) airborne imagery, as shipped in the data folder "
              f"of the DeepForest wheel ({WHEEL}, PyPI)",
    "license": "MIT (DeepForest package)",
    "derived": False,
    "seed": None,
}


def fetch_wheel(downloads: Path) -> Path:
    """The deepforest wheel in ``downloads``, fetched by pip (without dependencies) when absent."""
    downloads.mkdir(parents=True, exist_ok=True)
    found = sorted(downloads.glob("deepforest-2.1.0-*.whl"))
    if not found:
        subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "-qq", WHEEL, "-d",
                        str(downloads)], check=True)
        found = sorted(downloads.glob("deepforest-2.1.0-*.whl"))
    if not found:
        raise FileNotFoundError(f"pip download {WHEEL} left no wheel in {downloads}")
    return found[0]


def read_voc(xml_text: bytes | str) -> tuple[np.ndarray, list[str]]:
    """The boxes of a Pascal VOC file as an (N, 4) float array ``x1, y1, x2, y2`` and their class
    names. DeepForest's files use pixel-edge coordinates (a crown at the border has xmax == width),
    so they are taken as they are."""
    root = ET.fromstring(xml_text)
    boxes, names = [], []
    for obj in root.iter("object"):
        bb = obj.find("bndbox")
        if bb is None:
            raise ValueError(f"object {obj.findtext('name')!r} has no bndbox")
        boxes.append([float(bb.findtext(k)) for k in ("xmin", "ymin", "xmax", "ymax")])
        names.append(obj.findtext("name") or "")
    return np.asarray(boxes, np.float64).reshape(-1, 4), names


def tile_starts(length: int, tile: int = TILE, stride: int = STRIDE) -> list[int]:
    """Tile origins along one side: every ``stride`` pixels, the last tile flush with the border
    (one tile at 0 when the side is not longer than a tile)."""
    if length <= tile:
        return [0]
    starts = list(range(0, length - tile, stride))
    return [*starts, length - tile]


def clip_boxes(boxes: np.ndarray, window: tuple[float, float, float, float], min_kept: float = MIN_KEPT,
               min_side: float = MIN_SIDE) -> np.ndarray:
    """``boxes`` (x1, y1, x2, y2) clipped to ``window`` and shifted to its origin; a box that keeps
    less than ``min_kept`` of its area, or a side under ``min_side`` pixels, is dropped."""
    if not len(boxes):
        return np.zeros((0, 4))
    wx1, wy1, wx2, wy2 = window
    clipped = np.stack([np.clip(boxes[:, 0], wx1, wx2), np.clip(boxes[:, 1], wy1, wy2),
                        np.clip(boxes[:, 2], wx1, wx2), np.clip(boxes[:, 3], wy1, wy2)], axis=1)
    w, h = clipped[:, 2] - clipped[:, 0], clipped[:, 3] - clipped[:, 1]
    area = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    keep = (w >= min_side) & (h >= min_side) & (w * h >= min_kept * area)
    return clipped[keep] - np.array([wx1, wy1, wx1, wy1])


def tiles(image: np.ndarray, boxes: np.ndarray, tile: int = TILE,
          stride: int = STRIDE) -> list[tuple[int, int, np.ndarray, np.ndarray]]:
    """``(row, col, crop, boxes in the crop)`` for every tile of ``image``, empty tiles included."""
    h, w = image.shape[:2]
    out = []
    for r, y in enumerate(tile_starts(h, tile, stride)):
        for c, x in enumerate(tile_starts(w, tile, stride)):
            th, tw = min(tile, h), min(tile, w)
            out.append((r, c, image[y:y + th, x:x + tw], clip_boxes(boxes, (x, y, x + tw, y + th))))
    return out


def _decode(data: bytes, name: str) -> np.ndarray:
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    if image is None:
        raise ValueError(f"{name}: not a readable image")
    return image


def _save(folder: Path, split: CocoSplit, file_name: str, image: np.ndarray, boxes: np.ndarray) -> None:
    ok, buf = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
    if not ok:
        raise OSError(f"could not encode {file_name}")
    (folder / "images" / file_name).write_bytes(buf.tobytes())
    image_id = split.add_image(file_name, image.shape[1], image.shape[0])
    for box in boxes:
        split.add_box(image_id, 0, box)


def build(folder: Path, wheel: Path) -> dict[str, dict[str, int]]:
    """Writes images/, pool.json and test.json into ``folder`` from the wheel's photos (image ids
    run on from the pool into the test set); returns each photo's source boxes per VOC class name,
    as read before tiling."""
    (folder / "images").mkdir(parents=True, exist_ok=True)
    splits: dict[str, CocoSplit] = {}
    source_boxes: dict[str, dict[str, int]] = {}
    with zipfile.ZipFile(wheel) as whl:
        for photo, stem, split_name, tiled in PHOTOS:
            base = f"deepforest/data/{photo}"
            image = _decode(whl.read(f"{base}.png"), f"{wheel.name}:{base}.png")
            boxes, names = read_voc(whl.read(f"{base}.xml"))
            source_boxes[photo] = dict(sorted(Counter(names).items()))
            if split_name not in splits:
                splits[split_name] = CocoSplit(1 + sum(len(s.images) for s in splits.values()))
            split = splits[split_name]
            if not tiled:
                h, w = image.shape[:2]
                _save(folder, split, f"{stem}.jpg", image, clip_boxes(boxes, (0, 0, w, h)))
                continue
            for r, c, crop, crop_boxes in tiles(image, boxes):
                _save(folder, split, f"{stem}_r{r:02d}_c{c:02d}.jpg", crop, crop_boxes)
    for name, split in splits.items():
        write_coco(folder / f"{name}.json", INFO, split.images, split.annotations, CATEGORIES)
    return source_boxes
