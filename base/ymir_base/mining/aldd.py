"""``aldd``: Active Learning for Deep Detection Neural Networks (Aghdam et al., ICCV 2019).

Semantics of the YMIR YOLOv5 port (docs/mining.md §2.3). For each class c, the K = levels × A
probability maps ``P`` (objectness × class-c probability per anchor, each level bilinearly resized
to the network input size, align_corners=False) are compared over a window × window
neighbourhood (stride 1, zero padding of window // 2 not counted):

    U = Σ_k H_b(avgpool(P_k)) - avgpool(Σ_k H_b(P_k))     (entropy of mean - mean of entropy)

with H_b the binary entropy in nats. ``U`` is large where the prediction changes abruptly between
neighbouring positions. ``s_c = mean(maxpool(U, cell, stride cell, floor))``, and the image score
is ``Σ_c w_c s_c`` with the weights of ``class_distribution_scores``. Higher = label first.

Pooling the entropy sum once equals summing per-channel pools (average pooling is linear and the
divisor is the same for every channel), so it costs one pool instead of K.

All classes and all images of a batch are processed together as rows of a [rows, K, H, W] tensor,
on the device the maps are on, in chunks of rows so that memory stays bounded.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import numpy as np
import torch
import torch.nn.functional as F

from ymir_base.errors import ConfigError
from ymir_base.mining._common import binary_entropy, param_int
from ymir_base.mining.base import BOX_KINDS, AugmentPredictor, MiningAlgorithm, register
from ymir_base.prediction import DENSE_CLASS_PROBS, Prediction

logger = logging.getLogger(__name__)


def parse_class_weights(value: Any, num_classes: int) -> list[float]:
    """``class_distribution_scores`` -> one weight per class.

    '' means all 1.0; a shorter list is padded with 1.0 and a longer one truncated (both warn).
    """
    key = "class_distribution_scores"
    if value is None:
        items: list[Any] = []
    elif isinstance(value, str):
        items = [] if not value.strip() else value.split(",")
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        items = [value]
    elif isinstance(value, (list, tuple)):
        items = list(value)
    else:
        raise ConfigError(f"{key}: expected comma-separated numbers, got {value!r}")
    weights: list[float] = []
    for item in items:
        try:
            weight = float(item.strip() if isinstance(item, str) else item)
        except (TypeError, ValueError):
            raise ConfigError(f"{key}: expected comma-separated numbers, got {value!r}") from None
        if isinstance(item, bool) or not np.isfinite(weight):
            raise ConfigError(f"{key}: expected comma-separated numbers, got {value!r}")
        weights.append(weight)
    if items and len(weights) < num_classes:
        logger.warning("%s has %d values for %d classes; the missing ones are 1.0",
                       key, len(weights), num_classes)
    elif len(weights) > num_classes:
        logger.warning("%s has %d values for %d classes; the extra ones are ignored",
                       key, len(weights), num_classes)
    return (weights + [1.0] * num_classes)[:num_classes]


@register
class AlddMining(MiningAlgorithm):
    name: ClassVar[str] = "aldd"
    kinds: ClassVar[frozenset[str]] = BOX_KINDS
    needs: ClassVar[frozenset[str]] = frozenset({DENSE_CLASS_PROBS})

    # Elements of one [rows, K, H, W] float32 chunk (128 MiB); a handful of such buffers live at
    # once. YOLOv5 at 640 (K = 9): 9 rows = 9 (image, class) pairs per chunk.
    max_chunk_elements: int = 1 << 25

    def __init__(self, params: Mapping[str, Any], class_names: Sequence[str]):
        super().__init__(params, class_names)
        self.window = param_int(self.params, "aldd_window", 9, minimum=1)
        if self.window % 2 == 0:
            raise ConfigError(f"aldd_window: must be odd (the map keeps its size), got {self.window}")
        self.cell = param_int(self.params, "aldd_cell", 32, minimum=1)
        self.weights = parse_class_weights(self.params.get("class_distribution_scores", ""),
                                           len(self.class_names))

    def score_batch(self, images: list[np.ndarray], predictions: list[Prediction] | None,
                    predictor: AugmentPredictor | None) -> list[float]:
        if predictions is None:
            raise ValueError("aldd mining needs the predictions of the images")
        scores = [0.0] * len(predictions)
        # images of one batch normally share one input size; group them in case they do not
        groups: dict[tuple[Any, ...], list[int]] = {}
        for i, pred in enumerate(predictions):
            if not pred.dense_class_probs or pred.input_size is None:
                raise ValueError("aldd needs Prediction.dense_class_probs and input_size")
            shapes = tuple(tuple(level.shape) for level in pred.dense_class_probs)
            groups.setdefault((tuple(pred.input_size), shapes), []).append(i)
        for (input_size, _), members in groups.items():
            levels = [torch.stack([_as_tensor(predictions[i].dense_class_probs[lvl]) for i in members])
                      for lvl in range(len(predictions[members[0]].dense_class_probs))]
            for i, score in zip(members, self.score_maps(levels, input_size), strict=True):
                scores[i] = score
        return scores

    @torch.no_grad()
    def score_maps(self, levels: list[torch.Tensor], input_size: tuple[int, int]) -> list[float]:
        """Scores of B images from their per-level maps, each [B, A, C, h, w] probabilities."""
        batch, _, num_classes = levels[0].shape[:3]
        if num_classes != len(self.weights):
            logger.warning("the dense maps have %d classes but the task names %d; the class weights "
                           "are re-read for %d classes", num_classes, len(self.weights), num_classes)
            self.weights = parse_class_weights(self.params.get("class_distribution_scores", ""),
                                               num_classes)
        device = levels[0].device
        # row r = b * C + c holds the A anchor maps of image b, class c
        rows = [lvl.float().transpose(1, 2).reshape(batch * num_classes, lvl.shape[1], *lvl.shape[3:])
                for lvl in levels]
        height, width = input_size
        channels = sum(r.shape[1] for r in rows)
        step = max(1, self.max_chunk_elements // (channels * height * width))
        per_row = torch.empty(batch * num_classes, device=device)
        for start in range(0, batch * num_classes, step):
            chunk = [r[start:start + step] for r in rows]
            per_row[start:start + step] = self._class_scores(chunk, height, width)
        weights = torch.tensor(self.weights, device=device, dtype=torch.float32)
        return (per_row.view(batch, num_classes) * weights).sum(dim=1).tolist()

    def _class_scores(self, chunk: list[torch.Tensor], height: int, width: int) -> torch.Tensor:
        """s = mean(maxpool(U)) for each row of the chunk."""
        probs = torch.cat([F.interpolate(r, size=(height, width), mode="bilinear", align_corners=False)
                           for r in chunk], dim=1)  # [n, K, H, W]
        mean_of_entropy = self._box(binary_entropy(probs).sum(dim=1, keepdim=True))
        entropy_of_mean = binary_entropy(self._box(probs)).sum(dim=1, keepdim=True)
        uncertainty = entropy_of_mean - mean_of_entropy  # [n, 1, H, W]
        # an input smaller than a cell is one cell (the ports assume 640 >= 32)
        kernel = (min(self.cell, height), min(self.cell, width))
        cells = F.max_pool2d(uncertainty, kernel, stride=kernel)
        return cells.mean(dim=(1, 2, 3))

    def _box(self, x: torch.Tensor) -> torch.Tensor:
        """The window x window mean (zero padding not counted) as a row pass then a column pass:
        the same values as one 2-D average pool (the counted cells are a product of the two
        directions'), for 2 x window instead of window² additions per cell. Each pass adds the
        window's shifted slices of the padded map in place: on a CPU that is 2.3 times faster
        than avg_pool2d's (1, window) and (window, 1) pools (measured, one thread, 480x640), with
        the same sums in the same order."""
        return _window_mean(_window_mean(x, self.window, -1), self.window, -2)


def _window_mean(x: torch.Tensor, window: int, dim: int) -> torch.Tensor:
    """The mean over ``window`` neighbours centred on each position along ``dim`` (-1 or -2),
    the positions beyond the edges not counted."""
    pad = window // 2
    size = x.shape[dim]
    padded = F.pad(x, (pad, pad) if dim == -1 else (0, 0, pad, pad))
    total = padded.narrow(dim, 0, size).clone()
    for shift in range(1, window):
        total += padded.narrow(dim, shift, size)
    index = torch.arange(size, device=x.device)
    counted = ((index + pad).clamp(max=size - 1) - (index - pad).clamp(min=0) + 1).to(x.dtype)
    return total.div_(counted if dim == -1 else counted[:, None])


def _as_tensor(x: Any) -> torch.Tensor:
    return x if isinstance(x, torch.Tensor) else torch.from_numpy(np.ascontiguousarray(x))
