"""The ``data`` command: prepare a dataset into the cache once, summarise it, draw a preview."""

from __future__ import annotations

import argparse
import json
import math
import time
from collections import Counter
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from pycocotools import mask as mask_utils

from al import fashion, trees
from al.cache import cache_root, dataset_writer, is_ready

DATASETS = ("trees", "fashion")
FASHION_DEFAULTS = {"seed": 0, "pool": 600, "test": 200, "source": 0}
# BGR, one per class: ten colours that stay apart on photos
_COLOURS = ((0, 220, 255), (255, 0, 255), (255, 255, 0), (0, 140, 255), (180, 105, 255), (0, 255, 128),
            (255, 128, 0), (128, 0, 255), (255, 255, 255), (0, 0, 255))


def folder_name(name: str, variant: str = "detection", seed: int | None = None, pool: int | None = None,
                test: int | None = None, source: int | None = None) -> str:
    """The dataset's folder in the cache: the plain name for the defaults, otherwise the variant
    and every parameter that differs, so another setting never reuses a folder."""
    parts = [name] if variant == "detection" else [f"{name}-{variant}"]
    for key, value in (("seed", seed), ("pool", pool), ("test", test), ("source", source)):
        if value is not None and value != FASHION_DEFAULTS[key]:
            parts.append(f"{key}{value}")
    return "_".join(parts)


def prepare(name: str, cache: Path | None = None, *, seed: int | None = None, pool: int | None = None,
            test: int | None = None, variant: str = "detection", force: bool = False,
            source: int | None = None) -> tuple[Path, bool]:
    """The prepared dataset's folder and whether this call wrote it (a folder with READY is kept
    unless ``force``)."""
    if name not in DATASETS:
        raise ValueError(f"unknown dataset {name!r}: one of {', '.join(DATASETS)}")
    if name == "trees" and (seed is not None or pool is not None or test is not None or source is not None
                            or variant != "detection"):
        raise ValueError("trees is a fixed set of real photos: --seed, --pool, --test, --source and --variant are "
                         "for fashion")
    for flag, value in (("--pool", pool), ("--test", test), ("--source", source)):
        if value is not None and value < 1:
            raise ValueError(f"{flag} must be at least 1 image, not {value}")
    if variant not in fashion.VARIANTS:
        raise ValueError(f"unknown variant {variant!r}: one of {', '.join(fashion.VARIANTS)}")
    cache = Path(cache) if cache is not None else cache_root()
    folder = cache / folder_name(name, variant, seed, pool, test, source)
    if is_ready(folder) and not force:
        return folder, False
    with dataset_writer(folder) as tmp:
        if name == "trees":
            trees.build(tmp, trees.fetch_wheel(cache / "downloads"))
        else:
            fashion.build(tmp, seed=FASHION_DEFAULTS["seed"] if seed is None else seed,
                          n_pool=FASHION_DEFAULTS["pool"] if pool is None else pool,
                          n_test=FASHION_DEFAULTS["test"] if test is None else test, variant=variant,
                          source=source or 0)
    return folder, True


def _load(folder: Path, split: str) -> dict[str, Any]:
    return json.loads((folder / f"{split}.json").read_text())


def summary(folder: Path) -> str:
    """One line: images, boxes and boxes per class of each split, and the near-copy groups."""
    parts = []
    for split in ("pool", "test"):
        coco = _load(folder, split)
        names = {c["id"]: c["name"] for c in coco["categories"]}
        per_class = Counter(a["category_id"] for a in coco["annotations"])
        groups = Counter(i["group"] for i in coco["images"])
        copies = sum(n - 1 for n in groups.values())
        classes = ", ".join(f"{names[c]} {per_class[c]}" for c in sorted(names))
        parts.append(f"{split}: {len(coco['images'])} images ({copies} near-copies in "
                     f"{sum(n > 1 for n in groups.values())} groups), {len(coco['annotations'])} boxes ({classes})")
    return "; ".join(parts)


def _pick(images: list[dict[str, Any]], n: int) -> list[dict[str, Any]]:
    """``n`` images spread over the list, the members of its first near-copy group first."""
    groups = Counter(i["group"] for i in images)
    shared = next((g for g in (i["group"] for i in images) if groups[g] > 1), None)
    chosen = [i for i in images if i["group"] == shared][:n]
    rest = [i for i in images if i["group"] != shared]
    step = max(len(rest) / max(n - len(chosen), 1), 1)
    chosen += [rest[int(k * step)] for k in range(min(n - len(chosen), len(rest)))]
    return chosen


