"""The contract between the base engine and an image's backend (design: "the backend contract")."""

from __future__ import annotations

from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from ymir_base.data.types import Dataset
from ymir_base.errors import ObjectTypeError
from ymir_base.monitor import Monitor
from ymir_base.prediction import Prediction
from ymir_base.protocol.context import TaskContext
from ymir_base.results.training import TrainingResult
from ymir_base.tasks import ObjectKind, kind_named


class Predictor(ABC):
    """A loaded model that turns batches of RGB uint8 images into predictions."""

    capabilities: frozenset[str] = frozenset()
    batch_size: int = 1
    class_names: list[str]

    @abstractmethod
    def predict(self, images: list[np.ndarray], *, want: frozenset[str] = frozenset()) -> list[Prediction]:
        """The kind's objects above the task's confidence threshold, after NMS, in original-image
        pixels. ``want`` names extra outputs a miner needs (capabilities of ymir_base.prediction,
        e.g. dense class maps): they cost time and memory, so they are made only when asked."""


class Backend(ABC):
    """One per image family: trains with the upstream trainer and builds predictors."""

    name: ClassVar[str]
    # the object kinds served (names of ymir_base.tasks.KINDS); the image's manifest.yaml lists
    # their object types, and a task of another type fails with 300005
    kinds: ClassVar[tuple[str, ...]] = ("detection",)
    mining_algorithms: ClassVar[tuple[str, ...]]
    img_man_dir: ClassVar[Path]
    params_file: ClassVar[Path]
    # small settings per task ("training", "infer", "mining") that make `ymir-exec verify` and
    # `make demo` finish in minutes on a CPU
    quick_settings: ClassVar[dict[str, dict[str, Any]]] = {}
    # how many sample images `ymir-exec demo` trains on (a third of them validate)
    demo_images: ClassVar[int] = 96

    @classmethod
    def served(cls) -> list[ObjectKind]:
        return [kind_named(k) for k in cls.kinds]

    @classmethod
    def kind_for(cls, object_type: int) -> ObjectKind:
        """The entry of the task map for a task's object type."""
        served = cls.served()
        for kind in served:
            if kind.object_type == object_type:
                return kind
        raise ObjectTypeError(f"object type {object_type} is not served by the {cls.name} image, which serves "
                              + ", ".join(f"{k.object_type} ({k.name})" for k in served))

    @classmethod
    def params_file_for(cls, kind: ObjectKind) -> Path:
        """The hyper-parameter schema of one kind (an image serving several kinds overrides this)."""
        return cls.params_file

    @classmethod
    def miners_for(cls, kind: ObjectKind) -> tuple[str, ...]:
        """The mining algorithms offered for one kind."""
        return cls.mining_algorithms

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
