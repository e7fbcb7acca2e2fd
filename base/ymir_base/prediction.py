"""One prediction type for every model family.

Each image's predictor (``Predictor.predict``) turns its library's output into
:class:`Prediction` objects; mining algorithms and result writers only ever see this type.

Coordinates are original-image pixels. ``boxes`` are axis-aligned ``x1, y1, x2, y2`` floats.
For rotated detections ``rboxes`` holds ``cx, cy, w, h, angle`` (the unrotated extent around the
centre, angle in radians, see ``ymir_base/geometry.py``) and ``boxes`` the axis-aligned hull of
each rotated box, for the consumers that only understand axis-aligned boxes (mining); the infer
writer takes rotated boxes from ``rboxes`` alone. :meth:`Prediction.from_rotated` builds such a
prediction, :func:`rotated_box` turns a ground-truth object into an ``rboxes`` row.

Per-object fields (``boxes``, ``scores``, ``class_ids``, ``rboxes``, ``masks``, ``class_probs``,
``mask_probs``, ``mask_boxes``) have one row per detection; their lengths are checked on
construction and :meth:`Prediction.filter` slices all of them. The other fields describe the whole
image.

The soft masks (``mask_probs``, ``mask_boxes``) are made only when a miner asks for them
(``want=MASK_PROBS``): they stay on the model's device, as torch tensors, so that the miners work
there without a copy; numpy arrays are accepted too (tests, other predictors). Every other field is
numpy.

``features`` (only when asked, ``want=FEATURES``) is one float32 vector [D] per image: the global
average of a deep feature map of the same forward pass (YOLOv5: the last backbone layer; the
OpenMMLab detectors: the deepest level ``extract_feat`` gives; mmseg: the backbone's last output).
Letterbox padding is part of the map. The engine's diversity re-ranking compares images by the
cosine of these vectors; D is the same for every image of one model.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import TYPE_CHECKING, Any

import numpy as np

from ymir_base.geometry import box_to_rotated, rotated_hull

if TYPE_CHECKING:
    from ymir_base.data.types import ObjectAnnotation

# Capabilities a predictor can offer; mining algorithms declare which they need.
BOXES = "boxes"                      # post-NMS boxes, scores, class ids
DENSE_CLASS_PROBS = "dense_class_probs"  # per-level [A, C, h, w] probability maps (ALDD)
AUGMENTED_PREDICT = "augmented_predict"  # predict() on arbitrary (augmented) images (CALD)
ROTATED_BOXES = "rotated_boxes"
SEMANTIC_PROBS = "semantic_probs"    # per-pixel softmax [K, h, w] at a reduced resolution (RSAL, RIPU)
MASK_PROBS = "mask_probs"            # instance: soft masks on the network-input grid + their boxes (apis, maskAL)
CLASS_PROBS = "class_probs"          # per-detection class-probability vectors (maskAL)
STOCHASTIC_PREDICT = "stochastic_predict"  # predict_stochastic(): MC passes with test-time DropBlock (maskAL)
FEATURES = "features"                # a pooled feature vector [D] per image (diversity re-ranking)

_PER_OBJECT = {"per_object": True}


@dataclass
class Prediction:
    """Everything one model pass says about one image."""

    image_size: tuple[int, int]                      # (height, width) of the original image
    boxes: np.ndarray = field(default_factory=lambda: np.zeros((0, 4), np.float32), metadata=_PER_OBJECT)
    scores: np.ndarray = field(default_factory=lambda: np.zeros((0,), np.float32), metadata=_PER_OBJECT)
    class_ids: np.ndarray = field(default_factory=lambda: np.zeros((0,), np.int64), metadata=_PER_OBJECT)
    # rotated detection: [N, 5] = cx, cy, w, h, angle (radians), float64
    rboxes: np.ndarray | None = field(default=None, metadata=_PER_OBJECT)
    # instance segmentation: one compressed RLE per detection ({"size": [H, W], "counts": ...}
    # as pycocotools encodes it, at image size): N full-size boolean masks per image would not
    # fit in memory across a candidate set
    masks: np.ndarray | None = field(default=None, metadata=_PER_OBJECT)
    # per-box class-probability vectors [N, C] when the head gives them (YOLOv5: the class
    # sigmoids of the anchor each detection comes from, without the objectness; want=CLASS_PROBS)
    class_probs: np.ndarray | None = field(default=None, metadata=_PER_OBJECT)
    # instance segmentation, only when a miner asks (want=MASK_PROBS): each detection's mask
    # probabilities [N, h, w] over the whole network input (``input_size``) at the mask head's
    # resolution (YOLOv5-seg: input / 4), not cropped to the box; float32, torch tensor (on the
    # model's device) or numpy array
    mask_probs: Any = field(default=None, metadata=_PER_OBJECT)
    # ... and each detection's box [N, 4] (x1, y1, x2, y2, float32) in the pixels of that grid
    mask_boxes: Any = field(default=None, metadata=_PER_OBJECT)
    # dense maps for ALDD: one tensor per head level, shaped [A, C, h, w], probabilities in
    # [0, 1] (for YOLOv5: objectness x class probability per anchor). Torch tensors or arrays.
    dense_class_probs: list[Any] | None = None
    # the network input size (h, w) the dense maps and the soft masks cover (letterboxed image)
    input_size: tuple[int, int] | None = None
    # semantic segmentation: [H, W] class index per pixel at image size, -1 where no class
    label_map: np.ndarray | None = None
    # semantic segmentation, only when a miner asks (want=SEMANTIC_PROBS): softmax [K, h, w]
    # (float32 or float16) over all K model outputs (a training-only background too), at a
    # resolution that keeps the aspect ratio, h <= H, w <= W, longest side <= 1024
    semantic_probs: np.ndarray | None = None
    # only when asked (want=FEATURES): the image's pooled feature vector [D], float32
    features: np.ndarray | None = None

    def __post_init__(self) -> None:
        self.boxes = np.asarray(self.boxes, dtype=np.float32).reshape(-1, 4)
        self.scores = np.asarray(self.scores, dtype=np.float32).reshape(-1)
        self.class_ids = np.asarray(self.class_ids, dtype=np.int64).reshape(-1)
        n = len(self.boxes)
        if self.features is not None:
            self.features = np.asarray(self.features, dtype=np.float32)
            if self.features.ndim != 1:
                raise ValueError(f"features must be one vector [D] per image, got shape {self.features.shape}")
        if self.rboxes is not None:
            self.rboxes = np.asarray(self.rboxes, dtype=np.float64)
            if self.rboxes.size == 0:
                self.rboxes = self.rboxes.reshape(0, 5)
            if self.rboxes.ndim != 2 or self.rboxes.shape[1] != 5:
                raise ValueError(f"rboxes must be [N, 5] (cx, cy, w, h, angle), got shape {self.rboxes.shape}")
        if self.class_probs is not None:
            self.class_probs = np.asarray(self.class_probs)
            if self.class_probs.size == 0 and self.class_probs.ndim != 2:
                self.class_probs = self.class_probs.reshape(0, 0)
            if self.class_probs.ndim != 2:
                raise ValueError(f"class_probs must be [N, C], got shape {self.class_probs.shape}")
        if self.masks is not None:
            self.masks = np.asarray(self.masks)
            if self.masks.ndim < 1:
                raise ValueError("masks must be [N, ...] (one mask per detection)")
        if self.mask_probs is not None:
            self.mask_probs = _array(self.mask_probs)
            if self.mask_probs.ndim != 3:
                raise ValueError(f"mask_probs must be [N, h, w], got shape {tuple(self.mask_probs.shape)}")
        if self.mask_boxes is not None:
            self.mask_boxes = _array(self.mask_boxes)
            if self.mask_boxes.ndim != 2 or self.mask_boxes.shape[1] != 4:
                raise ValueError(f"mask_boxes must be [N, 4], got shape {tuple(self.mask_boxes.shape)}")
        lengths = {name: len(value) for name, value in self.per_object().items()}
        if any(length != n for length in lengths.values()):
            raise ValueError("per-detection fields differ in length: "
                             + ", ".join(f"{name} ({length})" for name, length in lengths.items()))

    def __len__(self) -> int:
        return len(self.boxes)

    @classmethod
    def per_object_fields(cls) -> tuple[str, ...]:
        """Names of the fields with one row per detection."""
        return tuple(f.name for f in fields(cls) if f.metadata.get("per_object"))

    def per_object(self) -> dict[str, np.ndarray]:
        """The per-detection fields that are set, by name."""
        return {name: value for name in self.per_object_fields()
                if (value := getattr(self, name)) is not None}

    @classmethod
    def from_rotated(cls, image_size: tuple[int, int], rboxes: Any, scores: Any, class_ids: Any,
                     **kwargs: Any) -> Prediction:
        """A rotated detection: ``rboxes`` [N, 5] as given, ``boxes`` their axis-aligned hulls
        clipped to the image."""
        rboxes = np.asarray(rboxes, np.float64).reshape(-1, 5)
        h, w = image_size
        hull = rotated_hull(rboxes)
        hull[:, 0::2] = hull[:, 0::2].clip(0, w)
        hull[:, 1::2] = hull[:, 1::2].clip(0, h)
        return cls(image_size=image_size, boxes=hull, scores=scores, class_ids=class_ids, rboxes=rboxes,
                   **kwargs)

    def filter(self, keep: np.ndarray) -> Prediction:
        """A copy holding only the detections selected by a boolean mask or index array; the
        per-image fields are shared."""
        keep = np.asarray(keep)
        if keep.dtype != bool:
            keep = keep.astype(np.intp)  # an empty list is a float array
        values = {f.name: getattr(self, f.name) for f in fields(self)}
        values.update({name: value[keep] if isinstance(value, np.ndarray) else value[_torch_index(keep, value)]
                       for name, value in self.per_object().items()})
        return type(self)(**values)


def _array(value: Any) -> Any:
    """A torch tensor as it is (no copy off its device), anything else as a numpy array."""
    return value if hasattr(value, "device") and hasattr(value, "ndim") else np.asarray(value)


def _torch_index(keep: np.ndarray, tensor: Any) -> Any:
    """A numpy selection as an index tensor on the tensor's device."""
    import torch

    return torch.as_tensor(keep, device=tensor.device)


def rotated_box(obj: ObjectAnnotation) -> np.ndarray:
    """The ``rboxes`` row ``[cx, cy, w, h, angle]`` of a ground-truth object: its ``bbox`` is the
    unrotated extent (x2/y2 exclusive) around the centre, ``angle`` the rotation in radians."""
    return box_to_rotated(obj.bbox, obj.angle)
