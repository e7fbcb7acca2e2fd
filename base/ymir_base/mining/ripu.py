"""``RIPU``: Region Impurity and Prediction Uncertainty (Xie et al., "Towards Fewer Annotations:
Active Learning via Region Impurity and Prediction Uncertainty for Domain Adaptive Semantic
Segmentation", CVPR 2022), as an image ranking (docs/mining.md §2.6).

At the resolution of the predictor's ``semantic_probs`` [K, h, w], over the square window of
side 2r + 1 around each pixel (r = ``ripu_region_radius``):

- U = the mean, over the window, of the pixel entropy H(p) / ln K;
- P = the entropy, divided by ln K, of the histogram of predicted classes (argmax) in the window;
- S = U · P: large where the prediction is uncertain *and* the classes are mixed.

Both window statistics are box filters (average pooling, stride 1) over the entropy map and the
one-hot class maps, dividing by the pixels of the window inside the image (the official code's
count; the old YMIR port also counted the zero padding, which diluted borders [DIFF]).

Image score (the doc leaves the pooling open): the sum of the ``topk_superpixel_score`` best
regions, picked greedily as in the official region selection: take the highest S, then clear
S within 2r of it (so the next pick's window does not overlap this one's), repeat; a region with
S = 0 ends the picks. The old port summed the top-k *pixels*, which are almost always
neighbours inside one spot [DIFF]. Higher = label first.

The window is measured on the maps, not the original image: with maps at 1/4 of the image's
size, r = 1 covers 12 x 12 image pixels.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import numpy as np
import torch
import torch.nn.functional as F

from ymir_base.mining._common import param_int
from ymir_base.mining._semantic import EPS, normalized_entropy, probability_maps
from ymir_base.mining.base import AugmentPredictor, MiningAlgorithm, register
from ymir_base.prediction import SEMANTIC_PROBS, Prediction


@register
class RipuMining(MiningAlgorithm):
    name: ClassVar[str] = "RIPU"
    kinds: ClassVar[frozenset[str]] = frozenset({"semantic"})
    needs: ClassVar[frozenset[str]] = frozenset({SEMANTIC_PROBS})

    def __init__(self, params: Mapping[str, Any], class_names: Sequence[str]):
        super().__init__(params, class_names)
        self.radius = param_int(self.params, "ripu_region_radius", 1, minimum=1)
        self.topk = param_int(self.params, "topk_superpixel_score", 3, minimum=1)

    @torch.no_grad()
    def score_batch(self, images: list[np.ndarray], predictions: list[Prediction] | None,
                    predictor: AugmentPredictor | None) -> list[float]:
        if predictions is None:
            raise ValueError("RIPU mining needs the predictions of the images")
        return [self.image_score(self.score_map(probability_maps(pred, self.name))) for pred in predictions]

    def score_map(self, maps: torch.Tensor) -> torch.Tensor:
        """S = U · P, [h, w], of probability maps [K, h, w]."""
        num_classes = maps.shape[0]
        window = 2 * self.radius + 1

        def box(x: torch.Tensor) -> torch.Tensor:  # [C, h, w] -> window means, same size
            return F.avg_pool2d(x[None], window, stride=1, padding=self.radius, count_include_pad=False)[0]

        uncertainty = box(normalized_entropy(maps)[None])[0]
        one_hot = torch.zeros_like(maps).scatter_(0, maps.argmax(dim=0, keepdim=True), 1.0)
        shares = box(one_hot)  # class histogram of each window, as fractions
        impurity = -(shares * torch.log(shares.clamp_min(EPS))).sum(dim=0) / np.log(num_classes)
        return uncertainty * impurity

    def image_score(self, scores: torch.Tensor) -> float:
        """Sum of the top-k non-overlapping windows' S (greedy; ties: the first in row-major order)."""
        scores = scores.clone()
        width = scores.shape[1]
        reach = 2 * self.radius
        total = 0.0
        for _ in range(self.topk):
            best, index = scores.flatten().max(dim=0)
            if float(best) <= 0.0:
                break
            total += float(best)
            y, x = divmod(int(index), width)
            scores[max(0, y - reach):y + reach + 1, max(0, x - reach):x + reach + 1] = 0.0
        return total
