"""The yolov5 image's backend: the ``yolov5`` package's detection (YOLOv5 v7.0 models, n/s/m/l/x
and P6), as the shared YOLOv5 layer implements it."""

from __future__ import annotations

from pathlib import Path

from ymir_yolov5lib.backends import Yolov5DetectionBackend

HERE = Path(__file__).resolve().parent


class Yolov5Backend(Yolov5DetectionBackend):
    name = "yolov5"
    img_man_dir = HERE.parent / "img-man"
