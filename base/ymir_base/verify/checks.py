"""Conformance checks of an executor's outputs against protocol §6, §7 and the verifier (§9.6).

Each check returns a list of problems; an empty list means it passed. ``ymir-exec verify`` and
the tests use the same functions.
"""

from __future__ import annotations

import itertools
import json
import math
import re
from pathlib import Path

import yaml

from ymir_base.results.training import MAIN_METRIC, METRICS, STAGE_NAME

MONITOR_LINE = re.compile(r"^[^\t]+\t\d+(\.\d+)?\t(0|1)(\.\d+)?\t[1234](\t\d+(\t.*)?)?$")


def check_monitor(path: Path, *, expect_error: bool = False) -> list[str]:
    if not path.is_file():
        return [f"{path} does not exist"]
    lines = path.read_text(encoding="utf-8").splitlines()
    if not lines:
        return [f"{path} is empty"]
    first = lines[0]
    problems = []
    if not MONITOR_LINE.match(first):
        problems.append(f"first line of {path.name} is not "
                        f"'task_id<TAB>ts<TAB>percent<TAB>state[<TAB>code]': {first!r}")
        return problems
    fields = first.split("\t")
    percent, state = float(fields[2]), int(fields[3])
    code = int(fields[4]) if len(fields) > 4 else 0
    if state == 3:
        problems.append("monitor state 3 (done) is written by YMIR only")
    if expect_error:
        if state != 4 or not 300000 <= code < 400000:
            problems.append(f"expected state 4 with a 3000xx code, got state {state} code {code}")
    elif state != 2 or code != 0 or percent != 1.0:
        problems.append(f"expected state 2, code 0, percent 1.0 at the end, got {state}, {code}, {percent}")
    return problems


def check_training_result(models_dir: Path, object_type: int = 2, tensorboard_dir: Path | None = None) -> list[str]:
    path = models_dir / "result.yaml"
    if not path.is_file():
        return [f"{path} does not exist"]
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        return [f"{path} is not valid YAML: {exc}"]
    problems = []
    stages = data.get("model_stages") if isinstance(data, dict) else None
    if not isinstance(stages, dict) or not stages:
        return [f"{path}: model_stages is missing or empty"]
    metric = MAIN_METRIC[object_type]
    for name, stage in stages.items():
        where = f"{path.name}: stage {name}"
        if not STAGE_NAME.match(str(name)):
            problems.append(f"{where}: name is not an identifier")
        for key in ("stage_name", "files", "timestamp", metric):
            if key not in stage:
                problems.append(f"{where}: key {key} missing")
        if stage.get("stage_name") != name:
            problems.append(f"{where}: stage_name {stage.get('stage_name')!r} differs from the key")
        for key in (*METRICS[object_type], "tp", "fp", "fn"):
            if key in stage:
                value = stage[key]
                if not isinstance(value, int | float) or isinstance(value, bool) or not math.isfinite(value):
                    problems.append(f"{where}: {key}={value!r} is not a plain number")
                elif key in ("tp", "fp", "fn") and (value < 0 or int(value) != value):
                    problems.append(f"{where}: {key}={value} is not an integer >= 0")
                elif key not in ("tp", "fp", "fn") and not 0 <= value <= 1:
                    problems.append(f"{where}: {key}={value} outside [0, 1]")
        files = stage.get("files")
        if not isinstance(files, list) or not files:
            problems.append(f"{where}: files must be a non-empty list")
            continue
        for f in files:
            if Path(str(f)).is_absolute():
                problems.append(f"{where}: file {f} is absolute")
            elif not ((models_dir / name / f).is_file() or (models_dir / f).is_file()):
                problems.append(f"{where}: file {f} exists in neither {name}/ nor the models folder")
    if data.get("best_stage_name") not in stages:
        problems.append(f"{path.name}: best_stage_name {data.get('best_stage_name')!r} is not a stage")
    for section, names in (data.get("attachments") or {}).items():
        for f in names:
            if not (models_dir / "attachments" / section / f).is_file():
                problems.append(f"{path.name}: attachment {section}/{f} does not exist")
    if tensorboard_dir is not None and (not tensorboard_dir.is_dir() or not any(tensorboard_dir.iterdir())):
        problems.append(f"{tensorboard_dir} holds no tensorboard file")
    return problems


def check_infer_result(path: Path, candidates: list[str], class_names: list[str], kind: str = "detection") -> list[str]:
    """infer-result.json for the object kind (detection, rotated, semantic, instance)."""
    if not path.is_file():
        return [f"{path} does not exist"]
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        return [f"{path} is not valid JSON: {exc}"]
    if kind in ("semantic", "instance"):
        return _check_segmentation(path.name, data, candidates, class_names, instance=kind == "instance")[:20]
    detection = data.get("detection") if isinstance(data, dict) else None
    if not isinstance(detection, dict):
        return [f"{path.name}: top-level key 'detection' missing"]
    problems = []
    expected = {c.rsplit("/", 1)[-1] for c in candidates}
    if set(detection) != expected:
        missing, extra = expected - set(detection), set(detection) - expected
        problems.append(f"{path.name}: keys differ from the candidates (missing {sorted(missing)[:3]}, "
                        f"extra {sorted(extra)[:3]})")
    for name, entry in detection.items():
        boxes = entry.get("boxes") if isinstance(entry, dict) else None
        if not isinstance(boxes, list):
            problems.append(f"{path.name}: {name}: 'boxes' list missing")
            continue
        for b in boxes:
            box = b.get("box", {})
            if set(box) - {"x", "y", "w", "h", "rotate_angle"} or not {"x", "y", "w", "h"} <= set(box):
                problems.append(f"{path.name}: {name}: box keys {sorted(box)}")
            elif not all(isinstance(box[k], int) for k in "xywh") or box["w"] <= 0 or box["h"] <= 0:
                problems.append(f"{path.name}: {name}: box {box} must hold integers with w, h > 0")
            angle = box.get("rotate_angle")
            if kind == "rotated" and not (isinstance(angle, int | float) and math.isfinite(angle)):
                problems.append(f"{path.name}: {name}: rotated box {box} needs a finite rotate_angle")
            if b.get("class_name") not in class_names:
                problems.append(f"{path.name}: {name}: class_name {b.get('class_name')!r} not in class_names")
            score = b.get("score")
            if not isinstance(score, int | float) or not 0 <= score <= 1:
                problems.append(f"{path.name}: {name}: score {score!r} not in [0, 1]")
    return problems[:20]


