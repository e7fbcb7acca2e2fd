"""Settings with which YOLOv5-seg really learns the sample shapes' masks on a CPU in minutes
(``ymir-exec demo`` of an image serving instance segmentation, bench/seg_instance_learning.py).

Why these values: yolov5n-seg starts from random weights (nothing is downloaded), and the
seg trainer (``yolov5/segment/train.py``) accumulates gradients up to a nominal batch of 64
images per optimiser step, after a warm-up of at least 100 batches. On the demo's 64 training
images one epoch is therefore one optimiser step once warm-up is over, whatever the batch size:
40 epochs at batch 4 make about 50 steps. The detection demo's recipe (backends.py, ``HYP_CHANGES``)
learns in so few steps, and does here too (best maskAP 0.69, 0.74 and 0.87 after 40 epochs in
three runs, see bench/README.md): AdamW at lr0 0.004 decaying to a tenth, a one-epoch warm-up
without the SGD bias boost, no mosaic and milder scaling (the shapes are only 16-32 px), and
milder saturation/brightness jitter, since colour tells the sample's classes apart.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ymir_yolov5lib.backends import HYP_CHANGES, demo_hyp

__all__ = ["HYP_CHANGES", "instance_demo_settings"]

MODEL = "yolov5n-seg"
EPOCHS = 40
IMG_SIZE = 160  # the sample generator's default image, 160 x 128, at its own scale
# data loading in the training process: on 64 small images the loader processes cost more than
# they give (measured on 2 idle cores: 14 epochs in 80 s without workers, 4 epochs in 270 s with 2)
WORKERS = 0


def instance_demo_settings(work_dir: Path) -> dict[str, dict[str, Any]]:
    """Per task settings (keys of the seed's instance tables) and the hyp file they name, which
    is written to ``work_dir``: yolov5's ``hyp.scratch-low.yaml`` with ``HYP_CHANGES``.
    Infer and mining keep the templates' thresholds."""
    path = demo_hyp(work_dir, "instance-demo-hyp.yaml")
    size = {"img_size": IMG_SIZE}
    return {
        "training": {"model": MODEL, "epochs": EPOCHS, **size, "batch_size_per_gpu": 4, "num_workers_per_gpu": WORKERS,
                     "args_options": f"--optimizer AdamW --hyp {path}"},
        "infer": {**size, "batch_size_per_gpu": 16},
        "mining": {**size, "batch_size_per_gpu": 16},
    }
