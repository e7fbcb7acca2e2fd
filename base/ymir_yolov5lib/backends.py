"""The backends of the images built on the ``yolov5`` package, one per object kind: detection
(the yolov5 image, and seg-in-one's object type 2) and instance segmentation with YOLOv5-seg
(seg-in-one's object type 4). An image subclasses one with its ``name`` and ``img_man_dir``; its
weights are then looked for in ``/weights/<name>/<model>.pt``."""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import yaml

from ymir_base.data.types import Dataset
from ymir_base.engine.backend import Backend, Predictor
from ymir_base.monitor import Monitor
from ymir_base.protocol.context import TaskContext
from ymir_base.results.training import TrainingResult

PARAMS = Path(__file__).resolve().parent / "params"


# yolov5's own low-augmentation hyper-parameters changed for a tiny set of sample shapes: AdamW's
# lr0 0.004 decaying to a tenth, a one-epoch warm-up without the SGD bias boost, no mosaic, milder
# scaling and milder saturation/brightness jitter (colour is what tells the sample's classes apart)
HYP_CHANGES = {"lr0": 0.004, "lrf": 0.1, "warmup_epochs": 1.0, "warmup_bias_lr": 0.0, "mosaic": 0.0, "scale": 0.2,
               "hsv_s": 0.2, "hsv_v": 0.2}


def demo_hyp(work_dir: Path, name: str = "demo-hyp.yaml") -> Path:
    """``hyp.scratch-low.yaml`` of the yolov5 package with ``HYP_CHANGES``, written to work_dir."""
    from ymir_yolov5lib.models import PACKAGE_DIR

    hyp = yaml.safe_load((PACKAGE_DIR / "data" / "hyps" / "hyp.scratch-low.yaml").read_text())
    hyp.update(HYP_CHANGES)
    path = Path(work_dir) / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(hyp, sort_keys=False))
    return path


def quick_settings_for(model: str) -> dict[str, dict[str, Any]]:
    """Tiny CPU settings of `ymir-exec verify` with the smallest ``model``: two epochs at 128 px,
    a stage each; a briefly trained model is unsure of everything, so a low threshold keeps
    objects to score."""
    predict = {"img_size": 128, "batch_size_per_gpu": 4, "conf_thres": 0.001}
    return {"training": {"model": model, "epochs": 2, "img_size": 128, "batch_size_per_gpu": 4,
                         "num_workers_per_gpu": 0, "save_best_only": False, "save_period": 1},
            "infer": dict(predict), "mining": dict(predict)}


class Yolov5DetectionBackend(Backend):
    """YOLOv5 v7.0 detection: n/s/m/l/x and the P6 models."""

    params_file = PARAMS / "detection.yaml"
    quick_settings: ClassVar[dict[str, dict[str, Any]]] = quick_settings_for("yolov5n")

    @classmethod
    def demo_settings(cls, work_dir: Path) -> dict[str, dict[str, Any]]:
        """yolov5n from random initialisation learns the sample shapes (mAP@0.5 ~0.8) in about two
        CPU minutes with :func:`demo_hyp`. Infer and mining keep the templates' thresholds."""
        size = {"img_size": 128}
        return {
            "training": {"model": "yolov5n", "epochs": 40, **size, "batch_size_per_gpu": 4,
                         "num_workers_per_gpu": 2,
                         "args_options": f"--optimizer AdamW --hyp {demo_hyp(work_dir)}"},
            "infer": {**size, "batch_size_per_gpu": 16},
            "mining": {**size, "batch_size_per_gpu": 16},
        }

    def train(self, ctx: TaskContext, dataset: Dataset, monitor: Monitor, result: TrainingResult) -> None:
        from ymir_yolov5lib import train

        train.train(self, ctx, dataset, monitor, result)

    def predictor(self, ctx: TaskContext) -> Predictor:
        from ymir_yolov5lib.predictor import Yolov5Predictor

        return Yolov5Predictor.from_context(ctx)


class Yolov5SegBackend(Backend):
    """YOLOv5-seg v7.0 instance segmentation: yolov5n-seg to yolov5x-seg."""

    kinds: ClassVar[tuple[str, ...]] = ("instance",)
    params_file = PARAMS / "instance.yaml"
    quick_settings: ClassVar[dict[str, dict[str, Any]]] = quick_settings_for("yolov5n-seg")

    @classmethod
    def demo_settings(cls, work_dir: Path) -> dict[str, dict[str, Any]]:
        from ymir_yolov5lib.segment_demo import instance_demo_settings

        return instance_demo_settings(work_dir)

    def train(self, ctx: TaskContext, dataset: Dataset, monitor: Monitor, result: TrainingResult) -> None:
        from ymir_yolov5lib import segment_train

        segment_train.train(self, ctx, dataset, monitor, result)

    def predictor(self, ctx: TaskContext) -> Predictor:
        from ymir_yolov5lib.segment_predictor import Yolov5SegPredictor

        return Yolov5SegPredictor.from_context(ctx)
