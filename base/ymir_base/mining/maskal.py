"""``maskAL``: MaskAL (Blok et al. 2022, arXiv 2112.06586) on Monte-Carlo passes (docs/mining.md §2.8).

The predictor runs T = ``mcd_iterations`` stochastic passes per image (YOLOv5-seg: DropBlock kept
active at test time, ``StochasticPredictor``). All detections of the T passes are grouped into
*observations* greedily: detections are taken by descending confidence (ties: pass, then
detection index); each one not yet grouped opens an observation that takes every ungrouped
detection whose mask IoU with it exceeds ``maskal_iou_thres`` (0.5, the paper's). Masks are the
soft masks (``Prediction.mask_probs``) inside their box (``_common.box_pixels``) binarised at 0.5,
on the mask grid (YOLOv5-seg: input / 4). A detection whose mask is empty (no pixel of its box
above 0.5) overlaps nothing, so it stays alone and its mask IoUs are 0: the model gave no shape.
For an observation with n members:

    c_sem = mean over members of 1 - H(q) / log C, q = the member's class_probs scaled to sum 1;
            with one class (or no class vectors) the member's confidence itself, as the paper
            uses the softmax value (no division by log 1)
    c_spl = mean mask IoU of the members to the observation's mean mask thresholded at 0.25 (a
            pixel at least a quarter of the members cover) x mean box IoU of the members to
            their mean box
    c_n   = min(1, n / T)
    c_h   = c_sem · c_spl · c_n                        (in [0, 1]; 1 = certain)

The image's certainty is the mean of c_h over its observations (``maskal_mode: min``: their
minimum, the least certain instance), and **score = 1 - certainty**: the least certain image is
labelled first, as MaskAL selects the lowest certainties. An image without any detection in any
pass has no observation and scores 0.0, i.e. it is treated as certain (nothing to correct).

``maskal_ymir_compat: true`` ranks as the old yolov5-seg port did: score = +certainty, the most
certain image first, and -1.0 (below every certainty, as the port's -inf) without observations.
Only that direction is reproduced: ``mcd_iterations`` is still honoured (the port always ran 5),
single-class data still gets finite scores (the port divided by log 1 and made every score NaN),
and masks stay on the mask grid (the port re-rasterised polygons at image size).

Randomness: the image at running position n of this instance is passed through the predictor
with seed ``mining_seed * 2**32 + n``, so its passes, and its score, do not depend on the batch
size. The mask IoUs of an image are one matrix product of its [D, P] binary masks on the device.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import numpy as np
import torch
import torchvision

from ymir_base.errors import ConfigError
from ymir_base.mining._common import box_pixels, param_bool, param_float, param_int
from ymir_base.mining.base import AugmentPredictor, MiningAlgorithm, StochasticPredictor, register
from ymir_base.prediction import CLASS_PROBS, MASK_PROBS, STOCHASTIC_PREDICT, Prediction

MASK_THRESHOLD = 0.5
MEAN_MASK_THRESHOLD = 0.25
MODES = ("mean", "min")
COMPAT_NO_OBSERVATION = -1.0
SEED_STRIDE = 2**32  # image positions per mining_seed


def group_observations(masks: torch.Tensor, scores: np.ndarray, iou_thres: float) -> np.ndarray:
    """The observation index of each of D detections (``masks`` [D, P] binary float), grouped
    greedily as the module docstring says; observations are numbered in the order they open."""
    inter = masks @ masks.T
    area = masks.sum(dim=1)
    union = area[:, None] + area[None, :] - inter
    iou = torch.where(union > 0, inter / union.clamp(min=1), torch.zeros_like(inter))
    linked = (iou > iou_thres).cpu().numpy()
    count = len(scores)
    order = np.lexsort((np.arange(count), -np.asarray(scores, np.float64)))
    group = np.full(count, -1, np.int64)
    opened = 0
    for d in order:
        if group[d] >= 0:
            continue
        members = linked[d] & (group < 0)
        members[d] = True
        group[members] = opened
        opened += 1
    return group


def observation_certainties(passes: Sequence[Prediction], iterations: int, iou_thres: float) -> torch.Tensor:
    """c_h of every observation of one image's passes (empty without detections)."""
    found = [p for p in passes if len(p)]
    if not found:
        return torch.zeros(0)
    for p in found:
        if p.mask_probs is None or p.mask_boxes is None:
            raise ValueError("maskAL needs Prediction.mask_probs and mask_boxes in every stochastic pass")
    device = torch.as_tensor(found[0].mask_probs).device
    height, width = found[0].mask_probs.shape[1:]
    masks = torch.cat([
        ((torch.as_tensor(p.mask_probs, device=device) > MASK_THRESHOLD)
         & box_pixels(torch.as_tensor(p.mask_boxes, device=device), height, width)).reshape(len(p), -1).float()
        for p in found])  # [D, P]
    scores = np.concatenate([p.scores for p in found])
    group = torch.as_tensor(group_observations(masks, scores, iou_thres), device=device)
    opened = int(group.max()) + 1
    counts = torch.bincount(group, minlength=opened).float()

    def mean_per_observation(values: torch.Tensor) -> torch.Tensor:
        return torch.zeros(opened, *values.shape[1:], device=device).index_add_(0, group, values) / (
            counts.view(-1, *[1] * (values.dim() - 1)))

    # spatial: members against their observation's mean mask and mean box
    support = (mean_per_observation(masks) >= MEAN_MASK_THRESHOLD).float()[group]  # [D, P]
    inter = (masks * support).sum(dim=1)
    union = masks.sum(dim=1) + support.sum(dim=1) - inter
    mask_iou = torch.where(union > 0, inter / union.clamp(min=1), torch.zeros_like(inter))
    boxes = torch.as_tensor(np.concatenate([p.boxes for p in found]), dtype=torch.float32, device=device)
    box_iou = torchvision.ops.box_iou(boxes, mean_per_observation(boxes))
    box_iou = torch.nan_to_num(box_iou[torch.arange(len(boxes), device=device), group], nan=0.0)
    spatial = mean_per_observation(mask_iou) * mean_per_observation(box_iou)
    semantic = mean_per_observation(semantic_certainty(found, device))
    occurrence = (counts / iterations).clamp(max=1.0)
    return (semantic * spatial * occurrence).cpu()


