"""Image name -> backend class. Backends are imported lazily: the base never imports torch
libraries of images that are not used."""

from __future__ import annotations

import importlib
from pathlib import Path

from ymir_base.engine.backend import Backend
from ymir_base.errors import ConfigError
from ymir_base.protocol.context import ImageSpec
from ymir_base.protocol.params import ParamSchema

BACKENDS = {
    "yolov5": "ymir_yolov5.backend:Yolov5Backend",
    "mmdet": "ymir_mmdet.backend:MmdetBackend",
    "mmyolo": "ymir_mmyolo.backend:MmyoloBackend",
}


def backend_class(image: str) -> type[Backend]:
    try:
        target = BACKENDS[image]
    except KeyError:
        raise ConfigError(f"unknown image {image!r}; known images: {', '.join(BACKENDS)}") from None
    module, _, attr = target.partition(":")
    return getattr(importlib.import_module(module), attr)


def image_spec(image: str, img_man_dir: Path | None = None) -> ImageSpec:
    cls = backend_class(image)
    return ImageSpec(name=image, img_man_dir=Path(img_man_dir or cls.img_man_dir),
                     schema=ParamSchema.load(cls.params_file))
