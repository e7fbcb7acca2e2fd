"""Deterministic synthetic YMIR ``/in`` folders for tests, demos and conformance runs.

``generate()`` writes what YMIR 2.x itself would put into a task's ``/in``: content-addressed
JPEG assets, annotations in the chosen export format (training only), index files, ``env.yaml``
and ``config.yaml`` with container paths (``/in/...``, ``/out/...``). The same arguments always
give byte-identical files (one seeded numpy generator drives everything).

Images show filled circles, squares and triangles in class colours on a textured background.
Object k of the whole dataset gets class ``k % len(class_names)`` and the shape
``("circle", "square", "triangle")[class % 3]``; for ``object_type="rotated"`` squares become
rotated rectangles (angle in radians, 4 decimals, clockwise on screen since y points down; the
box written to the file is the unrotated extent around the rectangle's centre). Image 1 (the
second) has no objects. Sizes alternate between ``size`` and ``size`` transposed.
"""

from __future__ import annotations

import hashlib
import json
import math
import shutil
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import yaml
from pycocotools import mask as mask_utils

TASKS = ("training", "mining", "infer", "mining+infer")
OBJECT_TYPES = {"detection": 2, "rotated": 2, "semantic": 3, "instance": 4}
FORMATS = ("ark", "voc", "coco")
NEGATIVE_IMAGE = 1  # index of the image without objects

_SHAPES = ("circle", "square", "triangle")
_PALETTE = ((230, 40, 40), (40, 190, 60), (50, 80, 235), (235, 200, 30), (200, 50, 200), (30, 200, 210))
_MAX_OBJECTS = 4
_PLACEMENT_TRIES = 50


@dataclass
class _Shape:
    class_id: int
    polygon: np.ndarray                # int32 [N, 2] outline in pixels, as drawn
    extent: tuple[int, int, int, int]  # xmin, ymin, xmax, ymax (inclusive), as written to files
    angle: float
    area: int                          # drawn pixels


@dataclass
class _Sample:
    digest: str  # sha1 of the JPEG bytes = asset id
    width: int
    height: int
    shapes: list[_Shape]

    @property
    def asset(self) -> str:
        return f"/in/assets/{self.digest[-2:]}/{self.digest}.jpg"


def generate(out_dir: Path, *, task: str, object_type: str, fmt: str, images: int = 12, seed: int = 0,
             size: tuple[int, int] = (160, 128), class_names: Sequence[str] = _SHAPES,
             extra_config: dict[str, Any] | None = None, models: dict[str, Path] | None = None) -> Path:
    """Write a complete ``/in`` folder at ``out_dir`` and return ``out_dir``.

    ``fmt="coco"`` means ``coco:raw`` for detection/rotated and ``seg-coco:raw`` for
    semantic/instance (which require coco). ``size`` is ``(width, height)``. ``models`` maps a
    stage name to a folder whose files are copied to ``models/<stage>/``; the first stage is the
    one config.yaml points at. ``extra_config`` is merged last, so it can also override platform
    keys (e.g. ``gpu_id: '0'``, ``gpu_count: 1`` for a GPU run).
    """
    _check_args(task, object_type, fmt, images, size, class_names)
    out_dir = Path(out_dir)
    rng = np.random.default_rng(seed)
    samples = []
    next_class = 0
    for i in range(images):
        width, height = size if i % 2 == 0 else size[::-1]
        count = 0 if i == NEGATIVE_IMAGE else int(rng.integers(1, _MAX_OBJECTS + 1))
        classes = [(next_class + k) % len(class_names) for k in range(count)]
        next_class += count
        jpeg, shapes = _render(rng, i, width, height, classes, rotated=object_type == "rotated")
        digest = hashlib.sha1(jpeg).hexdigest()
        _write(out_dir / "assets" / digest[-2:] / f"{digest}.jpg", jpeg)
        samples.append(_Sample(digest, width, height, shapes))

    task_id = "t" + hashlib.sha1(f"{task}/{object_type}/{fmt}/{seed}".encode()).hexdigest()[:29]
    config: dict[str, Any] = {"task_id": task_id, "class_names": list(class_names), "gpu_id": "",
                              "gpu_count": 0, "object_type": OBJECT_TYPES[object_type]}
    if task == "training":
        config["export_format"] = _export_format(fmt, object_type)
        _write_training(out_dir, samples, class_names, object_type, fmt)
    else:
        config["run_mining"] = "mining" in task
        config["run_infer"] = "infer" in task
        _write(out_dir / "candidate-index.tsv", "".join(f"{s.asset}\n" for s in samples).encode())
    if models:
        key = "pretrained_model_params" if task == "training" else "model_params_path"
        config[key] = _copy_models(out_dir, models)
    config.update(extra_config or {})
    _write(out_dir / "config.yaml", yaml.safe_dump(config, allow_unicode=True).encode())
    _write(out_dir / "env.yaml", yaml.safe_dump(_env(task, task_id)).encode())
    return out_dir


