"""The contract between the base engine and an image's backend (design: "the backend contract")."""

from __future__ import annotations

import logging
import os
from abc import ABC, abstractmethod
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from ymir_base.data.types import Dataset
from ymir_base.errors import ObjectTypeError
from ymir_base.monitor import Monitor
from ymir_base.prediction import Prediction
from ymir_base.protocol.context import TaskContext
from ymir_base.protocol.params import ParamSchema
from ymir_base.results.training import TrainingResult
from ymir_base.tasks import ObjectKind, kind_named

LOG = logging.getLogger(__name__)


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


def model_class_names(task: Sequence[str] | None, model: Sequence[str], num_classes: int) -> list[str]:
    """The names a predictor reports: the task's ``class_names`` when they fit the model's
    class count, else the names the model was trained with, else ``class_<i>``."""
    if task and len(task) == num_classes:
        return list(task)
    if task:
        LOG.warning("config class_names %s do not match the model's %d classes; using the model's names",
                    list(task), num_classes)
    if len(model) == num_classes:
        return list(model)
    return [f"class_{i}" for i in range(num_classes)]


def mining_algorithms_of(params_file: Path) -> tuple[str, ...]:
    """The choices of the image's ``mining.mining_algorithm`` parameter."""
    spec = ParamSchema.load(params_file).for_task("mining").get("mining_algorithm")
    return tuple(str(c) for c in spec.choices) if spec is not None and spec.choices else ()


class Backend(ABC):
    """One per image family: trains with the upstream trainer and builds predictors."""

    name: ClassVar[str]
    # the object kinds served (names of ymir_base.tasks.KINDS); the image's manifest.yaml lists
    # their object types, and a task of another type fails with 300005
    kinds: ClassVar[tuple[str, ...]] = ("detection",)
    img_man_dir: ClassVar[Path]
    params_file: ClassVar[Path]
    # what the image offers, read from params.yaml (mining.mining_algorithm choices) when the
    # class is defined: the one list the UI, the validation and the engine all use
    mining_algorithms: ClassVar[tuple[str, ...]] = ()
    # small settings per task ("training", "infer", "mining") that make `ymir-exec verify` and
    # `make demo` finish in minutes on a CPU
    quick_settings: ClassVar[dict[str, dict[str, Any]]] = {}
    # how many sample images `ymir-exec demo` trains on (a third of them validate)
    demo_images: ClassVar[int] = 96

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "mining_algorithms" in cls.__dict__:
            raise TypeError(f"{cls.__name__}: mining_algorithms is read from params.yaml "
                            "(mining.mining_algorithm choices); do not list it in the class")
        if "params_file" in cls.__dict__:
            cls.mining_algorithms = mining_algorithms_of(cls.params_file)

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
    def quick_settings_for(cls, kind: ObjectKind) -> dict[str, dict[str, Any]]:
        """The ``quick_settings`` of one kind (an image serving several kinds overrides this)."""
        return cls.quick_settings

    @classmethod
    def miners_for(cls, kind: ObjectKind) -> tuple[str, ...]:
        """The mining algorithms offered for one kind: the choices of its params.yaml."""
        return mining_algorithms_of(cls.params_file_for(kind))

    @abstractmethod
    def train(self, ctx: TaskContext, dataset: Dataset, monitor: Monitor, result: TrainingResult) -> None:
        """Train, adding a stage to ``result`` after every evaluation."""

    # the folder of /weights this backend's baked weights are in: the image's own unless it bakes
    # another image's manifest too (seg-in-one's detection has the yolov5 image's weights)
    weights_folder: ClassVar[str | None] = None

    @classmethod
    def weights_dir(cls) -> Path:
        """Where the image bakes its pretrained weights: ``/weights/<image>`` (``YMIR_WEIGHTS_DIR``
        replaces ``/weights``)."""
        return Path(os.environ.get("YMIR_WEIGHTS_DIR", "/weights")) / (cls.weights_folder or cls.name)

    def starting_weights(self, ctx: TaskContext, model: str, suffix: str) -> Path | None:
        """The user's pretrained model (``pretrained_model_params``) > the weights baked in the
        image for ``model`` (``<weights_dir>/<model><suffix>``) > None: random initialisation."""
        user = ctx.model_files((suffix,)) if ctx.config.get("pretrained_model_params") else []
        if user:
            LOG.info("pretrained weights from the chosen model: %s", user[0])
            return user[0]
        baked = self.weights_dir() / f"{model}{suffix}"
        if baked.is_file():
            LOG.info("pretrained weights baked in the image: %s", baked)
            return baked
        LOG.warning("no pretrained weights given and none baked in for %s: training from random "
                    "initialisation (expect a much lower mAP for the same epochs)", model)
        return None

    @classmethod
    def demo_settings(cls, work_dir: Path) -> dict[str, dict[str, Any]]:
        """Settings per task with which `ymir-exec demo` (`make demo`) trains a model that really
        detects the sample shapes in a few CPU minutes; files they need go to ``work_dir``.
        Empty: this image has no demo."""
        return {}

    @abstractmethod
    def predictor(self, ctx: TaskContext) -> Predictor:
        """Load the model given by ``model_params_path`` for infer and mining."""
