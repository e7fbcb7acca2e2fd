"""Image name -> backend class. Images declare their backend as an entry point of the group
``ymir.executors`` (see pyproject.toml), the way MMEngine's child registries declare themselves,
so the base names no image. Backends are imported lazily: the base never imports the torch
libraries of images that are not used."""

from __future__ import annotations

from functools import cache
from importlib.metadata import EntryPoint, entry_points
from pathlib import Path

from ymir_base.engine.backend import Backend
from ymir_base.errors import ConfigError
from ymir_base.protocol.context import ImageSpec
from ymir_base.protocol.params import ParamSchema

GROUP = "ymir.executors"


@cache
def _declared() -> dict[str, EntryPoint]:
    return {ep.name: ep for ep in entry_points(group=GROUP)}


def images() -> list[str]:
    """The names of every installed image backend."""
    return sorted(_declared())


def backend_class(image: str) -> type[Backend]:
    declared = _declared()
    if image not in declared:
        raise ConfigError(f"unknown image {image!r}; installed images: {', '.join(images()) or 'none'} "
                          f"(entry point group {GROUP!r})")
    cls = declared[image].load()
    if not (isinstance(cls, type) and issubclass(cls, Backend)):
        raise ConfigError(f"entry point {image!r} of group {GROUP!r} is {cls!r}, not a Backend subclass")
    return cls


def image_spec(image: str, img_man_dir: Path | None = None) -> ImageSpec:
    cls = backend_class(image)
    return ImageSpec(name=image, img_man_dir=Path(img_man_dir or cls.img_man_dir),
                     schemas={k.object_type: ParamSchema.load(cls.params_file_for(k)) for k in cls.served()})