def _check_segmentation(name: str, data: object, candidates: list[str], class_names: list[str], *,
                        instance: bool) -> list[str]:
    """Protocol §7.2.2 and what YMIR's importer needs (issue rules: one image per candidate, no
    background category, compressed-RLE strings only, integer bbox with w, h >= 1, integer area
    equal to the mask's pixel count; semantic: one iscrowd-1 annotation per image and class;
    instance: iscrowd 0 and a confidence)."""
    from pycocotools import mask as mask_utils

    if not isinstance(data, dict) or set(data) != {"images", "categories", "annotations"}:
        keys = sorted(data) if isinstance(data, dict) else type(data).__name__
        return [f"{name}: top-level keys must be images, categories, annotations (got {keys})"]
    problems = []
    images = {}
    for image in data["images"]:
        if image.get("id") in images:
            problems.append(f"{name}: image id {image.get('id')} repeats")
        images[image.get("id")] = image
        if not all(isinstance(image.get(k), int) and image[k] >= 0 for k in ("width", "height")):
            problems.append(f"{name}: image {image.get('file_name')}: width/height must be integers")
    names = sorted(str(i.get("file_name")) for i in images.values())
    if names != sorted(c.rsplit("/", 1)[-1] for c in candidates):
        problems.append(f"{name}: images' file_names are not one per candidate basename")
    categories = [(c.get("id"), c.get("name")) for c in data["categories"]]
    if categories != list(enumerate(class_names)):
        problems.append(f"{name}: categories {categories} must be (index, class name) for class_names, "
                        "without background")
    seen_ids, seen_classes = set(), set()
    for ann in data["annotations"]:
        where = f"{name}: annotation {ann.get('id')}"
        if ann.get("id") in seen_ids:
            problems.append(f"{where}: id repeats")
        seen_ids.add(ann.get("id"))
        image = images.get(ann.get("image_id"))
        if image is None:
            problems.append(f"{where}: image_id {ann.get('image_id')} is not an image")
            continue
        if not (isinstance(ann.get("category_id"), int) and 0 <= ann["category_id"] < len(class_names)):
            problems.append(f"{where}: category_id {ann.get('category_id')!r} is not a class index")
        seg = ann.get("segmentation")
        if not (isinstance(seg, dict) and set(seg) == {"size", "counts"} and isinstance(seg["counts"], str)):
            problems.append(f"{where}: segmentation must be {{size, counts}} with a compressed RLE string")
            continue
        if list(seg["size"]) != [image["height"], image["width"]]:
            problems.append(f"{where}: mask size {seg['size']} is not the image's [h, w]")
            continue
        rle = {"size": list(seg["size"]), "counts": seg["counts"].encode("ascii")}
        bbox = ann.get("bbox")
        if not (isinstance(bbox, list) and len(bbox) == 4 and all(isinstance(v, int) for v in bbox)
                and bbox[2] >= 1 and bbox[3] >= 1):
            problems.append(f"{where}: bbox {bbox} must be 4 integers with w, h >= 1")
        area = int(mask_utils.area(rle))
        if not isinstance(ann.get("area"), int) or ann["area"] != area or area == 0:
            problems.append(f"{where}: area {ann.get('area')!r} is not the mask's {area} pixels (> 0)")
        if instance:
            score = ann.get("confidence")
            if ann.get("iscrowd") != 0 or not (isinstance(score, int | float) and 0 <= score <= 1):
                problems.append(f"{where}: instance masks need iscrowd 0 and a confidence in [0, 1]")
        else:
            key = (ann["image_id"], ann.get("category_id"))
            if ann.get("iscrowd") != 1 or key in seen_classes or "confidence" in ann:
                problems.append(f"{where}: semantic masks are one iscrowd-1 annotation per image and class")
            seen_classes.add(key)
    return problems


def check_mining_result(path: Path, candidates: list[str]) -> list[str]:
    if not path.is_file():
        return [f"{path} does not exist"]
    lines = path.read_text(encoding="utf-8").split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    problems = []
    scores, paths = [], []
    for i, line in enumerate(lines, 1):
        parts = line.split("\t")
        if len(parts) != 2 or len(line.split()) != 2:
            problems.append(f"{path.name} line {i}: expected 'path<TAB>score', got {line!r}")
            continue
        try:
            scores.append(float(parts[1]))
        except ValueError:
            problems.append(f"{path.name} line {i}: score {parts[1]!r} is not a number")
        paths.append(parts[0])
    if sorted(paths) != sorted(candidates):
        problems.append(f"{path.name}: {len(paths)} lines for {len(candidates)} candidates, or other paths")
    if any(a < b for a, b in itertools.pairwise(scores)):
        problems.append(f"{path.name}: scores are not sorted highest first")
    return problems