def _check_args(task: str, object_type: str, fmt: str, images: int, size: tuple[int, int],
                class_names: Sequence[str]) -> None:
    if task not in TASKS:
        raise ValueError(f"task {task!r} is not one of {TASKS}")
    if object_type not in OBJECT_TYPES:
        raise ValueError(f"object_type {object_type!r} is not one of {tuple(OBJECT_TYPES)}")
    if fmt not in FORMATS:
        raise ValueError(f"fmt {fmt!r} is not one of {FORMATS}")
    if object_type in ("semantic", "instance") and fmt != "coco":
        raise ValueError(f"object_type {object_type!r} needs fmt 'coco' (seg-coco), not {fmt!r}")
    if images < (4 if task == "training" else 1):
        raise ValueError(f"images={images} is too few (training needs 4: at least 2 per split)")
    if min(size) < 32:
        raise ValueError(f"size {size} is too small (at least 32 px per side)")
    if not class_names or len(set(class_names)) != len(class_names):
        raise ValueError(f"class_names {class_names!r} must be non-empty and unique")


def _export_format(fmt: str, object_type: str) -> str:
    if fmt == "coco" and object_type in ("semantic", "instance"):
        return "seg-coco:raw"
    return f"{fmt}:raw"


def _render(rng: np.random.Generator, index: int, width: int, height: int, classes: list[int],
            *, rotated: bool) -> tuple[bytes, list[_Shape]]:
    """JPEG bytes of one image and the shapes drawn on it (no two overlap)."""
    image = _background(rng, index, width, height)
    shapes: list[_Shape] = []
    placed: list[tuple[int, int, float]] = []  # bounding circles
    for class_id in classes:
        for _ in range(_PLACEMENT_TRIES):
            polygon, (cx, cy), radius, angle, box = _outline(rng, _SHAPES[class_id % 3], width, height,
                                                             rotated)
            if all(math.hypot(cx - x, cy - y) > radius + r + 2 for x, y, r in placed):
                break
        else:
            continue  # no room left in this image
        mask = np.zeros((height, width), np.uint8)
        cv2.fillPoly(mask, [polygon], 1)
        if box is None:  # tight pixel extent of what was drawn
            ys, xs = np.nonzero(mask)
            box = (int(xs.min()), int(ys.min()), int(xs.max()), int(ys.max()))
        colour = np.clip(np.array(_PALETTE[class_id % len(_PALETTE)]) + rng.integers(-15, 16, 3), 0, 255)
        image[mask > 0] = colour.astype(np.uint8)
        placed.append((cx, cy, radius))
        shapes.append(_Shape(class_id, polygon, box, angle, int(mask.sum())))
    ok, jpeg = cv2.imencode(".jpg", cv2.cvtColor(image, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 90])
    if not ok:
        raise RuntimeError("OpenCV could not encode a JPEG")
    return jpeg.tobytes(), shapes


def _background(rng: np.random.Generator, index: int, width: int, height: int) -> np.ndarray:
    """Greyish gradient plus noise, with diagonal stripes on every other image."""
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    direction = rng.uniform(0, 2 * math.pi)
    gradient = math.cos(direction) * xx / width + math.sin(direction) * yy / height
    tint = rng.uniform(90, 150) + rng.uniform(-15, 15, 3)
    image = tint[None, None, :] + 40 * gradient[..., None]
    if index % 2:
        period = float(rng.uniform(8, 20))
        image += 15 * np.sign(np.sin(2 * math.pi * (xx + yy) / period))[..., None]
    image += rng.normal(0, 10, (height, width, 3))
    return np.clip(image, 0, 255).astype(np.uint8)


