"""mmseg's IoU evaluation restricted to the project's classes.

``IoUMetric`` averages over every class of the dataset, which here may include the training-only
class of unlabelled pixels (labels.BLANK_CLASS); YMIR's metrics cover the project's classes only.
:class:`ProjectIoUMetric` keeps mmseg's per-image counting (``IoUMetric.process``) and reduces the
counts of the first ``project_classes`` classes itself, as fractions: ``mIoU``, ``mAcc`` (means
over the classes that have pixels to measure), ``aAcc`` (pixels of project classes predicted
right) and ``IoU.<class>`` / ``Acc.<class>`` per class (NaN where there is nothing to measure).
"""

from __future__ import annotations

import numpy as np
import torch
from mmseg.evaluation import IoUMetric
from mmseg.registry import METRICS


@METRICS.register_module()
class ProjectIoUMetric(IoUMetric):
    def __init__(self, project_classes: int, **kwargs):
        super().__init__(**kwargs)
        self.project_classes = project_classes

    def compute_metrics(self, results: list) -> dict[str, float]:
        n = self.project_classes
        intersect, union, _, label = (torch.stack(list(column)).sum(0)[:n].double().numpy()
                                      for column in zip(*results, strict=True))
        with np.errstate(divide="ignore", invalid="ignore"):
            iou = intersect / union
            acc = intersect / label
        names = list(self.dataset_meta["classes"])[:n]
        metrics = {"mIoU": _nanmean(iou), "mAcc": _nanmean(acc),
                   "aAcc": float(intersect.sum() / label.sum()) if label.sum() > 0 else 0.0}
        metrics.update({f"IoU.{name}": float(v) for name, v in zip(names, iou, strict=True)})
        metrics.update({f"Acc.{name}": float(v) for name, v in zip(names, acc, strict=True)})
        return metrics


def _nanmean(values: np.ndarray) -> float:
    finite = values[np.isfinite(values)]
    return float(finite.mean()) if finite.size else 0.0
