"""Helpers shared by the mining algorithms: typed hyper-parameter access and small math."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import torch

from ymir_base.errors import ConfigError
from ymir_base.protocol.coerce import to_bool


def param_int(params: Mapping[str, Any], key: str, default: int, minimum: int | None = None) -> int:
    """``params[key]`` as an int (YAML may hand over strings such as ``"9"``)."""
    value = params.get(key, default)
    if isinstance(value, bool):
        raise ConfigError(f"{key}: expected an integer, got {value!r}")
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{key}: expected an integer, got {value!r}") from None
    if not number.is_integer():
        raise ConfigError(f"{key}: expected an integer, got {value!r}")
    if minimum is not None and number < minimum:
        raise ConfigError(f"{key}: must be >= {minimum}, got {value!r}")
    return int(number)


def param_float(params: Mapping[str, Any], key: str, default: float) -> float:
    value = params.get(key, default)
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{key}: expected a number, got {value!r}") from None
    if isinstance(value, bool) or not np.isfinite(number):
        raise ConfigError(f"{key}: expected a finite number, got {value!r}")
    return number


def param_bool(params: Mapping[str, Any], key: str, default: bool) -> bool:
    """``params[key]`` as a bool, read as every other config boolean (``protocol.coerce.to_bool``)."""
    try:
        return to_bool(params.get(key, default))
    except ValueError as exc:
        raise ConfigError(f"{key}: {exc}") from None


def binary_entropy(p: torch.Tensor, eps: float = 1e-7) -> torch.Tensor:
    """H_b(p) = -p ln p - (1-p) ln(1-p), elementwise, with p clamped to [eps, 1-eps]."""
    p = p.clamp(eps, 1.0 - eps)
    log_q = torch.log1p(-p)
    # -(p ln p + (1-p) ln(1-p)) = -(p (ln p - ln(1-p)) + ln(1-p)), in place: 2 temporaries, not 5
    return torch.log(p).sub_(log_q).mul_(p).add_(log_q).neg_()


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pairwise IoU [N, M] of xyxy boxes; a zero-area pair gives 0, not NaN."""
    a = np.asarray(a, np.float64).reshape(-1, 4)
    b = np.asarray(b, np.float64).reshape(-1, 4)
    area_a = np.clip(a[:, 2] - a[:, 0], 0, None) * np.clip(a[:, 3] - a[:, 1], 0, None)
    area_b = np.clip(b[:, 2] - b[:, 0], 0, None) * np.clip(b[:, 3] - b[:, 1], 0, None)
    w = np.clip(np.minimum(a[:, None, 2], b[None, :, 2]) - np.maximum(a[:, None, 0], b[None, :, 0]), 0, None)
    h = np.clip(np.minimum(a[:, None, 3], b[None, :, 3]) - np.maximum(a[:, None, 1], b[None, :, 1]), 0, None)
    inter = w * h
    union = area_a[:, None] + area_b[None, :] - inter
    return np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)


def js_divergence(p: np.ndarray, q: np.ndarray) -> np.ndarray:
    """Row-wise Jensen-Shannon divergence (natural log) of distributions along the last axis."""
    p = np.asarray(p, np.float64)
    q = np.asarray(q, np.float64)
    m = 0.5 * (p + q)

    def kl(x: np.ndarray) -> np.ndarray:
        ratio = np.divide(x, m, out=np.ones_like(x), where=x > 0)
        return np.sum(np.where(x > 0, x * np.log(ratio), 0.0), axis=-1)

    return np.clip(0.5 * kl(p) + 0.5 * kl(q), 0.0, None)


def box_pixels(boxes: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """``[N, height, width]`` bool: the grid pixels whose centres lie in each xyxy box (pixel (r, c)
    has its centre at (c + 0.5, r + 0.5)). A box that holds no pixel centre gets the pixel under
    its own centre, and a box off the grid the nearest edge pixel: every box covers one at least."""
    boxes = boxes.float()

    def span(lo: torch.Tensor, hi: torch.Tensor, size: int) -> torch.Tensor:
        start, stop = torch.ceil(lo - 0.5), torch.ceil(hi - 0.5)
        empty = stop <= start
        centre = torch.floor((lo + hi) / 2)
        start = torch.where(empty, centre, start).clamp(0, size - 1)
        stop = torch.maximum(torch.where(empty, centre + 1, stop).clamp(max=size), start + 1)
        index = torch.arange(size, device=boxes.device, dtype=boxes.dtype)
        return (index >= start[:, None]) & (index < stop[:, None])  # [N, size]

    cols = span(boxes[:, 0], boxes[:, 2], width)
    rows = span(boxes[:, 1], boxes[:, 3], height)
    return rows[:, :, None] & cols[:, None, :]
