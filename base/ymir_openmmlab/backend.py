"""The backend base class of every OpenMMLab image; an image names its scope and its configs."""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from ymir_base.data.types import Dataset, ImageRecord
from ymir_base.engine.backend import Backend, Predictor
from ymir_base.errors import ConfigError
from ymir_base.monitor import Monitor
from ymir_base.protocol.context import TaskContext
from ymir_base.results.training import TrainingResult

if TYPE_CHECKING:
    from mmengine.config import Config

    from ymir_openmmlab.hooks import Evaluation

# tiny CPU settings for `ymir-exec verify`; a briefly trained model is unsure of everything: a low
# threshold keeps boxes to score
QUICK_TRAINING = {"max_epochs": 2, "img_size": 128, "samples_per_gpu": 4, "workers_per_gpu": 0}
QUICK_PREDICT = {"conf_threshold": 0.001, "samples_per_gpu": 4, "workers_per_gpu": 0}


def model_named(ctx: TaskContext, models: Mapping[str, str]) -> str:
    """The task's ``model_name`` (case and spaces ignored), one of ``models``' keys; a ConfigError
    naming the choices otherwise."""
    name = str(ctx.config["model_name"]).strip().lower()
    if name not in models:
        raise ConfigError(f"config key 'model_name': {name!r} is not one of {', '.join(models)}")
    return name


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

    # what the training and validation annotations are written as (a folder of work_dir): COCO
    # json, which the mmdet and mmyolo configs read with CocoDataset and evaluate with CocoMetric
    annotation_dir: ClassVar[str] = "coco"

    def write_annotations(self, records: list[ImageRecord], class_names: Sequence[str], out_file: Path) -> None:
        """One split's annotations in the form ``configure_data`` points the config's datasets at."""
        from ymir_base.data.convert.coco import write_coco_json

        write_coco_json(records, class_names, out_file)

    def configure_data(self, cfg: Config, train_file: Path, val_file: Path, class_names: list[str],
                       metric: str) -> None:
        """Point the config's datasets at our annotation files and its evaluators at the validation
        set; the test sections stay (inference reads the test pipeline), pointed at validation."""
        from ymir_openmmlab import config as mmcfg

        mmcfg.point_dataset(cfg.train_dataloader.dataset, train_file, class_names)
        for loader, evaluator in ((cfg.val_dataloader, cfg.val_evaluator), (cfg.test_dataloader, cfg.test_evaluator)):
            mmcfg.point_dataset(loader.dataset, val_file, class_names)
            mmcfg.set_evaluator(evaluator, val_file, metric)

    def adapt_config(self, cfg: Config, ctx: TaskContext, total_iters: int) -> None:
        """Image-specific changes to the training config (a run of ``total_iters`` iterations),
        before the user's options apply."""

    def checkpoints_to_keep(self, ctx: TaskContext) -> int:
        """How many of the latest evaluated stages to keep besides ``best`` (-1: all of them)."""
        return int(ctx.config.get("max_keep_checkpoints", 1))

    def score_threshold(self, cfg: Config) -> float | None:
        """The score threshold of result.yaml's ``evaluate_config`` (the model's test ``score_thr``);
        None where the image's kind has none (semantic segmentation)."""
        return float((cfg.model.get("test_cfg") or {}).get("score_thr", 0.001))

    def evaluation(self, metrics: Mapping[str, Any], class_names: Sequence[str]) -> Evaluation:
        """The validation metrics of the config's evaluator as one evaluation (CocoMetric here)."""
        from ymir_openmmlab.hooks import coco_evaluation

        return coco_evaluation(metrics, class_names)

    def train(self, ctx: TaskContext, dataset: Dataset, monitor: Monitor, result: TrainingResult) -> None:
        from ymir_openmmlab import train

        train.train(self, ctx, dataset, monitor, result)

    def predictor(self, ctx: TaskContext) -> Predictor:
        from ymir_openmmlab.predictor import OpenMMLabPredictor

        return OpenMMLabPredictor.from_context(ctx)
