"""Predicted boxes against ground truth: how many are right, so the demo's summary can say it."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Box:
    """An axis-aligned box ``x1, y1, x2, y2`` (x2/y2 exclusive) with its class name and score."""

    x1: float
    y1: float
    x2: float
    y2: float
    class_name: str
    score: float = 1.0


@dataclass
class Match:
    correct: int = 0   # predictions that hit an unclaimed ground-truth box of their class
    wrong: int = 0     # predictions that hit none
    missed: int = 0    # ground-truth boxes that no prediction hit

    def __iadd__(self, other: Match) -> Match:
        self.correct += other.correct
        self.wrong += other.wrong
        self.missed += other.missed
        return self


def iou(a: Box, b: Box) -> float:
    w = min(a.x2, b.x2) - max(a.x1, b.x1)
    h = min(a.y2, b.y2) - max(a.y1, b.y1)
    if w <= 0 or h <= 0:
        return 0.0
    inter = w * h
    return inter / ((a.x2 - a.x1) * (a.y2 - a.y1) + (b.x2 - b.x1) * (b.y2 - b.y1) - inter)


def match(truth: Sequence[Box], predicted: Sequence[Box], iou_threshold: float = 0.5) -> Match:
    """Greedy matching as detection metrics do it: predictions by falling score (ties by their
    order in the list) each claim the unclaimed same-class truth box of highest IoU."""
    claimed = np.zeros(len(truth), bool)
    result = Match()
    for pred in sorted(predicted, key=lambda p: -p.score):
        best, best_iou = -1, iou_threshold
        for i, gt in enumerate(truth):
            if claimed[i] or gt.class_name != pred.class_name:
                continue
            overlap = iou(gt, pred)
            if overlap >= best_iou:
                best, best_iou = i, overlap
        if best >= 0:
            claimed[best] = True
            result.correct += 1
        else:
            result.wrong += 1
    result.missed = int((~claimed).sum())
    return result
