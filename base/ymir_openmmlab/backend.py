"""The backend base class of every OpenMMLab image; an image names its scope and its configs."""

from __future__ import annotations

from abc import abstractmethod
from pathlib import Path
from typing import Any, ClassVar

from ymir_base.data.types import Dataset
from ymir_base.engine.backend import Backend, Predictor
from ymir_base.monitor import Monitor
from ymir_base.protocol.context import TaskContext
from ymir_base.results.training import TrainingResult

# tiny CPU settings for `ymir-exec verify`; a briefly trained model is unsure of everything: a low
# threshold keeps boxes to score
QUICK_TRAINING = {"max_epochs": 2, "img_size": 128, "samples_per_gpu": 4, "workers_per_gpu": 0}
QUICK_PREDICT = {"conf_threshold": 0.001, "samples_per_gpu": 4, "workers_per_gpu": 0}


def quick_settings_for(model: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """An OpenMMLab image's ``quick_settings``: ``model`` (its smallest model) + the shared ones."""
    return {"training": {**model, **QUICK_TRAINING}, "infer": dict(QUICK_PREDICT), "mining": dict(QUICK_PREDICT)}


class OpenMMLabBackend(Backend):
    scope: ClassVar[str]  # the registry scope of the configs: "mmdet", "mmyolo", ...

    @abstractmethod
    def model_key(self, ctx: TaskContext) -> str:
        """A short name of the chosen model (the file name of its baked weights)."""

    @abstractmethod
    def config_path(self, ctx: TaskContext) -> Path:
        """The upstream config file of the chosen model."""

    def train(self, ctx: TaskContext, dataset: Dataset, monitor: Monitor, result: TrainingResult) -> None:
        from ymir_openmmlab import train

        train.train(self, ctx, dataset, monitor, result)

    def predictor(self, ctx: TaskContext) -> Predictor:
        from ymir_openmmlab.predictor import OpenMMLabPredictor

        return OpenMMLabPredictor.from_context(ctx)
