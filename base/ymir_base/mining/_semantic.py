"""What the semantic-segmentation miners share: the probability maps of a prediction and the
pixel uncertainties computed from them.

The maps are the predictor's ``semantic_probs`` [K, h, w] (see ymir_base/prediction.py): softmax
over all K model outputs at a reduced resolution. Everything is computed at that (h, w); nothing
here assumes it equals the image size.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from ymir_base.prediction import Prediction

EPS = 1e-12


def probability_maps(pred: Prediction, algorithm: str) -> torch.Tensor:
    """The prediction's ``semantic_probs`` as a float32 tensor [K, h, w], K >= 2: a single map
    (one sigmoid output) is read as the two-class distribution [1 - p, p]."""
    probs = pred.semantic_probs
    if probs is None:
        raise ValueError(f"{algorithm} mining needs Prediction.semantic_probs "
                         "(the predictor must set it when asked with want={'semantic_probs'})")
    maps = torch.as_tensor(probs if isinstance(probs, torch.Tensor) else np.asarray(probs)).float()
    if maps.ndim != 3 or 0 in maps.shape:
        raise ValueError(f"semantic_probs must be [K, h, w], got shape {tuple(maps.shape)}")
    if maps.shape[0] == 1:
        maps = torch.cat([1.0 - maps, maps])
    return maps


def normalized_entropy(maps: torch.Tensor) -> torch.Tensor:
    """Per-pixel entropy of the distribution along dim 0, divided by log K: [h, w] in [0, 1]."""
    p = maps.clamp(EPS, 1.0)
    return -(maps * torch.log(p)).sum(dim=0) / math.log(maps.shape[0])


def bvsb(maps: torch.Tensor) -> torch.Tensor:
    """Best-versus-second-best per pixel: p_(2) / p_(1), in [0, 1], higher = more uncertain
    (0 where one class has all the mass, 1 where the two best tie)."""
    top = maps.topk(2, dim=0).values
    return top[1] / top[0].clamp_min(EPS)
