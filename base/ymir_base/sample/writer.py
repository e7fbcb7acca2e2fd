"""A YMIR ``/in`` folder written from samples: what YMIR 2.x itself puts into a task's ``/in``.

:func:`write_task` writes annotations in the chosen export format (training only), the index
files, ``env.yaml`` and ``config.yaml`` with container paths (``/in/...``, ``/out/...``) for
samples whose JPEG assets the caller has placed at ``assets/<last 2 of digest>/<digest>.jpg``.
The synthetic sample generator (generator.py) and the active-learning benchmark (bench/al/)
both write their folders through it; the same arguments always give byte-identical files.
"""

from __future__ import annotations

import json
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


@dataclass
class Shape:
    """One object: its class, its outline and its box as written to the annotation files."""

    class_id: int
    polygon: np.ndarray                # int32 [N, 2] outline in pixels, as drawn
    extent: tuple[int, int, int, int]  # xmin, ymin, xmax, ymax (inclusive), as written to files
    angle: float = 0.0                 # rotated boxes: radians, ``extent`` the unrotated extent
    area: int = 0                      # pixels covered (instance and semantic areas)


@dataclass
class Sample:
    """One image: its asset id (sha1 of the JPEG bytes), size and objects."""

    digest: str
    width: int
    height: int
    shapes: list[Shape]

    @property
    def asset(self) -> str:
        return f"/in/assets/{self.digest[-2:]}/{self.digest}.jpg"


def asset_path(in_dir: Path, digest: str) -> Path:
    """Where the asset of ``digest`` goes on the host."""
    return Path(in_dir) / "assets" / digest[-2:] / f"{digest}.jpg"


def write_task(out_dir: Path, *, task: str, samples: Sequence[Sample], class_names: Sequence[str],
               object_type: str, fmt: str, task_id: str, extra_config: dict[str, Any] | None = None,
               models: dict[str, Path] | None = None, val_samples: Sequence[Sample] | None = None) -> Path:
    """Write everything of a task's ``/in`` at ``out_dir`` but the assets; return ``out_dir``.

    Training splits ``samples`` into the training and validation index (the last third, at least
    2) unless ``val_samples`` names the validation images; other tasks list ``samples`` as
    candidates. ``fmt="coco"`` means ``coco:raw`` for detection/rotated and ``seg-coco:raw`` for
    semantic/instance. ``models`` maps a stage name to a folder whose files are copied to
    ``models/<stage>/``; the first stage is the one config.yaml points at. ``extra_config`` is
    merged last, so it can also override platform keys.
    """
    if task not in TASKS:
        raise ValueError(f"task {task!r} is not one of {TASKS}")
    out_dir = Path(out_dir)
    config: dict[str, Any] = {"task_id": task_id, "class_names": list(class_names), "gpu_id": "",
                              "gpu_count": 0, "object_type": OBJECT_TYPES[object_type]}
    if task == "training":
        config["export_format"] = _export_format(fmt, object_type)
        if val_samples is None:
            n_val = max(2, len(samples) // 3)
            samples, val_samples = samples[:-n_val], samples[-n_val:]
        _write_training(out_dir, list(samples), list(val_samples), class_names, object_type, fmt)
    else:
        config["run_mining"] = "mining" in task
        config["run_infer"] = "infer" in task
        write_file(out_dir / "candidate-index.tsv", "".join(f"{s.asset}\n" for s in samples).encode())
    if models:
        key = "pretrained_model_params" if task == "training" else "model_params_path"
        config[key] = _copy_models(out_dir, models)
    config.update(extra_config or {})
    write_file(out_dir / "config.yaml", yaml.safe_dump(config, allow_unicode=True).encode())
    write_file(out_dir / "env.yaml", yaml.safe_dump(_env(task, task_id)).encode())
    return out_dir


def _export_format(fmt: str, object_type: str) -> str:
    if fmt == "coco" and object_type in ("semantic", "instance"):
        return "seg-coco:raw"
    return f"{fmt}:raw"


def _write_training(out_dir: Path, train: list[Sample], val: list[Sample], class_names: Sequence[str],
                    object_type: str, fmt: str) -> None:
    samples = train + val
    if fmt == "coco":
        write_file(out_dir / "annotations" / "coco-annotations.json",
                   _coco_json(samples, class_names, object_type))
        annotation = {s.digest: "/in/annotations/coco-annotations.json" for s in samples}
    else:
        annotation = {}
        for s in samples:
            rel = f"annotations/{s.digest[-2:]}/{s.digest}.{'txt' if fmt == 'ark' else 'xml'}"
            write_file(out_dir / rel, _ark(s) if fmt == "ark" else _voc(s, class_names))
            annotation[s.digest] = f"/in/{rel}"
    for name, split in (("train-index.tsv", train), ("val-index.tsv", val)):
        write_file(out_dir / name, "".join(f"{s.asset}\t{annotation[s.digest]}\n" for s in split).encode())


def _ark(sample: Sample) -> bytes:
    return "".join(f"{sh.class_id}, {', '.join(map(str, sh.extent))}, -1.0, {sh.angle}\n"
                   for sh in sample.shapes).encode()


def _voc(sample: Sample, class_names: Sequence[str]) -> bytes:
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


def _coco_json(samples: list[Sample], class_names: Sequence[str], object_type: str) -> bytes:
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


def write_file(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