def _draw(image: np.ndarray, annotations: list[dict[str, Any]], names: dict[int, str], scale: int) -> np.ndarray:
    """The image enlarged with its boxes (and rotated boxes / masks), a label on each box when
    there is more than one class."""
    canvas = cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_NEAREST)
    for a in annotations:
        colour = _COLOURS[a["category_id"] % len(_COLOURS)]
        if "segmentation" in a:
            mask = cv2.resize(mask_utils.decode(a["segmentation"]), None, fx=scale, fy=scale,
                              interpolation=cv2.INTER_NEAREST).astype(bool)
            canvas[mask] = (0.5 * canvas[mask] + 0.5 * np.array(colour)).astype(np.uint8)
        if "rbox" in a:
            cx, cy, w, h, angle = a["rbox"]
            corners = cv2.boxPoints(((cx * scale, cy * scale), (w * scale, h * scale), math.degrees(angle)))
            cv2.polylines(canvas, [corners.round().astype(np.int32)], True, colour, 2, cv2.LINE_AA)
        x, y, w, h = (v * scale for v in a["bbox"])
        cv2.rectangle(canvas, (round(x), round(y)), (round(x + w) - 1, round(y + h) - 1), colour,
                      1 if "rbox" in a else 2)
        if len(names) > 1:
            label = names[a["category_id"]]
            (tw, th), base = cv2.getTextSize(label, cv2.FONT_HERSHEY_SIMPLEX, 0.4, 1)
            top = max(round(y) - th - base - 2, 0)
            cv2.rectangle(canvas, (round(x), top), (round(x) + tw + 4, top + th + base + 2), colour, -1)
            cv2.putText(canvas, label, (round(x) + 2, top + th + 1), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (0, 0, 0), 1,
                        cv2.LINE_AA)
    return canvas


def preview(folder: Path, out_png: Path, n: int = 16, columns: int = 4, scale: int = 2) -> Path:
    """A contact sheet of ``n`` images (three quarters from the pool, the rest from the test set)
    with their labels drawn, titled with split, file name and group."""
    tiles = []
    n_test = n // 4
    for split, count in (("pool", n - n_test), ("test", n_test)):
        coco = _load(folder, split)
        names = {c["id"]: c["name"] for c in coco["categories"]}
        by_image: dict[int, list[dict[str, Any]]] = {}
        for a in coco["annotations"]:
            by_image.setdefault(a["image_id"], []).append(a)
        for info in _pick(coco["images"], count):
            image = cv2.imread(str(folder / "images" / info["file_name"]))
            if image is None:
                raise FileNotFoundError(folder / "images" / info["file_name"])
            drawn = _draw(image, by_image.get(info["id"], []), names, scale)
            title = f"{split} {info['file_name']} group {info['group']} ({len(by_image.get(info['id'], []))})"
            tiles.append((title, drawn))
    width = max(t.shape[1] for _, t in tiles)
    height = max(t.shape[0] for _, t in tiles) + 24
    sheet_rows = []
    for start in range(0, len(tiles), columns):
        row = []
        for title, drawn in tiles[start:start + columns]:
            tile = np.full((height, width, 3), 255, np.uint8)
            tile[24:24 + drawn.shape[0], :drawn.shape[1]] = drawn
            cv2.putText(tile, title, (4, 17), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 0, 0), 1, cv2.LINE_AA)
            row.append(tile)
        row += [np.full((height, width, 3), 255, np.uint8)] * (columns - len(row))
        sheet_rows.append(np.hstack([np.pad(t, ((0, 8), (0, 8), (0, 0)), constant_values=255) for t in row]))
    out_png = Path(out_png)
    out_png.parent.mkdir(parents=True, exist_ok=True)
    if not cv2.imwrite(str(out_png), np.vstack(sheet_rows)):
        raise OSError(f"could not write {out_png}")
    return out_png


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("data", help="prepare a dataset in the cache (once), print its folder and a summary")
    p.add_argument("name", choices=DATASETS)
    p.add_argument("--cache", type=Path, help="cache folder (default $YMIR_AL_CACHE or ~/.cache/ymir-al)")
    p.add_argument("--seed", type=int, help=f"fashion: generation seed (default {FASHION_DEFAULTS['seed']})")
    p.add_argument("--pool", type=int, help=f"fashion: pool images (default {FASHION_DEFAULTS['pool']})")
    p.add_argument("--test", type=int, help=f"fashion: test images (default {FASHION_DEFAULTS['test']})")
    p.add_argument("--source", type=int, metavar="N",
                   help="fashion: pool.json becomes N balanced images made of the item photos that the pool of "
                        "this seed does not use, a set to pretrain on (al_bench.py pretrain); same test set")
    p.add_argument("--variant", choices=fashion.VARIANTS, default="detection",
                   help="fashion: rotated adds rbox, instance adds segmentation (RLE masks)")
    p.add_argument("--force", action="store_true", help="rebuild even when the folder is READY")
    p.add_argument("--preview", type=Path, metavar="OUT.png", help="also draw a contact sheet of 16 labelled images")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    started = time.monotonic()
    try:
        folder, written = prepare(args.name, args.cache, seed=args.seed, pool=args.pool, test=args.test,
                                  variant=args.variant, force=args.force, source=args.source)
    except (ValueError, FileNotFoundError) as exc:
        raise SystemExit(f"al_bench data: {exc}") from exc
    print(folder)
    print(("prepared in %.1f s; " % (time.monotonic() - started) if written else "already prepared; ")
          + summary(folder))
    if args.preview:
        print(f"preview: {preview(folder, args.preview)}")
    return 0