def _outline(rng: np.random.Generator, shape: str, width: int, height: int, rotated: bool
             ) -> tuple[np.ndarray, tuple[int, int], float, float, tuple[int, int, int, int] | None]:
    """One shape at a random place: ``(polygon, centre, bounding radius, angle, box)``.

    ``box`` is the unrotated inclusive extent of a rotated rectangle, else None (the caller
    measures the drawn pixels).
    """
    side = min(width, height)
    s = int(rng.integers(max(6, side // 8), max(7, side // 4 + 1))) // 2 * 2  # even: integer centre
    angle, h = 0.0, s
    if shape == "circle":
        rel = cv2.ellipse2Poly((0, 0), (s // 2, s // 2), 0, 0, 360, 10).astype(np.float64)
    elif shape == "triangle":
        rel = np.array([(0, -s / 2), (-s / 2, 0.4 * s), (s / 2, 0.4 * s)])
    elif not rotated:  # pixel-inclusive corners: fillPoly covers exactly s x s pixels
        rel = np.array([(0, 0), (s - 1, 0), (s - 1, s - 1), (0, s - 1)], np.float64) - s // 2
    else:
        h = 2 * round(s * float(rng.uniform(0.45, 0.7)) / 2)
        angle = round(float(rng.uniform(0.2, 1.0)) * float(rng.choice([-1, 1])), 4)
        c, si = math.cos(angle), math.sin(angle)
        corners = np.array([(0, 0), (s, 0), (s, h), (0, h)], np.float64) - (s / 2, h / 2)
        rel = corners @ np.array([[c, si], [-si, c]])  # clockwise on screen for angle > 0
    radius = float(np.hypot(rel[:, 0], rel[:, 1]).max()) + 1
    margin = math.ceil(radius)
    cx, cy = int(rng.integers(margin, width - margin)), int(rng.integers(margin, height - margin))
    polygon = np.round(rel + np.array([cx, cy])).astype(np.int32)
    box = (cx - s // 2, cy - h // 2, cx + s // 2 - 1, cy + h // 2 - 1) if angle else None
    return polygon, (cx, cy), radius, angle, box


def _write_training(out_dir: Path, samples: list[_Sample], class_names: Sequence[str], object_type: str,
                    fmt: str) -> None:
    n_val = max(2, len(samples) // 3)
    if fmt == "coco":
        _write(out_dir / "annotations" / "coco-annotations.json",
               _coco_json(samples, class_names, object_type))
        annotation = {s.digest: "/in/annotations/coco-annotations.json" for s in samples}
    else:
        annotation = {}
        for s in samples:
            rel = f"annotations/{s.digest[-2:]}/{s.digest}.{'txt' if fmt == 'ark' else 'xml'}"
            _write(out_dir / rel, _ark(s) if fmt == "ark" else _voc(s, class_names))
            annotation[s.digest] = f"/in/{rel}"
    for name, split in (("train-index.tsv", samples[:-n_val]), ("val-index.tsv", samples[-n_val:])):
        _write(out_dir / name, "".join(f"{s.asset}\t{annotation[s.digest]}\n" for s in split).encode())


def _ark(sample: _Sample) -> bytes:
    return "".join(f"{sh.class_id}, {', '.join(map(str, sh.extent))}, -1.0, {sh.angle}\n"
                   for sh in sample.shapes).encode()


def _voc(sample: _Sample, class_names: Sequence[str]) -> bytes:
    root = ET.Element("annotation")
    ET.SubElement(root, "folder").text = "assets"
    ET.SubElement(root, "filename").text = sample.asset
    size = ET.SubElement(root, "size")
    for tag, value in (("width", sample.width), ("height", sample.height), ("depth", 3)):
        ET.SubElement(size, tag).text = str(value)
    ET.SubElement(root, "segmented").text = "0"
    for shape in sample.shapes:
        obj = ET.SubElement(root, "object")
        for tag, text in (("name", class_names[shape.class_id]), ("pose", "unknown"),
                          ("truncated", "unknown"), ("occluded", "0")):
            ET.SubElement(obj, tag).text = text
        box = ET.SubElement(obj, "bndbox")
        for tag, value in zip(("xmin", "ymin", "xmax", "ymax"), shape.extent, strict=True):
            ET.SubElement(box, tag).text = str(value)
        ET.SubElement(box, "rotate_angle").text = f"{shape.angle:.4f}"
        ET.SubElement(obj, "difficult").text = "0"
        ET.SubElement(obj, "box_quality").text = f"{-1:.4f}"
    ET.indent(root)
    return ET.tostring(root, encoding="utf-8", xml_declaration=False) + b"\n"


def _coco_json(samples: list[_Sample], class_names: Sequence[str], object_type: str) -> bytes:
    ordered = sorted(samples, key=lambda s: s.digest)
    images, annotations = [], []
    for image_id, s in enumerate(ordered, start=1):
        images.append({"id": image_id, "file_name": f"{s.digest}.jpg", "width": s.width,
                       "height": s.height, "date_captured": "2023-01-01 00:00:00", "license": 1,
                       "coco_url": "", "flickr_url": ""})
        for shape in s.shapes:
            xmin, ymin, xmax, ymax = shape.extent
            w, h = xmax - xmin + 1, ymax - ymin + 1
            segmentation: Any = {}
            area = w * h
            if object_type == "instance":
                segmentation = [shape.polygon.reshape(-1).tolist()]
                area = shape.area
            elif object_type == "semantic":
                mask = np.zeros((s.height, s.width), np.uint8)
                cv2.fillPoly(mask, [shape.polygon], 1)
                rle = mask_utils.encode(np.asfortranarray(mask))
                segmentation = {"size": [int(v) for v in rle["size"]],
                                "counts": rle["counts"].decode("ascii")}
                area = shape.area
            annotations.append({"id": len(annotations) + 1, "image_id": image_id,
                                "category_id": shape.class_id, "iscrowd": 0, "bbox": [xmin, ymin, w, h],
                                "area": area, "segmentation": segmentation})
    present = sorted({a["category_id"] for a in annotations})
    categories = [{"id": i, "name": class_names[i], "supercategory": "object"} for i in present]
    return json.dumps({"images": images, "annotations": annotations, "categories": categories}).encode()


def _env(task: str, task_id: str) -> dict[str, Any]:
    training = task == "training"
    return {
        "input": {
            "annotations_dir": "/in/annotations",
            "assets_dir": "/in/assets",
            "candidate_index_file": "" if training else "/in/candidate-index.tsv",
            "config_file": "/in/config.yaml",
            "models_dir": "/in/models",
            "root_dir": "/in",
            "training_index_file": "/in/train-index.tsv" if training else "",
            "val_index_file": "/in/val-index.tsv" if training else "",
        },
        "manifest_file": "/img-man/manifest.yaml",
        "output": {
            "executor_log_file": "/out/ymir-executor-out.log",
            "infer_result_file": "/out/infer-result.json",
            "mining_result_file": "/out/result.tsv",
            "models_dir": "/out/models",
            "monitor_file": "/out/monitor.txt",
            "root_dir": "/out",
            "tensorboard_dir": "/out/tensorboard",
            "training_result_file": "/out/models/result.yaml",
        },
        "protocol_version": "1.1.0",
        "run_infer": "infer" in task,
        "run_mining": "mining" in task,
        "run_training": training,
        "task_id": task_id,
    }


def _copy_models(out_dir: Path, models: dict[str, Path]) -> list[str]:
    """Copy every stage's files; return the container paths of the first stage's files."""
    chosen: list[str] = []
    for stage, folder in models.items():
        files = sorted(f for f in Path(folder).iterdir() if f.is_file())
        if not files:
            raise ValueError(f"model stage {stage!r}: folder {folder} has no files")
        for f in files:
            (out_dir / "models" / stage).mkdir(parents=True, exist_ok=True)
            shutil.copyfile(f, out_dir / "models" / stage / f.name)
        if not chosen:
            chosen = [f"/in/models/{stage}/{f.name}" for f in files]
    return chosen


def _write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
