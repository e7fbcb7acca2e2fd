"""``entropy`` for semantic segmentation: the mean normalised pixel entropy of the softmax maps.

Per pixel H(p) = -Σ_k p_k ln p_k / ln K over the model's K outputs (in [0, 1], so scores of
models with different K compare), averaged over the (reduced-resolution) map. Higher = label
first. Detection's ``entropy`` (box confidences, entropy.py) keeps the name for the box kinds.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import torch

from ymir_base.mining._semantic import normalized_entropy, probability_maps
from ymir_base.mining.base import AugmentPredictor, MiningAlgorithm, register
from ymir_base.prediction import SEMANTIC_PROBS, Prediction


@register
class SemanticEntropyMining(MiningAlgorithm):
    name: ClassVar[str] = "entropy"
    kinds: ClassVar[frozenset[str]] = frozenset({"semantic"})
    needs: ClassVar[frozenset[str]] = frozenset({SEMANTIC_PROBS})

    @torch.no_grad()
    def score_batch(self, images: list[np.ndarray], predictions: list[Prediction] | None,
                    predictor: AugmentPredictor | None) -> list[float]:
        if predictions is None:
            raise ValueError("entropy mining needs the predictions of the images")
        return [float(normalized_entropy(probability_maps(pred, self.name)).mean()) for pred in predictions]
