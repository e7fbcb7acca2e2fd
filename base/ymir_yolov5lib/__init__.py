"""The layer every image built on the ``yolov5`` package shares (the yolov5 image today; the
detection part of seg-in-one next): training through yolov5's own trainer, the batched
predictor, model names. Importing it prepares the process for the ``yolov5`` package (offline
fonts, config dir, checkpoint loading), which reads its settings at import time. It never
imports an image package."""

from ymir_yolov5lib import runtime

runtime.prepare()
