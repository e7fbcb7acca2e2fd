"""The inputs of the growth-curve benchmark (bench/scale.py), made once and kept in a cache folder.

One ``/in`` folder (``ROOT/in``) holds every input of the parsing steps: ``assets/`` and
``annotations/`` with one entry per index line (up to a million), and index files of each size,
each the first ``n`` lines of the largest. The entries are hard links to a few distinct files
(``DISTINCT`` real 64x64 JPEGs of the sample generator and their ark files): the readers' work
per line (a path check, a stat, an image header, an annotation file to open and parse) does not
depend on whether two entries share their bytes, and a million distinct files would only fill
the disk. The names are distinct (sha1 of the item number, as YMIR names assets), so the
candidate reader's duplicate check and the result keys see a million different images.

The infer and mining steps run ``ymir-exec`` on task folders ``ROOT/tasks/{infer,mining}-N``
whose ``assets`` is a symbolic link to the shared one: real decodable images, ``DISTINCT`` of
them repeated.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections.abc import Iterable
from pathlib import Path

from ymir_base.sample.generator import generate
from ymir_base.sample.writer import Sample, write_task

DISTINCT = 16      # distinct images (and ark files) behind the hard links
IMAGE_SIZE = 64    # px, square
CLASS_NAMES = ("circle", "square", "triangle")


def digest(i: int) -> str:
    """The asset name of item ``i``: 40 hex digits like a YMIR asset hash."""
    return hashlib.sha1(f"ymir-scale {i}".encode()).hexdigest()


def asset(i: int) -> str:
    d = digest(i)
    return f"/in/assets/{d[-2:]}/{d}.jpg"


def annotation(i: int) -> str:
    d = digest(i)
    return f"/in/annotations/{d[-2:]}/{d}.txt"


def distinct_files(root: Path) -> list[tuple[Path, Path]]:
    """``DISTINCT`` (jpeg, ark) pairs of the sample generator, generated once under ``root``."""
    folder = root / "distinct"
    if not (folder / "val-index.tsv").is_file():
        shutil.rmtree(folder, ignore_errors=True)
        generate(folder, task="training", object_type="detection", fmt="ark", images=DISTINCT, seed=11,
                 size=(IMAGE_SIZE, IMAGE_SIZE), class_names=CLASS_NAMES)
    pairs = []
    for name in ("train-index.tsv", "val-index.tsv"):
        for line in (folder / name).read_text().splitlines():
            image, ann = line.split("\t")
            pairs.append((folder / image.removeprefix("/in/"), folder / ann.removeprefix("/in/")))
    return pairs


def _link(source: Path, target: Path) -> None:
    try:
        os.link(source, target)
    except FileExistsError:
        pass


def ensure_entries(root: Path, n: int) -> Path:
    """``ROOT/in`` with at least ``n`` asset and ark entries; returns ``ROOT/in``."""
    in_dir = root / "in"
    marker = in_dir / "entries.count"
    have = int(marker.read_text()) if marker.is_file() else 0
    if have >= n:
        return in_dir
    pairs = distinct_files(root)
    for sub in ("assets", "annotations"):
        for k in range(256):
            (in_dir / sub / f"{k:02x}").mkdir(parents=True, exist_ok=True)
    for i in range(have, n):
        jpeg, ark = pairs[i % len(pairs)]
        _link(jpeg, in_dir / asset(i).removeprefix("/in/"))
        _link(ark, in_dir / annotation(i).removeprefix("/in/"))
    marker.write_text(str(n))
    return in_dir


def _write_lines(path: Path, lines: Iterable[str]) -> Path:
    if not path.is_file():
        tmp = path.with_suffix(".tmp")
        with open(tmp, "w", encoding="utf-8") as f:
            f.writelines(lines)
        os.replace(tmp, path)
    return path


def candidate_index(root: Path, n: int) -> Path:
    """``ROOT/in/candidate-index-N.tsv``: one image path per line."""
    in_dir = ensure_entries(root, n)
    return _write_lines(in_dir / f"candidate-index-{n}.tsv", (f"{asset(i)}\n" for i in range(n)))


def train_index(root: Path, n: int) -> Path:
    """``ROOT/in/train-index-N.tsv``: image and its ark file per line."""
    in_dir = ensure_entries(root, n)
    return _write_lines(in_dir / f"train-index-{n}.tsv", (f"{asset(i)}\t{annotation(i)}\n" for i in range(n)))


def coco_index(root: Path, n: int) -> Path:
    """``ROOT/in/coco-index-N.tsv`` over one ``annotations/coco-N.json`` of n images (the objects
    of the distinct ark files, as YMIR's coco export writes them)."""
    in_dir = ensure_entries(root, n)
    coco = in_dir / "annotations" / f"coco-{n}.json"
    if not coco.is_file():
        objects = [_ark_objects(ark) for _, ark in distinct_files(root)]
        images, annotations = [], []
        for i in range(n):
            images.append({"id": i + 1, "file_name": f"{digest(i)}.jpg", "width": IMAGE_SIZE,
                           "height": IMAGE_SIZE, "date_captured": "2023-01-01 00:00:00", "license": 1,
                           "coco_url": "", "flickr_url": ""})
            for cls, (x1, y1, x2, y2) in objects[i % len(objects)]:
                annotations.append({"id": len(annotations) + 1, "image_id": i + 1, "category_id": cls,
                                    "iscrowd": 0, "bbox": [x1, y1, x2 - x1 + 1, y2 - y1 + 1],
                                    "area": (x2 - x1 + 1) * (y2 - y1 + 1), "segmentation": {}})
        categories = [{"id": c, "name": name, "supercategory": "object"} for c, name in enumerate(CLASS_NAMES)]
        tmp = coco.with_suffix(".tmp")
        tmp.write_text(json.dumps({"images": images, "annotations": annotations, "categories": categories}))
        os.replace(tmp, coco)
    ref = f"/in/annotations/coco-{n}.json"
    return _write_lines(in_dir / f"coco-index-{n}.tsv", (f"{asset(i)}\t{ref}\n" for i in range(n)))


def _ark_objects(ark: Path) -> list[tuple[int, tuple[int, int, int, int]]]:
    objects = []
    for line in ark.read_text().splitlines():
        fields = [f.strip() for f in line.split(",")]
        objects.append((int(fields[0]), (int(fields[1]), int(fields[2]), int(fields[3]), int(fields[4]))))
    return objects


def model(root: Path) -> Path:
    """A random-init yolov5n for the three sample classes (``ROOT/model/best/best.pt``), the way
    tests/conftest.py makes one; speed and memory do not depend on the weights."""
    folder = root / "model" / "best"
    if not (folder / "best.pt").is_file():
        from ymir_yolov5lib import models, runtime

        runtime.prepare()
        import torch
        from yolov5.models.yolo import Model

        torch.manual_seed(0)
        net = Model(str(models.model_yaml("yolov5n")), ch=3, nc=len(CLASS_NAMES))
        net.names = dict(enumerate(CLASS_NAMES))
        folder.mkdir(parents=True, exist_ok=True)
        torch.save({"model": net.half(), "epoch": -1}, folder / "best.pt.tmp")
        os.replace(folder / "best.pt.tmp", folder / "best.pt")
    return folder


def task_folder(root: Path, task: str, n: int) -> Path:
    """``ROOT/tasks/TASK-N``: a ``/in`` for an infer or mining task over the first n images."""
    folder = root / "tasks" / f"{task}-{n}"
    if (folder / "env.yaml").is_file():  # written last
        return folder
    in_dir = ensure_entries(root, n)
    weights = model(root)
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    (folder / "assets").symlink_to(in_dir / "assets", target_is_directory=True)
    samples = [Sample(digest(i), IMAGE_SIZE, IMAGE_SIZE, []) for i in range(n)]
    write_task(folder, task=task, samples=samples, class_names=CLASS_NAMES, object_type="detection", fmt="ark",
               task_id=f"scale{task}{n}", models={"best": weights})
    return folder
