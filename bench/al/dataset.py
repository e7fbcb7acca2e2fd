"""A prepared active-learning dataset: the pool and the held-out test set, read from the COCO files
of the layout in bench/al/README.md (``images/``, ``pool.json``, ``test.json``).

Any COCO detection dataset laid out that way works; its category ids need not be contiguous
(they become the indexes 0..C-1 in id order). Assets are content-addressed as YMIR does: each
image's id is the sha1 of its file.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

POOL, TEST, IMAGES = "pool.json", "test.json", "images"


@dataclass(frozen=True)
class Item:
    """One image of the dataset with its ground truth (boxes ``x1, y1, x2, y2`` in pixels)."""

    name: str          # file name under images/
    width: int
    height: int
    group: int         # near-duplicates share a group
    boxes: np.ndarray = field(repr=False)       # float64 [N, 4]
    class_ids: np.ndarray = field(repr=False)   # int64 [N], indexes into class_names


@dataclass
class Dataset:
    root: Path
    class_names: list[str]
    pool: dict[str, Item]   # name -> item, in the order of pool.json
    test: dict[str, Item]
    derived: bool = False
    description: str = ""
    _digests: dict[str, str] = field(default_factory=dict, repr=False)

    @property
    def name(self) -> str:
        return self.root.name

    def image_file(self, name: str) -> Path:
        return self.root / IMAGES / name

    def digest(self, name: str) -> str:
        """The asset id of an image: the sha1 of its bytes (computed once)."""
        if name not in self._digests:
            self._digests[name] = hashlib.sha1(self.image_file(name).read_bytes()).hexdigest()
        return self._digests[name]


def load_dataset(root: Path) -> Dataset:
    """Read ``root``'s pool and test files; a ValueError names the file and what is wrong."""
    root = Path(root)
    pool_doc, test_doc = (_read(root / f) for f in (POOL, TEST))
    categories = sorted(pool_doc.get("categories") or [], key=lambda c: c["id"])
    if not categories:
        raise ValueError(f"{root / POOL}: no categories")
    test_ids = sorted(c["id"] for c in test_doc.get("categories") or [])
    if test_ids and test_ids != [c["id"] for c in categories]:
        raise ValueError(f"{root / TEST}: categories differ from {root / POOL}'s")
    index = {c["id"]: i for i, c in enumerate(categories)}
    pool, test = _items(root / POOL, pool_doc, index), _items(root / TEST, test_doc, index)
    overlap = sorted(pool.keys() & test.keys())
    if overlap:
        raise ValueError(f"{root}: {len(overlap)} image(s) are both in the pool and the test set, e.g. {overlap[0]}")
    for items in (pool, test):
        missing = [n for n in items if not (root / IMAGES / n).is_file()]
        if missing:
            raise ValueError(f"{root / IMAGES}: {len(missing)} image file(s) missing, e.g. {missing[0]}")
    info = pool_doc.get("info") or {}
    return Dataset(root, [str(c["name"]) for c in categories], pool, test, derived=bool(info.get("derived")),
                   description=str(info.get("description", "")))


def _read(path: Path) -> dict:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ValueError(f"{path}: missing; prepare the dataset first (al_bench.py data ...)") from None
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path}: not JSON: {exc}") from None


def _items(path: Path, doc: dict, index: dict[int, int]) -> dict[str, Item]:
    boxes: dict[int, list[list[float]]] = {}
    classes: dict[int, list[int]] = {}
    for ann in doc.get("annotations") or []:
        if ann.get("iscrowd"):
            continue
        if ann["category_id"] not in index:
            raise ValueError(f"{path}: annotation {ann.get('id')} has unknown category_id {ann['category_id']}")
        x, y, w, h = (float(v) for v in ann["bbox"])
        boxes.setdefault(ann["image_id"], []).append([x, y, x + w, y + h])
        classes.setdefault(ann["image_id"], []).append(index[ann["category_id"]])
    items: dict[str, Item] = {}
    for number, image in enumerate(doc.get("images") or []):
        name = str(image["file_name"])
        if name in items:
            raise ValueError(f"{path}: image {name} is listed twice")
        items[name] = Item(name, int(image["width"]), int(image["height"]), int(image.get("group", -1 - number)),
                           np.asarray(boxes.get(image["id"], []), np.float64).reshape(-1, 4),
                           np.asarray(classes.get(image["id"], []), np.int64))
    return items
