"""Evaluation numbers of detection and semantic segmentation: one definition for every image.

A stage's ``mAP`` in result.yaml is the mAP at IoU 0.5, the threshold at which YMIR evaluates
(``evaluate_config.iou_thr``); ``mAR`` is the recall where the evaluator gives one. Everything
else the evaluator gives (mAP@[.5:.95], mAP@0.75, precision, recall, per-class AP) goes to the
tensorboard scalars ``metrics/...`` and to the stage's attachment
``/out/models/attachments/metrics/<stage>.json``. Every number is a fraction in [0, 1].
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

IOU_THRESHOLD = 0.5
MAP_TAG = "metrics/mAP_0.5"  # the tensorboard scalar of the stage mAP, in every image
AP50, AP50_95 = "AP@0.5", "AP@0.5:0.95"


def unit_fraction(value: Any) -> float:
    """An evaluator's number as a plain float in [0, 1]: NaN/inf and negative values (COCO's -1,
    "no ground truth") are 0, rounding noise above 1 is 1. A larger value is a percentage handed
    over unconverted and raises (convert with ``TrainingResult.from_percent``)."""
    number = float(value)
    if not math.isfinite(number) or number < 0.0:
        return 0.0
    if number > 1.0 + 1e-6:
        raise ValueError(f"metric {number} is not a fraction in [0, 1]; convert a percentage with "
                         "TrainingResult.from_percent")
    return min(number, 1.0)


def _class_ap(value: Any) -> float | None:
    """A per-class AP, None where the evaluator has none (the class has no validation object)."""
    if value is None:
        return None
    number = float(value)
    return unit_fraction(number) if math.isfinite(number) and number >= 0.0 else None


def evaluate_config(conf_thr: float) -> dict[str, float]:
    """result.yaml ``evaluate_config`` of a detection training run."""
    return {"iou_thr": IOU_THRESHOLD, "conf_thr": float(conf_thr)}


@dataclass
class DetectionEvaluation:
    """One evaluation of a detector on the validation set. ``None``: the evaluator does not give it."""

    map50: float
    map50_95: float | None = None
    map75: float | None = None
    precision: float | None = None
    recall: float | None = None
    # class name -> {"AP@0.5": ..., "AP@0.5:0.95": ...}, the kinds the evaluator gives per class
    per_class: dict[str, dict[str, float | None]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.map50 = unit_fraction(self.map50)
        for name in ("map50_95", "map75", "precision", "recall"):
            value = getattr(self, name)
            setattr(self, name, None if value is None else unit_fraction(value))
        self.per_class = {str(c): {k: _class_ap(v) for k, v in aps.items()} for c, aps in self.per_class.items()}

    @property
    def main(self) -> float:
        """The number the best stage is chosen by (result.yaml's main metric, ``mAP``)."""
        return self.map50

    def summary(self) -> dict[str, float]:
        """The overall numbers by their names in the attachment and the log."""
        named = {"mAP@0.5": self.map50, "mAP@0.5:0.95": self.map50_95, "mAP@0.75": self.map75,
                 "precision": self.precision, "recall": self.recall}
        return {k: v for k, v in named.items() if v is not None}

    def stage_metrics(self) -> dict[str, float]:
        """The protocol keys of a detection stage: ``mAP`` (= mAP@0.5) and ``mAR`` (the recall)."""
        return {"mAP": self.map50, **({"mAR": self.recall} if self.recall is not None else {})}

    def scalars(self) -> dict[str, float]:
        """Tensorboard tag -> value; the same tags in every image."""
        tags = {MAP_TAG: self.map50, "metrics/mAP_0.5:0.95": self.map50_95, "metrics/mAP_0.75": self.map75,
                "metrics/precision": self.precision, "metrics/recall": self.recall}
        for name, aps in self.per_class.items():
            for kind, value in aps.items():
                tags[f"metrics/{kind.replace('@', '_')}/{name}"] = value
        return {k: v for k, v in tags.items() if v is not None}

    def as_dict(self, epoch: int | None = None) -> dict[str, Any]:
        """The content of a stage's metrics attachment (JSON; null: no number for that class)."""
        data: dict[str, Any] = {"epoch": epoch} if epoch is not None else {}
        data.update({"mAP": self.map50, **self.summary(), "iou_thr": IOU_THRESHOLD})
        if self.per_class:
            data["per_class"] = {c: dict(aps) for c, aps in self.per_class.items()}
        return data

    def describe(self) -> str:
        """One log line."""
        return ", ".join(f"{k} {v:.4f}" for k, v in self.summary().items())


@dataclass
class InstanceEvaluation:
    """One evaluation of an instance segmenter: the same numbers for its masks and for its boxes.
    A stage's ``maskAP`` is the mask mAP@0.5 (the main metric of object type 4), ``boxAP`` the
    box mAP@0.5."""

    mask: DetectionEvaluation
    box: DetectionEvaluation

    @property
    def main(self) -> float:
        return self.mask.map50

    def summary(self) -> dict[str, float]:
        return {**{f"mask {k}": v for k, v in self.mask.summary().items()},
                **{f"box {k}": v for k, v in self.box.summary().items()}}

    def stage_metrics(self) -> dict[str, float]:
        return {"maskAP": self.mask.map50, "boxAP": self.box.map50}

    def scalars(self) -> dict[str, float]:
        """Tensorboard tags ``metrics/mask/...`` and ``metrics/box/...`` (the detection tags
        under a prefix), plus the two stage metrics as ``metrics/maskAP_0.5``, ``metrics/boxAP_0.5``."""
        tags = {"metrics/maskAP_0.5": self.mask.map50, "metrics/boxAP_0.5": self.box.map50}
        for prefix, evaluation in (("mask", self.mask), ("box", self.box)):
            tags.update({tag.replace("metrics/", f"metrics/{prefix}/", 1): value
                         for tag, value in evaluation.scalars().items()})
        return tags

    def as_dict(self, epoch: int | None = None) -> dict[str, Any]:
        data: dict[str, Any] = {"epoch": epoch} if epoch is not None else {}
        data.update(self.stage_metrics())
        data.update({"mask": self.mask.as_dict(), "box": self.box.as_dict()})
        return data

    def describe(self) -> str:
        return ", ".join(f"{k} {v:.4f}" for k, v in self.summary().items())


@dataclass
class SemanticEvaluation:
    """One evaluation of a semantic segmenter on the validation set, over the project's classes
    only (a training-only background class never counts). ``miou``/``macc``: the means over the
    classes that occur in the validation ground truth or the predictions; ``aacc``: the share of
    labelled pixels predicted right. ``per_class``: class name -> {"IoU": ..., "Acc": ...}, None
    where the class has no pixel to measure."""

    miou: float
    macc: float
    aacc: float | None = None
    per_class: dict[str, dict[str, float | None]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.miou, self.macc = unit_fraction(self.miou), unit_fraction(self.macc)
        self.aacc = None if self.aacc is None else unit_fraction(self.aacc)
        self.per_class = {str(c): {k: _class_ap(v) for k, v in values.items()}
                          for c, values in self.per_class.items()}

    @property
    def main(self) -> float:
        return self.miou

    def summary(self) -> dict[str, float]:
        named = {"mIoU": self.miou, "mAcc": self.macc, "aAcc": self.aacc}
        return {k: v for k, v in named.items() if v is not None}

    def stage_metrics(self) -> dict[str, float]:
        """The protocol keys of a semantic stage (object type 3): ``mIoU`` and ``mAcc``."""
        return {"mIoU": self.miou, "mAcc": self.macc}

    def scalars(self) -> dict[str, float]:
        tags = {f"metrics/{k}": v for k, v in self.summary().items()}
        for name, values in self.per_class.items():
            for kind, value in values.items():
                if value is not None:
                    tags[f"metrics/{kind}/{name}"] = value
        return tags

    def as_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = dict(self.summary())
        if self.per_class:
            data["per_class"] = {c: dict(v) for c, v in self.per_class.items()}
        return data

    def describe(self) -> str:
        return ", ".join(f"{k} {v:.4f}" for k, v in self.summary().items())
