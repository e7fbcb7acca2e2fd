"""The seg-in-one image: detection with YOLOv5 (object type 2), semantic segmentation with
FastSCNN and HRNet through mmsegmentation (3) and instance segmentation with YOLOv5-seg (4). Each
task goes to the backend of its object type; the YOLOv5 ones are the shared layer's, the yolov5
image's detection included, so the image offers the same models, options and miners for it.
"""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

from ymir_base.engine.backend import Backend
from ymir_base.engine.composite import KindsBackend
from ymir_seginone.semantic import SemanticBackend
from ymir_yolov5lib.backends import Yolov5DetectionBackend, Yolov5SegBackend

NAME = "seg-in-one"
IMG_MAN = Path(__file__).resolve().parent.parent / "img-man"


class DetectionBackend(Yolov5DetectionBackend):
    name = NAME
    img_man_dir = IMG_MAN
    weights_folder = "yolov5"  # the Dockerfile bakes the yolov5 image's manifest at /weights/yolov5


class InstanceBackend(Yolov5SegBackend):
    name = NAME
    img_man_dir = IMG_MAN


class SegInOneBackend(KindsBackend):
    name = NAME
    img_man_dir = IMG_MAN
    parts: ClassVar[dict[str, type[Backend]]] = {
        "detection": DetectionBackend, "semantic": SemanticBackend, "instance": InstanceBackend}
