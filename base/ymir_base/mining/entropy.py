"""``entropy``: the sum of ``-p log2 p`` over an image's post-NMS box confidences.

This follows the mmdet/mmyolo/mmrotate ports. The old YOLOv5 image summed the same term over the
objectness of all ~25k anchors before NMS, which mostly measures background noise; we use the
boxes the predictor returns (after its confidence threshold and NMS) instead.

Only the ``-p log p`` half of binary entropy is used (as in every YMIR port), so the per-box term
peaks at p = 1/e, and the sum makes crowded images rank higher. An image without boxes scores
0.0 (the mmyolo convention; mmdet used -10), the same as a box with p = 1.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from ymir_base.mining.base import BOX_KINDS, AugmentPredictor, MiningAlgorithm, register
from ymir_base.prediction import BOXES, Prediction


def box_entropy(scores: np.ndarray) -> float:
    """Σ -p·log2(p) with p clipped to [1e-12, 1] (so p = 0 gives ~0, not NaN)."""
    p = np.clip(np.asarray(scores, np.float64), 1e-12, 1.0)
    return float(np.sum(-p * np.log2(p)))


@register
class EntropyMining(MiningAlgorithm):
    name: ClassVar[str] = "entropy"
    kinds: ClassVar[frozenset[str]] = BOX_KINDS
    needs: ClassVar[frozenset[str]] = frozenset({BOXES})

    def score_batch(self, images: list[np.ndarray], predictions: list[Prediction] | None,
                    predictor: AugmentPredictor | None) -> list[float]:
        if predictions is None:
            raise ValueError("entropy mining needs the predictions of the images")
        return [box_entropy(pred.scores) for pred in predictions]
