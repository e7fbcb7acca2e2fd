"""Per-head adapters: what a detection head's raw outputs mean.

Every OpenMMLab dense head returns its per-level class logits first (``[B, A*C, h, w]``) and
decodes its own outputs with ``predict_by_feat``. What else it returns differs: YOLOX, YOLOv5 and
YOLOv7 heads add objectness maps, rotated heads add angle maps, others add box distributions. The
adapter names which output is objectness, so dense class maps (ALDD) never multiply class
probabilities by an angle or a box regression. Heads are matched by class name along the MRO, so
a subclass (e.g. a rotated RTMDet head) gets its own entry or its parent's.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch


@dataclass(frozen=True)
class HeadAdapter:
    objectness: int | None = None  # index of the objectness maps among the head's outputs
    # rows per prior before the class rows in a convolution that predicts the classes (YOLOv5:
    # x, y, w, h, objectness); a start's other classes keep these (ymir_openmmlab/head_fit.py)
    rows_before_classes: int = 0

    def decode(self, head: Any, outs: tuple[Any, ...], metas: list[dict]) -> list[Any]:
        """Boxes, scores and labels per image in original-image pixels: the head's own decoding
        and NMS with its test_cfg."""
        return head.predict_by_feat(*outs, batch_img_metas=metas, rescale=True)

    def class_maps(self, outs: tuple[Any, ...], num_classes: int) -> list[torch.Tensor]:
        """Per level ``[B, A, C, h, w]`` class probabilities, times objectness where the head has it."""
        objectness = None
        if self.objectness is not None:
            if len(outs) <= self.objectness or outs[self.objectness] is None:
                raise ValueError(f"the head returned {len(outs)} outputs, without objectness at index "
                                 f"{self.objectness}: its adapter in ymir_openmmlab/heads.py is wrong")
            objectness = outs[self.objectness]
        maps = []
        for level, cls in enumerate(outs[0]):
            b, channels, h, w = cls.shape
            probs = cls.float().sigmoid().view(b, channels // num_classes, num_classes, h, w)
            if objectness is not None:
                probs = probs * objectness[level].float().sigmoid().view(b, -1, 1, h, w)
            maps.append(probs)
        return maps


# head class name -> adapter, matched along the MRO (most specific first). mmyolo derives
# every head from YOLOv5Head, so the heads without objectness are listed explicitly.
ADAPTERS: dict[str, HeadAdapter] = {
    "YOLOXHead": HeadAdapter(objectness=2),
    "YOLOv5Head": HeadAdapter(objectness=2, rows_before_classes=5),  # also YOLOv7Head and YOLOv5InsHead
    "YOLOv6Head": HeadAdapter(),  # also PPYOLOEHead
    "YOLOv8Head": HeadAdapter(),
    "RTMDetHead": HeadAdapter(),  # mmyolo's, also its rotated and instance heads (angles, kernels)
    "RotatedRTMDetHead": HeadAdapter(),  # mmrotate's: (cls_scores, bbox_preds, angle_preds)
}
DEFAULT = HeadAdapter()


def adapter_for(head: Any) -> HeadAdapter:
    for cls in type(head).__mro__:
        if cls.__name__ in ADAPTERS:
            return ADAPTERS[cls.__name__]
    return DEFAULT
