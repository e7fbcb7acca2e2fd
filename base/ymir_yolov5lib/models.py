"""YOLOv5 model names -> architecture files of the ``yolov5`` package."""

from __future__ import annotations

from pathlib import Path

import yolov5

PACKAGE_DIR = Path(yolov5.__file__).parent
P5 = ("yolov5n", "yolov5s", "yolov5m", "yolov5l", "yolov5x")
P6 = ("yolov5n6", "yolov5s6", "yolov5m6", "yolov5l6", "yolov5x6")


def model_yaml(name: str) -> Path:
    if name in P5:
        return PACKAGE_DIR / "models" / f"{name}.yaml"
    if name in P6:
        return PACKAGE_DIR / "models" / "hub" / f"{name}.yaml"
    raise KeyError(name)

