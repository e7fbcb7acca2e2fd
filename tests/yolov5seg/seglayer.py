"""Helpers the tests here import: task contexts for the YOLOv5-seg layer without an image (a
backend on the layer's train() and predictor, the seed's instance tables as its schema,
instance sample data from the base's generator) and the engine's own training and prediction
paths."""

from __future__ import annotations

from pathlib import Path

import torch
import yaml

from ymir_base.engine import predict
from ymir_base.engine.task import _train
from ymir_base.monitor import Monitor
from ymir_base.protocol.context import ImageSpec, TaskContext, build_context
from ymir_base.protocol.params import ParamSchema
from ymir_base.protocol.paths import PathMapper
from ymir_base.results.training import TrainingResult
from ymir_base.sample.generator import generate
from ymir_yolov5lib.backends import Yolov5SegBackend

HERE = Path(__file__).resolve().parent
CLASSES = ["circle", "square", "triangle"]
TINY = {"model": "yolov5n-seg", "epochs": 1, "img_size": 64, "batch_size_per_gpu": 4, "num_workers_per_gpu": 0}


class SegLayerBackend(Yolov5SegBackend):
    """The layer's instance backend without an image (seg-in-one's object type 4 is this)."""

    name = "yolov5seg-layer"
    img_man_dir = HERE


def make_context(in_dir: Path, out_dir: Path, overrides: dict | None = None) -> TaskContext:
    img_man = out_dir.parent / "img-man"
    img_man.mkdir(exist_ok=True)
    (img_man / "manifest.yaml").write_text(yaml.safe_dump({"object_type": 4}))
    spec = ImageSpec("yolov5seg-layer", img_man, {4: ParamSchema.load(SegLayerBackend.params_file)})
    return build_context(spec, PathMapper(in_dir, out_dir), overrides=overrides)


def run_training(ctx: TaskContext) -> TrainingResult:
    """The engine's training path (dataset loading, export-format check, backend.train)."""
    backend = SegLayerBackend()
    monitor = Monitor(ctx.host(ctx.env.output.monitor_file), ctx.task_id)
    _train(ctx, backend, backend.kind_for(ctx.object_type), monitor)
    return TrainingResult.load(ctx.models_out, ctx.object_type)


def run_infer(ctx: TaskContext) -> None:
    backend = SegLayerBackend()
    predict.run_prediction(ctx, backend, Monitor(ctx.host(ctx.env.output.monitor_file), ctx.task_id))


def seg_task(tmp_path: Path, task: str = "training", overrides: dict | None = None,
             **kwargs) -> tuple[TaskContext, Path, Path]:
    """``(ctx, in_dir, out_dir)`` of a sample instance task under ``tmp_path`` (keyword
    arguments go to the generator; 6 images unless told)."""
    root = tmp_path / f"{task.replace('+', '-')}-{len(list(tmp_path.iterdir()))}"
    in_dir, out_dir = root / "in", root / "out"
    out_dir.mkdir(parents=True)
    kwargs.setdefault("images", 6)
    generate(in_dir, task=task, object_type="instance", fmt="coco", **kwargs)
    return make_context(in_dir, out_dir, overrides), in_dir, out_dir


def seg_checkpoint(folder: Path, name: str = "yolov5n-seg", seed: int = 0) -> Path:
    """A random-init YOLOv5-seg for the sample's classes, saved as the trainer saves it. Fresh
    batch norms (mean 0, variance 1) shrink the features until the head's biases alone decide
    the scores, which leaves NMS nothing but ties to order; so the batch norms get the statistics
    of one batch of noise, and the head's biases -1 (some dozens of detections per image)."""
    from ymir_yolov5lib import models, runtime

    runtime.prepare()
    from yolov5.models.yolo import SegmentationModel

    torch.manual_seed(seed)
    model = SegmentationModel(str(models.model_yaml(name)), ch=3, nc=len(CLASSES))
    for module in model.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.reset_running_stats()
            module.momentum = None  # the running statistics become this batch's
    with torch.no_grad():
        model.train()(torch.rand(8, 3, 96, 96))
        for conv in model.model[-1].m:
            conv.bias.fill_(-1.0)
    model.eval().names = dict(enumerate(CLASSES))
    folder.mkdir(parents=True, exist_ok=True)
    torch.save({"model": model.half(), "epoch": -1}, folder / "best.pt")
    return folder / "best.pt"
