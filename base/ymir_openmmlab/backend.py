"""The backend base class of every OpenMMLab image; an image names its scope and its configs."""

from __future__ import annotations

import logging
import os
from abc import abstractmethod
from pathlib import Path
from typing import Any, ClassVar

from ymir_base.data.types import Dataset
from ymir_base.engine.backend import Backend, Predictor
from ymir_base.monitor import Monitor
from ymir_base.protocol.context import TaskContext
from ymir_base.results.training import TrainingResult

LOG = logging.getLogger(__name__)

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

    def weights_dir(self) -> Path:
        """Where the image bakes its COCO weights (``/weights/<image>``)."""
        return Path(os.environ.get("YMIR_WEIGHTS_DIR", "/weights")) / self.name

    def initial_weights(self, ctx: TaskContext) -> Path | None:
        """The user's pretrained model > the baked COCO weights > none (random initialisation)."""
        user = ctx.model_files((".pth",)) if ctx.config.get("pretrained_model_params") else []
        if user:
            LOG.info("pretrained weights from the chosen model: %s", user[0])
            return user[0]
        baked = self.weights_dir() / f"{self.model_key(ctx)}.pth"
        if baked.is_file():
            LOG.info("pretrained weights baked in the image: %s", baked)
            return baked
        LOG.warning("no pretrained weights given and none baked in for %s: training from random "
                    "initialisation (expect a much lower mAP for the same epochs)", self.model_key(ctx))
        return None

    def train(self, ctx: TaskContext, dataset: Dataset, monitor: Monitor, result: TrainingResult) -> None:
        from ymir_openmmlab import train

        train.train(self, ctx, dataset, monitor, result)

    def predictor(self, ctx: TaskContext) -> Predictor:
        from ymir_openmmlab.predictor import OpenMMLabPredictor

        return OpenMMLabPredictor.from_context(ctx)
