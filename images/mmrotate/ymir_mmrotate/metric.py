"""mmrotate's DOTA evaluation, computed in this process.

``DOTAMetric`` calls ``eval_rbbox_map``, which opens a pool of 4 *spawned* processes for every IoU
threshold: each imports torch and mmcv again, about 35 s per threshold on a 2-core machine, far
longer than the validation itself. :class:`InProcessDOTAMetric` runs the same upstream code with
that pool replaced by a plain map over the same per-image matching function, so its numbers are
DOTAMetric's exactly.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable, Sequence
from typing import Any
from unittest import mock

from mmrotate.evaluation.functional import mean_ap
from mmrotate.evaluation.metrics import DOTAMetric
from mmrotate.registry import METRICS


class _InProcessPool:
    """What ``eval_rbbox_map`` uses of a multiprocessing pool."""

    def __init__(self, processes: int | None = None):
        del processes

    def starmap(self, func: Callable[..., Any], iterable: Iterable[Sequence[Any]]) -> list[Any]:
        return list(itertools.starmap(func, iterable))

    def close(self) -> None:
        """Nothing to release."""


class _InProcessContext:
    Pool = _InProcessPool


@METRICS.register_module()
class InProcessDOTAMetric(DOTAMetric):
    def compute_metrics(self, results: list) -> dict:
        with mock.patch.object(mean_ap, "get_context", lambda method: _InProcessContext):
            return super().compute_metrics(results)
