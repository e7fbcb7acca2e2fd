"""The contract between the base engine and an image's backend (design: "the backend contract")."""

from __future__ import annotations

from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from ymir_base.data.types import Dataset
from ymir_base.monitor import Monitor
from ymir_base.prediction import Prediction
from ymir_base.protocol.context import TaskContext
from ymir_base.results.training import TrainingResult


class Predictor(ABC):
    """A loaded model that turns batches of RGB uint8 images into predictions."""

    capabilities: frozenset[str] = frozenset()
    batch_size: int = 1
    class_names: list[str]

    @abstractmethod
    def predict(self, images: list[np.ndarray], *, dense: bool = False) -> list[Prediction]:
        """Boxes above the task's confidence threshold, after NMS, in original-image pixels.
        ``dense=True`` also fills ``dense_class_probs`` (only when the capability is offered)."""


class Backend(ABC):
    """One per image family: trains with the upstream trainer and builds predictors."""

    name: ClassVar[str]
    mining_algorithms: ClassVar[tuple[str, ...]]
    img_man_dir: ClassVar[Path]
    params_file: ClassVar[Path]
    # small settings per task ("training", "infer", "mining") that make `ymir-exec verify` and
    # `make demo` finish in minutes on a CPU
    quick_settings: ClassVar[dict[str, dict[str, Any]]] = {}
    # how many sample images `ymir-exec demo` trains on (a third of them validate)
    demo_images: ClassVar[int] = 96

    @abstractmethod
    def train(self, ctx: TaskContext, dataset: Dataset, monitor: Monitor, result: TrainingResult) -> None:
        """Train, adding a stage to ``result`` after every evaluation."""

    @classmethod
    def demo_settings(cls, work_dir: Path) -> dict[str, dict[str, Any]]:
        """Settings per task with which `ymir-exec demo` (`make demo`) trains a model that really
        detects the sample shapes in a few CPU minutes; files they need go to ``work_dir``.
        Empty: this image has no demo."""
        return {}

    @abstractmethod
    def predictor(self, ctx: TaskContext) -> Predictor:
        """Load the model given by ``model_params_path`` for infer and mining."""
