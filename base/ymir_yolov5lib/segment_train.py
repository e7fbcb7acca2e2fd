"""Instance segmentation through the ``yolov5`` package's own YOLOv5-seg trainer
(``yolov5/segment/train.py``), reporting to YMIR like the detection trainer (train.py): the same
options (``args_options`` parsed by the seg trainer's parser, sync_bn, DDP when gpu_count > 1),
the same stages (``best`` by mask mAP@0.5, ``epoch_<n>`` every save_period epochs unless
save_best_only), resume of a killed run from ``/out/work/yolov5/train-seg/weights/last.pt``, and
the ONNX export of the best stage. Stage metrics: ``maskAP`` and ``boxAP`` (mAP@0.5 of masks and
of boxes); precision, recall and mAP@0.5:0.95 of both go to tensorboard and the stage's metrics
attachment (the seg trainer gives no per-class AP).

The seg trainer calls none of its callbacks (they are commented out in yolov5 7.0), so this
module hooks the three module-level names it does call, for the duration of one run:

- ``GenericLogger``: ``log_metrics`` receives each epoch's losses and validation numbers;
  ``log_model`` is called with ``weights/epoch<N>.pt`` right after each epoch's checkpoint is
  written when the trainer's ``save_period`` is 1, which this module sets (YMIR's own
  ``save_period`` decides the stages), and with ``best.pt`` once training has ended.
- ``tqdm`` (the training batch loop only): progress after every batch.
- ``ComputeLoss``: every loss is checked for NaN/inf (NanError 300201).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType
from typing import Any

import torch

from ymir_base.data.types import Dataset
from ymir_base.engine.backend import Backend
from ymir_base.engine.training import EpochJournal, TaskMarker, check_finite_loss
from ymir_base.errors import ModelError
from ymir_base.monitor import Monitor
from ymir_base.protocol.context import TaskContext
from ymir_base.results.metrics import DetectionEvaluation, InstanceEvaluation
from ymir_base.results.training import TrainingResult
from ymir_yolov5lib import models, trust
from ymir_yolov5lib.atomic_save import atomic_torch_saves
from ymir_yolov5lib.segment_data import write_seg_dataset
from ymir_yolov5lib.train import (
    _Reporter,
    build_opt,
    changed_options,
    drive,
    resumable_checkpoint,
    run_dir,
    run_options,
)

LOG = logging.getLogger(__name__)
RUN_NAME = "train-seg"
LR_HINT = "yolov5's hyp lr0: args_options --hyp FILE"


def train(backend: Backend, ctx: TaskContext, dataset: Dataset, monitor: Monitor, result: TrainingResult) -> None:
    data_dir = ctx.work_dir / "yolo-seg-data"
    drive(ctx, result, data_dir / "data.yaml", lambda: write_seg_dataset(dataset, data_dir),
          lambda data_yaml: _train_here(backend, ctx, dataset, data_yaml, monitor, result))


def _train_here(backend: Backend, ctx: TaskContext, dataset: Dataset, data_yaml: Path, monitor: Monitor,
                result: TrainingResult) -> None:
    from yolov5.segment import train as y5seg

    folder = run_dir(ctx, RUN_NAME)
    resume = resumable_checkpoint(ctx, folder)
    if resume == "finished":
        LOG.info("training of this task already finished in an earlier run; keeping its stages")
        return
    if not resume:
        models.check_model_name(str(ctx.config["model"]), models.SEG)
    opt = build_opt(backend, ctx, data_yaml, resume, y5seg.parse_opt, folder)
    if not resume and opt.weights:
        check_segment_weights(Path(opt.weights))
    opt.save_period = 1  # the trainer then hands every epoch's checkpoint to GenericLogger.log_model
    run = run_options(opt, resume)
    reporter = _SegReporter(ctx, monitor, result, dataset, epochs=int(run["epochs"]),
                            batches_per_epoch=math.ceil(len(dataset.train) / max(1, int(run["batch_size"]))),
                            journal=EpochJournal(folder), start_epoch=resume.epochs_done if resume else 0)
    if reporter.catch_up(resume):
        reporter.close()
        return
    TaskMarker(folder).write(ctx.task_id)
    LOG.info("yolov5-seg train options: %s", changed_options(opt, y5seg.parse_opt))
    try:
        with _hooked(y5seg, reporter), atomic_torch_saves():  # a kill never leaves last.pt half written
            y5seg.main(opt)
    finally:
        reporter.close()


def check_segment_weights(path: Path) -> None:
    """ModelError (300004) unless ``path`` holds a YOLOv5-seg model (a detection checkpoint would
    train a model without masks)."""
    from yolov5.models.yolo import Segment

    trust.check_checkpoint(path)  # before anything unpickles it
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=False)
        model = ckpt.get("ema") or ckpt["model"]
        head = model.model[-1]
    except Exception as exc:
        raise ModelError(f"cannot read YOLOv5 weights {path}: {type(exc).__name__}: {exc}") from exc
    if not isinstance(head, Segment):
        raise ModelError(f"{path} holds a YOLOv5 {type(head).__name__} model, not a YOLOv5-seg (Segment) model")


@contextmanager
def _hooked(module: ModuleType, reporter: _SegReporter) -> Iterator[None]:
    """Replace the seg trainer's GenericLogger, tqdm and ComputeLoss by subclasses that also
    report to ``reporter`` (see the module docstring); restored afterwards."""

    class Logger(module.GenericLogger):  # type: ignore[name-defined,misc]
        def __init__(self, opt: Any, console_logger: Any, include: tuple[str, ...] = ()):
            super().__init__(opt, console_logger, include=())  # results.csv only; tensorboard is ours
            self.tb = self.wandb = self.neptune = None

        def log_metrics(self, metrics: dict[str, Any], epoch: int) -> None:
            super().log_metrics(metrics, epoch)
            if "train/box_loss" in metrics:  # an epoch's evaluation, not the final re-validation
                reporter.on_epoch_metrics(metrics, epoch)

        def log_model(self, model_path: Any, epoch: int = 0, metadata: Any = None) -> None:
            reporter.on_checkpoint(Path(model_path))

    class Bar(module.tqdm):  # type: ignore[name-defined,misc]
        def __iter__(self) -> Iterator[Any]:
            for item in super().__iter__():
                yield item
                reporter.on_batch()

    class CheckedLoss(module.ComputeLoss):  # type: ignore[name-defined,misc]
        def __call__(self, preds: Any, targets: Any, masks: Any) -> Any:
            loss, items = super().__call__(preds, targets, masks)
            reporter.check_loss(items)
            return loss, items

    names = {"GenericLogger": Logger, "tqdm": Bar, "ComputeLoss": CheckedLoss}
    saved = {name: getattr(module, name) for name in names}
    for name, value in names.items():
        setattr(module, name, value)
    try:
        yield
    finally:
        for name, value in saved.items():
            setattr(module, name, value)


def evaluation_from_metrics(metrics: dict[str, Any]) -> InstanceEvaluation:
    """The seg trainer's per-epoch numbers (yolov5.utils.segment.metrics.KEYS) -> an evaluation."""

    def of(suffix: str) -> DetectionEvaluation:
        return DetectionEvaluation(float(metrics[f"metrics/mAP_0.5({suffix})"]),
                                   map50_95=float(metrics[f"metrics/mAP_0.5:0.95({suffix})"]),
                                   precision=float(metrics[f"metrics/precision({suffix})"]),
                                   recall=float(metrics[f"metrics/recall({suffix})"]))

    return InstanceEvaluation(mask=of("M"), box=of("B"))


