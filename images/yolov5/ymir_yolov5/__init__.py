"""The yolov5 image's backend. Importing it prepares the process for the ``yolov5`` package
(offline fonts, config dir, checkpoint loading), which reads its settings at import time."""

from ymir_yolov5 import runtime

runtime.prepare()
