"""A tiny dataset in the benchmark's layout from the base's synthetic sample images (shapes on
textured backgrounds): for the loop's own test and smoke runs, never for conclusions."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from ymir_base.data.reader import load_split
from ymir_base.protocol.paths import PathMapper
from ymir_base.sample.generator import generate

CLASSES = ("circle", "square", "triangle")


def sample_dataset(root: Path, *, pool: int = 12, test: int = 6, seed: int = 0) -> Path:
    """Write ``root`` (images/, pool.json, test.json, READY) and return it."""
    root = Path(root)
    shutil.rmtree(root, ignore_errors=True)
    (root / "images").mkdir(parents=True)
    categories = [{"id": i, "name": n} for i, n in enumerate(CLASSES)]
    for split, count, split_seed in (("pool", pool, seed * 2 + 1), ("test", test, seed * 2 + 2)):
        in_dir = generate(root / f"{split}-in", task="training", object_type="detection", fmt="ark",
                          images=max(4, count), seed=split_seed, class_names=CLASSES)
        mapper = PathMapper(in_dir, root / "unused-out")
        images, annotations = [], []
        records = [r for index in ("train-index.tsv", "val-index.tsv")
                   for r in load_split(in_dir / index, mapper, list(CLASSES), "ark:raw")][:count]
        for image_id, record in enumerate(records, start=1):
            name = f"{split}-{image_id:03d}.jpg"
            shutil.copyfile(record.path, root / "images" / name)
            images.append({"id": image_id, "file_name": name, "width": record.width, "height": record.height,
                           "group": image_id})
            for obj in record.objects:
                x1, y1, x2, y2 = obj.bbox  # x2, y2 exclusive
                annotations.append({"id": len(annotations) + 1, "image_id": image_id, "category_id": obj.class_id,
                                    "bbox": [x1, y1, x2 - x1, y2 - y1], "area": (x2 - x1) * (y2 - y1), "iscrowd": 0})
        doc = {"info": {"description": "ymir_base synthetic sample shapes", "source": "ymir_base.sample.generator",
                        "license": "same as this repository", "derived": True, "seed": seed},
               "images": images, "annotations": annotations, "categories": categories}
        (root / f"{split}.json").write_text(json.dumps(doc), encoding="utf-8")
        shutil.rmtree(in_dir)
    (root / "READY").write_text("sample\n", encoding="utf-8")
    return root
