"""Every image's /img-man files: what YMIR reads with `docker run IMAGE cat /img-man/...`.

A template must load as a flat YAML dict (YMIR's forms are key/value rows), leave out the keys the
platform sets, and hold exactly the parameter schema the image serves the object type with (its
params yaml) with its defaults.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from _docker_helpers import REPO, image_dockerfiles

from ymir_base.engine.registry import backend_class

TASKS = ("training", "mining", "infer")
PLATFORM_KEYS = {"gpu_id", "task_id", "class_names", "pretrained_model_params", "model_params_path"}
OBJECT_TYPE_DIRS = {2: "det", 3: "semantic-seg", 4: "instance-seg", 50: "multi-modal"}
IMAGES = list(image_dockerfiles())


def img_man(image: str) -> Path:
    return REPO / "images" / image / "img-man"


def load(path: Path) -> Any:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def object_types(image: str) -> list[int]:
    value = load(img_man(image) / "manifest.yaml")["object_type"]
    return value if isinstance(value, list) else [value]


def template_paths(image: str) -> dict[tuple[int, str], Path]:
    """(object type, task) -> template path, by YMIR's layout rules (§8.2)."""
    manifest = img_man(image) / "manifest.yaml"
    if not manifest.is_file():
        return {}
    raw = load(manifest).get("object_type")
    per_type_dirs = isinstance(raw, list)  # YMIR 2.4+: one folder per object type
    found = {}
    for object_type in raw if per_type_dirs else [raw]:
        folder = img_man(image) / OBJECT_TYPE_DIRS.get(object_type, "?") if per_type_dirs else img_man(image)
        for task in TASKS:
            path = folder / f"{task}-template.yaml"
            if path.is_file():
                found[(object_type, task)] = path
    return found


def schema(image: str, object_type: int) -> dict[str, dict[str, dict[str, Any]]]:
    """The parameter schema the image's backend serves this object type with."""
    backend = backend_class(image)
    return load(backend.params_file_for(backend.kind_for(object_type)))


TEMPLATES = [
    pytest.param(image, object_type, task, path, id=f"{image}-{object_type}-{task}")
    for image in IMAGES
    for (object_type, task), path in template_paths(image).items()
]


@pytest.mark.parametrize("image", IMAGES)
def test_manifest_declares_the_object_type(image: str) -> None:
    manifest = load(img_man(image) / "manifest.yaml")
    assert isinstance(manifest, dict) and "object_type" in manifest
    assert object_types(image) and set(object_types(image)) <= set(OBJECT_TYPE_DIRS)


@pytest.mark.parametrize("image", IMAGES)
def test_image_has_templates(image: str) -> None:
    assert template_paths(image), f"images/{image}/img-man has no *-template.yaml: YMIR would refuse the image"


@pytest.mark.parametrize(("image", "object_type", "task", "path"), TEMPLATES)
def test_template_is_a_flat_dict_without_platform_keys(image: str, object_type: int, task: str, path: Path) -> None:
    template = load(path)
    assert isinstance(template, dict) and template
    nested = {key: value for key, value in template.items() if isinstance(value, dict | list)}
    assert not nested, f"YMIR templates must be flat: {nested}"
    assert not PLATFORM_KEYS & set(template), f"platform keys belong to YMIR: {PLATFORM_KEYS & set(template)}"


@pytest.mark.parametrize(("image", "object_type", "task", "path"), TEMPLATES)
def test_template_matches_the_parameter_schema(image: str, object_type: int, task: str, path: Path) -> None:
    template = load(path)
    specs = schema(image, object_type)[task]
    assert set(template) == set(specs) - PLATFORM_KEYS
    defaults = {key: spec["default"] for key, spec in specs.items() if key in template}
    wrong = {key: (template[key], default) for key, default in defaults.items() if template[key] != default}
    assert not wrong, f"template value != schema default: {wrong}"
    mistyped = {key: value for key, value in template.items() if type(value).__name__ != specs[key]["type"]}
    assert not mistyped, f"template values of another type than the schema's: {mistyped}"


@pytest.mark.parametrize("image", IMAGES)
def test_every_schema_task_has_a_template(image: str) -> None:
    found = template_paths(image)
    for object_type in object_types(image):
        tasks = {task for (typ, task) in found if typ == object_type}
        assert {task for task in TASKS if schema(image, object_type).get(task)} == tasks, object_type


@pytest.mark.parametrize("image", IMAGES)
def test_manifest_lists_the_object_types_the_backend_serves(image: str) -> None:
    assert sorted(object_types(image)) == sorted(k.object_type for k in backend_class(image).served())
