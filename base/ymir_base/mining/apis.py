"""``apis``: mask-entropy mining for instance segmentation (docs/mining.md §2.7).

APIS (Tang et al., ECCV 2022) asks, for each predicted instance, about the in-box location whose
mask probability has the highest entropy. Image-level mining needs one number per image; ours
keeps the paper's unit, the instance and its box (default):

    u_i   = mean over the mask-grid pixels inside box i of H_b(p_i), in bits (so u_i in [0, 1])
    score = Σ_i u_i                      (0.0 for an image without detections)

``p_i`` is detection i's mask probability over the network-input grid at the mask head's
resolution (``Prediction.mask_probs``), and "inside box i" means the pixels of that grid whose
centres lie in ``mask_boxes[i]`` (``_common.box_pixels``). The sum, as in our box ``entropy``
miner, makes an image with more uncertain instances rank higher: it has more to label.

``apis_ymir_compat: true`` reproduces the old yolov5-seg port: each detection's probability map is
cropped to its box (zero outside), bilinearly upsampled to the network input size
(align_corners=False; x4 for YOLOv5-seg), averaged pixel-wise over the image's detections into one
map m̄, and the score is Σ_pixels H_b(m̄) with log2 and ε = 1e-12; no detections score -10.
Averaging divides non-overlapping instances' probabilities by their count, so that score is not
monotonic in the number of instances (the reason it is not the default).

Both run on the device the masks are on, over blocks of detections so that memory stays bounded.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import numpy as np
import torch
import torch.nn.functional as F

from ymir_base.mining._common import binary_entropy, box_pixels, param_bool
from ymir_base.mining.base import AugmentPredictor, MiningAlgorithm, StochasticPredictor, register
from ymir_base.prediction import BOXES, MASK_PROBS, Prediction

COMPAT_EPS = 1e-12
COMPAT_NO_DETECTION = -10.0


def instance_entropy(probs: torch.Tensor, boxes: torch.Tensor, block_elements: int = 1 << 24) -> float:
    """Σ_i mean of H_b(probs[i]) (bits) over the pixels inside boxes[i]; probs [N, h, w]."""
    count, height, width = probs.shape
    step = max(1, block_elements // max(1, height * width))
    total = torch.zeros((), dtype=torch.float64, device=probs.device)
    for start in range(0, count, step):
        inside = box_pixels(boxes[start:start + step], height, width)
        bits = binary_entropy(probs[start:start + step].float()) / math.log(2.0)
        per_instance = (bits * inside).sum(dim=(1, 2)) / inside.sum(dim=(1, 2))
        total += per_instance.double().sum()
    return float(total)


def mean_map_entropy(probs: torch.Tensor, boxes: torch.Tensor, input_size: tuple[int, int],
                     block_elements: int = 1 << 24) -> float:
    """The old port's score: Σ_pixels H_b(mean_i upsample(crop(probs[i], boxes[i]))) in bits."""
    count, height, width = probs.shape
    size = (int(input_size[0]), int(input_size[1]))
    step = max(1, block_elements // max(1, size[0] * size[1]))
    total = torch.zeros(size, dtype=torch.float64, device=probs.device)
    for start in range(0, count, step):
        cropped = probs[start:start + step].float() * box_pixels(boxes[start:start + step], height, width)
        upsampled = F.interpolate(cropped[:, None], size=size, mode="bilinear", align_corners=False)
        total += upsampled[:, 0].double().sum(dim=0)
    mean = total / count
    bits = -(mean * torch.log2(mean + COMPAT_EPS) + (1.0 - mean) * torch.log2(1.0 - mean + COMPAT_EPS))
    return float(bits.sum())


@register
class ApisMining(MiningAlgorithm):
    name: ClassVar[str] = "apis"
    kinds: ClassVar[frozenset[str]] = frozenset({"instance"})
    needs: ClassVar[frozenset[str]] = frozenset({BOXES, MASK_PROBS})

    # float32 elements of one block of masks (64 MiB): YOLOv5-seg at 640 holds 655 detections'
    # 160 x 160 maps by default, 40 of the compat mode's 640 x 640 ones
    block_elements: int = 1 << 24

    def __init__(self, params: Mapping[str, Any], class_names: Sequence[str]):
        super().__init__(params, class_names)
        self.ymir_compat = param_bool(self.params, "apis_ymir_compat", False)

    def score_batch(self, images: list[np.ndarray], predictions: list[Prediction] | None,
                    predictor: AugmentPredictor | StochasticPredictor | None) -> list[float]:
        if predictions is None:
            raise ValueError("apis mining needs the predictions of the images")
        return [self.score(pred) for pred in predictions]

    @torch.no_grad()
    def score(self, pred: Prediction) -> float:
        if not len(pred):
            return COMPAT_NO_DETECTION if self.ymir_compat else 0.0
        if pred.mask_probs is None or pred.mask_boxes is None:
            raise ValueError("apis needs Prediction.mask_probs and mask_boxes (predict(want={MASK_PROBS}))")
        probs = torch.as_tensor(pred.mask_probs)
        boxes = torch.as_tensor(pred.mask_boxes, device=probs.device)
        if not self.ymir_compat:
            return instance_entropy(probs, boxes, self.block_elements)
        if pred.input_size is None:
            raise ValueError("apis_ymir_compat needs Prediction.input_size (the network input the masks cover)")
        return mean_map_entropy(probs, boxes, pred.input_size, self.block_elements)
