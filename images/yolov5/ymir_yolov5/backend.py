"""The yolov5 image's backend: the ``yolov5`` package (YOLOv5 v7.0 models, n/s/m/l/x and P6)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

from ymir_base.data.types import Dataset
from ymir_base.engine.backend import Backend, Predictor
from ymir_base.monitor import Monitor
from ymir_base.protocol.context import TaskContext
from ymir_base.results.training import TrainingResult

HERE = Path(__file__).resolve().parent


class Yolov5Backend(Backend):
    name = "yolov5"
    mining_algorithms = ("random", "entropy", "aldd", "cald")
    img_man_dir = HERE.parent / "img-man"
    params_file = HERE / "params.yaml"
    quick_settings: ClassVar[dict[str, dict[str, Any]]] = {
        "training": {"model": "yolov5n", "epochs": 2, "img_size": 128, "batch_size_per_gpu": 4,
                     "num_workers_per_gpu": 0, "save_best_only": False, "save_period": 1},
        # a briefly trained model is unsure of everything: a low threshold keeps boxes to score
        "infer": {"img_size": 128, "batch_size_per_gpu": 4, "conf_thres": 0.001},
        "mining": {"img_size": 128, "batch_size_per_gpu": 4, "conf_thres": 0.001},
    }

    def train(self, ctx: TaskContext, dataset: Dataset, monitor: Monitor, result: TrainingResult) -> None:
        from ymir_yolov5 import train

        train.train(ctx, dataset, monitor, result)

    def predictor(self, ctx: TaskContext) -> Predictor:
        from ymir_yolov5.predictor import Yolov5Predictor

        return Yolov5Predictor.from_context(ctx)
