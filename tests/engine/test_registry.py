"""Images declare their backends as entry points; the base names none of them."""

from __future__ import annotations

import re
from importlib.metadata import EntryPoint
from pathlib import Path

import pytest

from ymir_base.engine import registry
from ymir_base.engine.backend import Backend
from ymir_base.errors import ConfigError

REPO = Path(__file__).resolve().parents[2]


def test_every_image_with_a_folder_is_installed_as_an_entry_point():
    folders = sorted(p.parent.parent.name for p in (REPO / "images").glob("*/ymir_*/backend.py"))
    assert folders and registry.images() == folders
    for image in folders:
        cls = registry.backend_class(image)
        assert issubclass(cls, Backend) and cls.name == image


def test_unknown_image_names_the_installed_ones():
    with pytest.raises(ConfigError,
                       match=r"unknown image 'nope'; installed images: mmdet, mmrotate, mmyolo, seg-in-one, yolov5"):
        registry.backend_class("nope")


def test_an_entry_point_that_is_not_a_backend_is_refused(monkeypatch):
    fake = {"fake": EntryPoint("fake", "ymir_base.errors:ConfigError", registry.GROUP)}
    monkeypatch.setattr(registry, "_declared", lambda: fake)
    with pytest.raises(ConfigError, match="not a Backend subclass"):
        registry.backend_class("fake")


def test_the_base_names_no_image_package():
    pattern = re.compile(r"\bymir_(yolov5|mmdet|mmyolo|mmrotate|seg_in_one|seginone|seg)\b")
    offenders = [f"{p.relative_to(REPO)}: {m.group(0)}" for p in (REPO / "base").rglob("*.py")
                 for m in pattern.finditer(p.read_text())]
    assert offenders == []


def test_each_manifest_lists_the_object_types_its_backend_serves():
    for image in registry.images():
        served = [k.object_type for k in registry.backend_class(image).served()]
        assert registry.image_spec(image).object_types == served, image


def test_a_backend_refuses_a_kind_it_does_not_serve():
    from ymir_base.errors import ObjectTypeError

    with pytest.raises(ObjectTypeError, match=r"object type 3 is not served by the yolov5 image, which serves "
                                              r"2 \(detection\)"):
        registry.backend_class("yolov5").kind_for(3)