class _SegReporter(_Reporter):
    """The detection reporter's stages, progress and tensorboard, fed by the seg trainer's hooks."""

    def __init__(self, ctx: TaskContext, monitor: Monitor, result: TrainingResult, dataset: Dataset, epochs: int,
                 batches_per_epoch: int, journal: EpochJournal, start_epoch: int = 0):
        super().__init__(ctx, monitor, result, dataset, epochs, batches_per_epoch, journal)
        self.evaluation = InstanceEvaluation(DetectionEvaluation(0.0), DetectionEvaluation(0.0))
        self.iteration = start_epoch * self.batches
        self.epoch = start_epoch  # 1-based number of the last evaluated epoch

    def main_value(self) -> float:
        return self.evaluation.mask.map50

    def evaluation_of(self, logged: Any) -> InstanceEvaluation:
        return evaluation_from_metrics(logged)

    def on_batch(self) -> None:
        self.iteration += 1
        self.monitor.progress(0.95 * min(1.0, self.iteration / (self.epochs * self.batches)))

    def check_loss(self, items: Any) -> None:
        check_finite_loss(items, self.iteration, LR_HINT)

    def on_epoch_metrics(self, metrics: dict[str, Any], epoch: int) -> None:
        self.epoch = epoch + 1
        self.iteration = self.epoch * self.batches
        self.evaluation = self.evaluation_of(metrics)
        self.journal.evaluated(self.epoch, {key: float(value) for key, value in metrics.items()})
        if self.tb is not None:
            losses = {k: float(v) for k, v in metrics.items() if k.startswith(("train/", "val/"))}
            for tag, value in {**losses, **self.evaluation.scalars()}.items():
                self.tb.add_scalar(tag, value, self.epoch)
            self.tb.flush()
        LOG.info("epoch %d/%d: %s", self.epoch, self.epochs, self.evaluation.describe())

    def on_checkpoint(self, path: Path) -> None:
        """``epoch<N>.pt``: this epoch's checkpoint, turned into stages and deleted. ``best.pt``:
        training ended (maybe early): the last epoch gets its stage if it has none yet."""
        if path.name.startswith("epoch"):
            self.save_stages(path, self.epoch, self.epoch == self.epochs)
            path.unlink(missing_ok=True)
            return
        name = f"epoch_{self.epoch}"
        last = path.parent / "last.pt"
        if not self.ctx.config["save_best_only"] and self.epoch and name not in self.result.stages and last.is_file():
            self._stage(name, last, f"{name}.pt", self.epoch)
