"""Diversity re-ranking of a miner's best candidates (any algorithm, off by default).

YMIR labels a top-k of ``result.tsv``, so every prefix of the ranking should avoid near-duplicates.
The ``diversity_pool`` (M) highest-scored candidates are re-ranked greedily:

1. their scores are min-max normalised to [0, 1] (all equal: 0);
2. the first pick is the best score; each next pick maximises
   ``norm_score - diversity * max_sim``, ``max_sim`` being the largest cosine similarity of its
   feature vector to those of the candidates picked before it, the vectors centred on the M
   candidates' mean (clipped below at 0: an opposite vector is no better than an orthogonal
   one); ties go to the earlier candidate;
3. the M picks, in pick order, get the M original scores sorted descending.

So ``result.tsv`` sorted by score shows the diverse order, the multiset of scores is unchanged, and
every re-ranked candidate stays above the candidates outside the M, whose scores are untouched.
The features are the predictor's pooled vectors (``Prediction.features``) of the same pass. Cost:
O(M² D) time and O(M (M + D)) memory (M = 1000, D = 2048: about 25 MB and a
fraction of a second), whatever the size of the candidate pool.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from ymir_base.errors import ConfigError
from ymir_base.mining._common import param_float, param_int

DIVERSITY_KEY = "diversity"
POOL_KEY = "diversity_pool"
DEFAULT_POOL = 1000


def diversity_settings(params: Mapping[str, Any]) -> tuple[float, int]:
    """``(diversity, diversity_pool)`` from the merged config: weight >= 0 (0 = off), pool >= 1."""
    weight = param_float(params, DIVERSITY_KEY, 0.0)
    if weight < 0:
        raise ConfigError(f"{DIVERSITY_KEY}: must be >= 0 (0 turns it off), got {params.get(DIVERSITY_KEY)!r}")
    return weight, param_int(params, POOL_KEY, DEFAULT_POOL, minimum=1)


def diverse_order(scores: Sequence[float] | np.ndarray, features: np.ndarray, diversity: float) -> np.ndarray:
    """The greedy pick order (indices into ``scores``) of M candidates given in candidate order,
    with their feature vectors ``features`` [M, D] (see the module doc). ``diversity`` 0 gives the
    candidates by descending score, ties in candidate order."""
    values = np.asarray(scores, np.float64).reshape(-1)
    vectors = np.asarray(features, np.float64)
    m = len(values)
    if vectors.ndim != 2 or len(vectors) != m:
        raise ValueError(f"features must be [M, D] for {m} scores, got shape {vectors.shape}")
    if m == 0:
        return np.zeros(0, np.intp)
    if not np.all(np.isfinite(values)) or not np.all(np.isfinite(vectors)):
        raise ValueError("scores and features must be finite")
    spread = values.max() - values.min()
    norm = (values - values.min()) / spread if spread > 0 else np.zeros(m)
    if diversity == 0:
        return np.argsort(-values, kind="stable")
    # centred on the candidates' mean: pooled activations share a large common component (every
    # image looks alike to an uncentred cosine, measured 0.92 between unrelated images), which the
    # differences between images, near-duplicates included, would drown in
    vectors = vectors - vectors.mean(axis=0)
    lengths = np.linalg.norm(vectors, axis=1, keepdims=True)
    unit = np.divide(vectors, lengths, out=np.zeros_like(vectors), where=lengths > 0)
    cosine = unit @ unit.T  # every pair at once: one matrix product is far faster than M products with a vector
    max_sim = np.zeros(m)
    free = np.ones(m, bool)
    order = np.empty(m, np.intp)
    for k in range(m):
        gain = np.where(free, norm - diversity * max_sim, -np.inf)
        pick = int(np.argmax(gain))  # the first maximum: the earlier candidate wins a tie
        order[k] = pick
        free[pick] = False
        np.maximum(max_sim, cosine[pick], out=max_sim)
    return order


def rerank(candidates: Sequence[tuple[str, float, np.ndarray]], diversity: float) -> list[tuple[str, float]]:
    """``(asset, score, features)`` of the re-ranked candidates, in candidate order ->
    ``(asset, new score)`` in pick order: the original scores sorted descending, handed out in
    the greedy order."""
    if not candidates:
        return []
    scores = np.array([score for _, score, _ in candidates], np.float64)
    order = diverse_order(scores, np.stack([np.asarray(f, np.float32) for _, _, f in candidates]), diversity)
    return [(candidates[i][0], float(s)) for i, s in zip(order, np.sort(scores)[::-1], strict=True)]
