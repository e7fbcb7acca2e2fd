"""One prediction type for every model family.

Each image's predictor (``Predictor.predict``) turns its library's output into
:class:`Prediction` objects; mining algorithms and result writers only ever see this type.

Coordinates are original-image pixels. ``boxes`` are axis-aligned ``x1, y1, x2, y2`` floats
(for rotated detections: the axis-aligned hull of each rotated box).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

# Capabilities a predictor can offer; mining algorithms declare which they need.
BOXES = "boxes"                      # post-NMS boxes, scores, class ids
DENSE_CLASS_PROBS = "dense_class_probs"  # per-level [A, C, h, w] probability maps (ALDD)
AUGMENTED_PREDICT = "augmented_predict"  # predict() on arbitrary (augmented) images (CALD)
ROTATED_BOXES = "rotated_boxes"


@dataclass
class Prediction:
    """Everything one model pass says about one image."""

    image_size: tuple[int, int]                      # (height, width) of the original image
    boxes: np.ndarray = field(default_factory=lambda: np.zeros((0, 4), np.float32))
    scores: np.ndarray = field(default_factory=lambda: np.zeros((0,), np.float32))
    class_ids: np.ndarray = field(default_factory=lambda: np.zeros((0,), np.int64))
    # rotated detection: [N, 5] = cx, cy, w, h, angle (radians)
    rboxes: np.ndarray | None = None
    # instance segmentation: [N, H, W] boolean masks at image size
    masks: np.ndarray | None = None
    # per-box class-probability vectors [N, C] when the head gives them
    class_probs: np.ndarray | None = None
    # dense maps for ALDD: one tensor per head level, shaped [A, C, h, w], probabilities in
    # [0, 1] (for YOLOv5: objectness x class probability per anchor). Torch tensors or arrays.
    dense_class_probs: list[Any] | None = None
    # the network input size (h, w) the dense maps cover (letterboxed image)
    input_size: tuple[int, int] | None = None
    # semantic segmentation: [C, H, W] class probabilities at image size
    semantic_probs: np.ndarray | None = None

    def __post_init__(self) -> None:
        self.boxes = np.asarray(self.boxes, dtype=np.float32).reshape(-1, 4)
        self.scores = np.asarray(self.scores, dtype=np.float32).reshape(-1)
        self.class_ids = np.asarray(self.class_ids, dtype=np.int64).reshape(-1)
        n = len(self.boxes)
        if len(self.scores) != n or len(self.class_ids) != n:
            raise ValueError(f"boxes ({n}), scores ({len(self.scores)}) and class_ids "
                             f"({len(self.class_ids)}) differ in length")

    def __len__(self) -> int:
        return len(self.boxes)