def semantic_certainty(found: Sequence[Prediction], device: torch.device) -> torch.Tensor:
    """1 - H(q)/log C per detection, or its confidence with one class or without class vectors."""
    scores = torch.as_tensor(np.concatenate([p.scores for p in found]), dtype=torch.float32, device=device)
    if any(p.class_probs is None for p in found) or found[0].class_probs.shape[1] < 2:
        return scores.clamp(0.0, 1.0)
    probs = torch.as_tensor(np.concatenate([p.class_probs for p in found]), dtype=torch.float32, device=device)
    probs = probs.clamp(min=0.0)
    q = probs / probs.sum(dim=1, keepdim=True).clamp(min=1e-12)
    entropy = -torch.special.xlogy(q, q).sum(dim=1)
    return (1.0 - entropy / math.log(probs.shape[1])).clamp(0.0, 1.0)


@register
class MaskAlMining(MiningAlgorithm):
    name: ClassVar[str] = "maskAL"
    kinds: ClassVar[frozenset[str]] = frozenset({"instance"})
    needs: ClassVar[frozenset[str]] = frozenset({STOCHASTIC_PREDICT, MASK_PROBS, CLASS_PROBS})
    reads_predictions: ClassVar[bool] = False

    def __init__(self, params: Mapping[str, Any], class_names: Sequence[str]):
        super().__init__(params, class_names)
        self.iterations = param_int(self.params, "mcd_iterations", 10, minimum=1)
        self.iou_thres = param_float(self.params, "maskal_iou_thres", 0.5)
        if not 0.0 <= self.iou_thres <= 1.0:
            raise ConfigError(f"maskal_iou_thres: must be in [0, 1], got {self.iou_thres}")
        self.mode = str(self.params.get("maskal_mode", "mean")).strip().lower()
        if self.mode not in MODES:
            raise ConfigError(f"maskal_mode: choose one of {', '.join(MODES)}, got {self.params.get('maskal_mode')!r}")
        self.ymir_compat = param_bool(self.params, "maskal_ymir_compat", False)
        self.seed = param_int(self.params, "mining_seed", 0, minimum=0)
        self._seen = 0  # images scored so far by this instance (their position in the seed stream)

    def score_batch(self, images: list[np.ndarray], predictions: list[Prediction] | None,
                    predictor: AugmentPredictor | StochasticPredictor | None) -> list[float]:
        if predictor is None or not hasattr(predictor, "predict_stochastic"):
            raise ValueError("maskAL mining needs a predictor with predict_stochastic")
        # about one forward batch of passes per call: T passes of each image, memory bounded
        per_call = max(1, int(getattr(predictor, "batch_size", 1)) // self.iterations)
        scores: list[float] = []
        for start in range(0, len(images), per_call):
            part = images[start:start + per_call]
            passes = predictor.predict_stochastic(part, self.iterations, self.seed * SEED_STRIDE + self._seen + start,
                                                  want=frozenset({MASK_PROBS, CLASS_PROBS}))
            if len(passes) != len(part) or any(len(p) != self.iterations for p in passes):
                raise ValueError(f"predict_stochastic returned {[len(p) for p in passes]} passes for "
                                 f"{len(part)} images x {self.iterations} iterations")
            scores += [self.score(image_passes) for image_passes in passes]
        self._seen += len(images)
        return scores

    @torch.no_grad()
    def score(self, passes: Sequence[Prediction]) -> float:
        certainties = observation_certainties(passes, self.iterations, self.iou_thres)
        if not len(certainties):
            return COMPAT_NO_OBSERVATION if self.ymir_compat else 0.0
        certainty = float(certainties.min() if self.mode == "min" else certainties.mean())
        return certainty if self.ymir_compat else 1.0 - certainty
