"""``random``: a uniform score per image, reproducible through ``mining_seed``.

Needs no model, so the runner does not load one (the old YOLOv5/mmyolo images still loaded it).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import numpy as np

from ymir_base.mining._common import param_int
from ymir_base.mining.base import ALL_KINDS, AugmentPredictor, MiningAlgorithm, register
from ymir_base.prediction import Prediction


@register
class RandomMining(MiningAlgorithm):
    """U[0, 1) per image from one generator seeded once per run (old images: unseeded)."""

    name: ClassVar[str] = "random"
    kinds: ClassVar[frozenset[str]] = ALL_KINDS
    needs: ClassVar[frozenset[str]] = frozenset()

    def __init__(self, params: Mapping[str, Any], class_names: Sequence[str]):
        super().__init__(params, class_names)
        self.rng = np.random.default_rng(param_int(self.params, "mining_seed", 0, minimum=0))

    def score_batch(self, images: list[np.ndarray], predictions: list[Prediction] | None,
                    predictor: AugmentPredictor | None) -> list[float]:
        return [float(x) for x in self.rng.random(len(images))]
