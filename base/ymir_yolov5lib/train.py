"""Training through the ``yolov5`` package's own trainer, reporting to YMIR through callbacks.

Every evaluation becomes a stage: ``best`` (the best mAP@0.5 so far, the stage ``mAP`` of every
image) and, with ``save_best_only: false``, ``epoch_<n>`` every ``save_period`` epochs and at the
end. Stage weights are the trainer's checkpoints with the optimizer stripped. Precision, recall,
mAP@0.5:0.95 and the per-class AP go to tensorboard and to each stage's metrics attachment. A run killed by YMIR resumes
from ``/out/work/yolov5/train/weights/last.pt`` when the same task starts again.
"""

from __future__ import annotations

import logging
import math
import os
import shlex
import sys
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import yaml

from ymir_base.data.convert.yolo import write_yolo_dataset
from ymir_base.data.types import Dataset
from ymir_base.engine import shm
from ymir_base.engine.backend import Backend
from ymir_base.engine.ddp import launch_torchrun
from ymir_base.engine.training import EpochJournal, TaskMarker, check_finite_loss
from ymir_base.errors import ConfigError, ModelError
from ymir_base.monitor import Monitor
from ymir_base.protocol.context import TaskContext
from ymir_base.ranks import is_distributed_child, is_rank_zero
from ymir_base.results.metrics import AP50, AP50_95, DetectionEvaluation, evaluate_config
from ymir_base.results.training import TrainingResult
from ymir_yolov5lib import models, runtime, trust
from ymir_yolov5lib.atomic_save import atomic_torch_saves
from ymir_yolov5lib.head_fit import fit_head

LOG = logging.getLogger(__name__)
STAGE_BEST = "best"
# positions of the losses in the values of yolov5's on_fit_epoch_end callback
LOSS_TAGS = {0: "train/box_loss", 1: "train/obj_loss", 2: "train/cls_loss",
             7: "val/box_loss", 8: "val/obj_loss", 9: "val/cls_loss"}


def run_dir(ctx: TaskContext, name: str = "train") -> Path:
    """The trainer's own run folder (checkpoints, opt.yaml) under /out/work/yolov5."""
    return ctx.work_dir / "yolov5" / name


def train(backend: Backend, ctx: TaskContext, dataset: Dataset, monitor: Monitor, result: TrainingResult) -> None:
    data_dir = ctx.work_dir / "yolo-data"
    drive(ctx, result, data_dir / "data.yaml", lambda: write_yolo_dataset(dataset, data_dir),
          lambda data_yaml: _train_here(backend, ctx, dataset, data_yaml, monitor, result))


def drive(ctx: TaskContext, result: TrainingResult, data_yaml: Path, write_data: Callable[[], Path],
          train_here: Callable[[Path], None]) -> None:
    """What every yolov5 trainer run shares: convert the dataset (DDP ranks reuse the parent's),
    train here or re-run this command under torchrun with one rank per GPU, then export the
    best stage to ONNX."""
    runtime.prepare()
    runtime.import_yolov5()
    if not (is_distributed_child() and data_yaml.is_file()):
        data_yaml = write_data()
    if ctx.gpu_count > 1 and not is_distributed_child():
        launch_torchrun(ctx.gpu_count)
        result.reload()  # the ranks wrote the stages
    else:
        train_here(data_yaml)
    if is_rank_zero() and result.stages and not is_distributed_child():
        export_onnx(ctx, result)


def _train_here(backend: Backend, ctx: TaskContext, dataset: Dataset, data_yaml: Path, monitor: Monitor,
                result: TrainingResult) -> None:
    from yolov5 import train as y5train
    from yolov5.utils.callbacks import Callbacks

    resume = resumable_checkpoint(ctx, run_dir(ctx))
    if resume == "finished":
        LOG.info("training of this task already finished in an earlier run; keeping its stages")
        return
    opt = build_opt(backend, ctx, data_yaml, resume, y5train.parse_opt, run_dir(ctx))
    run = run_options(opt, resume)
    reporter = _Reporter(ctx, monitor, result, dataset, epochs=int(run["epochs"]),
                         batches_per_epoch=math.ceil(len(dataset.train) / max(1, int(run["batch_size"]))),
                         journal=EpochJournal(run_dir(ctx)))
    if reporter.catch_up(resume):
        reporter.close()
        return
    callbacks = Callbacks()
    callbacks.register_action("on_train_batch_end", callback=reporter.on_train_batch_end)
    callbacks.register_action("on_fit_epoch_end", callback=reporter.on_fit_epoch_end)
    callbacks.register_action("on_model_save", callback=reporter.on_model_save)
    TaskMarker(run_dir(ctx)).write(ctx.task_id)
    LOG.info("yolov5 train options: %s", changed_options(opt, y5train.parse_opt))
    with atomic_torch_saves():  # a kill never leaves last.pt half written
        y5train.main(opt, callbacks)
    reporter.close()


@dataclass(frozen=True)
class Resume:
    """A killed run to resume: its ``last.pt``, the epochs that checkpoint holds (1-based), and
    the options yolov5 will resume it with (``killed_run_options``). Read from one load."""

    checkpoint: Path
    epochs_done: int
    options: dict[str, Any]

    def __str__(self) -> str:  # what train.py's --resume takes
        return str(self.checkpoint)


def resumable_checkpoint(ctx: TaskContext, folder: Path) -> Resume | str | None:
    """This task's killed run in ``folder``, "finished" when that run ended, None when there is
    nothing to resume."""
    last = folder / "weights" / "last.pt"
    if not (last.is_file() and TaskMarker(folder).matches(ctx.task_id)):
        return None
    try:
        trust.check_checkpoint(last)
        checkpoint = torch.load(last, map_location="cpu", weights_only=False)
        epoch = checkpoint.get("epoch", -1)
    except Exception as exc:  # a checkpoint cut short by the kill: start again
        LOG.warning("cannot resume from %s (%s); training from the start", last, exc)
        return None
    if epoch == -1:
        return "finished"
    LOG.info("resuming the killed run of this task from %s (epoch %d done)", last, epoch + 1)
    return Resume(last, int(epoch) + 1, killed_run_options(last, checkpoint))


def killed_run_options(last: Path, checkpoint: dict[str, Any]) -> dict[str, Any]:
    """The options yolov5 resumes ``last`` with: its run folder's opt.yaml, else the checkpoint's."""
    saved = Path(last).parent.parent / "opt.yaml"
    if saved.is_file():
        return yaml.safe_load(saved.read_text(encoding="utf-8"))
    return dict(checkpoint.get("opt") or {})


def run_options(opt: Any, resume: Resume | None) -> dict[str, Any]:
    """The options the trainer runs with. Resuming, yolov5 replaces the parsed ``opt`` (defaults
    but ``--resume``) by the killed run's."""
    return resume.options if resume else vars(opt)


def build_opt(backend: Backend, ctx: TaskContext, data_yaml: Path, resume: Resume | None,
              parse_opt: Callable[..., Any], folder: Path) -> Any:
    """The trainer's options from the task's config, parsed by the trainer's own ``parse_opt``
    (``args_options`` last, so a user's option wins); ``folder`` is the run folder."""
    cfg = ctx.config
    if resume:
        argv = ["--resume", str(resume)]
    else:
        weights, arch = _initial_weights(backend, ctx)
        total_batch = int(cfg["batch_size_per_gpu"]) * max(1, ctx.gpu_count)
        device = ",".join(str(i) for i in ctx.gpu_ids) if ctx.gpu_ids else "cpu"
        argv = ["--data", str(data_yaml), "--weights", weights, "--cfg", arch,
                "--epochs", str(cfg["epochs"]), "--batch-size", str(total_batch),
                "--imgsz", str(cfg["img_size"]), "--workers", str(_workers(cfg, ctx.gpu_count)),
                "--device", device, "--project", str(folder.parent), "--name", folder.name,
                "--exist-ok", "--noplots", "--save-period", "-1"]
        if cfg["sync_bn"] and ctx.gpu_count > 1:
            argv.append("--sync-bn")
        argv += shlex.split(str(cfg.get("args_options") or ""))
    with _argv(["train.py", *argv]):
        try:
            opt = parse_opt(known=False)
        except SystemExit:
            raise ConfigError(f"config key 'args_options': {cfg.get('args_options')!r} is not a valid set of "
                              "yolov5 train.py options (see the log for the parser's message)") from None
    return opt


def changed_options(opt: Any, parse_opt: Callable[..., Any]) -> dict[str, Any]:
    """The options of ``opt`` that differ from the defaults of the trainer's ``parse_opt``, paths
    as strings: what the log shows. Complete, so that the trainer's own command line can repeat
    the run (falsy values such as ``--workers 0`` or ``--weights ''`` included)."""
    with _argv(["train.py"]):
        defaults = vars(parse_opt(known=True))
    return {k: str(v) if isinstance(v, Path) else v for k, v in vars(opt).items()
            if k not in defaults or v != defaults[k]}


def _workers(cfg: dict[str, Any], gpus: int) -> int:
    """``num_workers_per_gpu``, or fewer when /dev/shm is too small for them. yolov5 keeps its
    training workers alive through validation, which runs twice as many workers on batches twice
    as large: each worker's share is PREFETCH batches of the training size and four times as many
    bytes for validation."""
    batch = shm.batch_bytes(int(cfg["batch_size_per_gpu"]), int(cfg["img_size"]))
    return shm.loader_workers(int(cfg["num_workers_per_gpu"]), shm.PREFETCH * batch * (1 + 4), processes=gpus)


@contextmanager
def _argv(argv: list[str]):
    saved = sys.argv
    sys.argv = argv
    try:
        yield
    finally:
        sys.argv = saved


def _initial_weights(backend: Backend, ctx: TaskContext) -> tuple[str, str]:
    """(weights, architecture yaml): user model > baked COCO weights > random init. The trainer
    builds the model from the weights' own architecture description: both are checked first
    (trust.py). Weights for other classes start with their head fitted to the task's (head_fit.py)."""
    cfg = ctx.config
    name = str(cfg["model"])
    weights = backend.starting_weights(ctx, name, ".pt")
    spec = None
    if weights:
        ckpt, spec = checked_checkpoint(weights)
        weights, change = fit_head(weights, ctx.class_names, ctx.work_dir / "start" / f"{name}.pt", ckpt)
        if change:
            LOG.info("starting weights: %s", change)
    arch = "" if weights and not cfg.get("activate") else str(_architecture(ctx, name, spec))
    return (str(weights) if weights else ""), arch


def checked_checkpoint(weights: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """A YOLOv5 checkpoint and its architecture description (``model.yaml``), the file checked
    before it is unpickled and the description before yolov5 evaluates its strings."""
    trust.check_checkpoint(weights)
    try:
        ckpt = torch.load(weights, map_location="cpu", weights_only=False)
        spec = dict((ckpt.get("ema") or ckpt["model"]).yaml)
    except Exception as exc:
        raise ModelError(f"cannot read the model architecture from {weights}: {type(exc).__name__}: {exc}") from exc
    trust.check_architecture(spec, weights)
    return ckpt, spec


def _architecture(ctx: TaskContext, name: str, spec: dict[str, Any] | None) -> Path:
    """The model yaml (the starting weights' ``spec``, else the named model's), with
    ``activation`` replaced when the user asked for one."""
    if spec is None:
        spec = yaml.safe_load(models.model_yaml(name).read_text())
    activate = str(ctx.config.get("activate") or "").strip()
    if not activate:
        return models.model_yaml(name)
    act_name = activate.removeprefix("nn.").split("(")[0]
    if not isinstance(getattr(torch.nn, act_name, None), type):
        raise ConfigError(f"config key 'activate': {activate!r} is not a torch.nn activation "
                          "(e.g. SiLU, ReLU, LeakyReLU, Hardswish)")
    spec["activation"] = f"nn.{act_name}()"
    path = ctx.work_dir / f"{name}-{act_name}.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return path


def evaluation_from_log(log_vals: list[float], class_names: list[str], val_classes: set[int]) -> DetectionEvaluation:
    """yolov5's ``on_fit_epoch_end`` values: 3 training losses, precision, recall, mAP@0.5,
    mAP@0.5:0.95, 3 validation losses, 3 learning rates, then (this yolov5 package) AP@0.5:0.95 and
    AP@0.5 of each of the nc classes. yolov5 gives a class without validation objects the overall
    mAP there; such a class gets no per-class number."""
    precision, recall, map50, map50_95 = log_vals[3:7]
    nc = len(class_names)
    per_class: dict[str, dict[str, float | None]] = {}
    if len(log_vals) >= 13 + 2 * nc:
        aps, ap50s = log_vals[13:13 + nc], log_vals[13 + nc:13 + 2 * nc]
        per_class = {name: ({AP50: ap50s[i], AP50_95: aps[i]} if i in val_classes else {AP50: None, AP50_95: None})
                     for i, name in enumerate(class_names)}
    return DetectionEvaluation(map50, map50_95=map50_95, precision=precision, recall=recall, per_class=per_class)


class _Reporter:
    """yolov5 callbacks -> monitor progress, tensorboard scalars and result.yaml stages."""

    def __init__(self, ctx: TaskContext, monitor: Monitor, result: TrainingResult, dataset: Dataset, epochs: int,
                 batches_per_epoch: int, journal: EpochJournal):
        from torch.utils.tensorboard import SummaryWriter

        self.ctx, self.monitor, self.result, self.journal = ctx, monitor, result, journal
        self.epochs, self.batches = max(1, epochs), max(1, batches_per_epoch)
        self.class_names = list(dataset.class_names)
        self.val_classes = {obj.class_id for record in dataset.val for obj in record.objects}
        self.evaluation: Any = DetectionEvaluation(0.0)
        best = result.stages.get(STAGE_BEST)
        self.best_map = best.metrics.get(result.main_metric, 0.0) if best else -1.0
        self.tb = SummaryWriter(str(ctx.tensorboard_dir)) if is_rank_zero() else None
        result.evaluate_config = evaluate_config(0.001)  # yolov5's validation confidence threshold
        result.preferred_stage = STAGE_BEST

    def catch_up(self, resume: Resume | None) -> bool:
        """Before the trainer starts. A new run (``resume`` None) forgets an earlier journal.
        A resumed run first writes the stages of its checkpoint's epoch when the kill landed between
        the checkpoint and them. True when that epoch was the last: yolov5 would resume into an
        empty epoch loop and fail, and everything but its final clean-up is done."""
        if resume is None:
            if is_rank_zero():
                self.journal.clear()
            return False
        epoch = resume.epochs_done
        evaluation = self.journal.pending(epoch)
        if evaluation is not None and is_rank_zero():
            LOG.info("writing the stages of epoch %d, which the kill of the earlier run cut off", epoch)
            self.evaluation = self.evaluation_of(evaluation)
            self.save_stages(resume.checkpoint, epoch, epoch >= self.epochs)
        if epoch >= self.epochs:
            LOG.info("the killed run had trained all %d epochs; keeping its stages", self.epochs)
            return True
        return False

    def evaluation_of(self, logged: Any) -> Any:
        """The evaluation from what ``on_fit_epoch_end`` logged (as kept in the journal)."""
        return evaluation_from_log(logged, self.class_names, self.val_classes)

    def on_train_batch_end(self, model: Any, ni: int, imgs: Any, targets: Any, paths: Any, mloss: Any) -> None:
        check_finite_loss(mloss, ni, "yolov5's hyp lr0: args_options --hyp FILE")
        self.monitor.progress(0.95 * (ni + 1) / (self.epochs * self.batches))

    def on_fit_epoch_end(self, log_vals: list[Any], epoch: int, best_fitness: Any, fi: Any) -> None:
        vals = [float(v) for v in log_vals]
        self.evaluation = self.evaluation_of(vals)
        self.journal.evaluated(epoch + 1, vals)
        if self.tb is not None:
            scalars = {tag: vals[i] for i, tag in LOSS_TAGS.items() if i < len(vals)}
            for tag, value in {**scalars, **self.evaluation.scalars()}.items():
                self.tb.add_scalar(tag, value, epoch + 1)
            self.tb.flush()
        LOG.info("epoch %d/%d: %s", epoch + 1, self.epochs, self.evaluation.describe())

    def on_model_save(self, last: Path, epoch: int, final_epoch: bool, best_fitness: Any, fi: Any) -> None:
        """``last`` holds this epoch's model; the best stage follows mAP@0.5 (not yolov5's fitness,
        which weighs mAP@0.5:0.95 nine times more)."""
        self.save_stages(Path(last), epoch + 1, final_epoch)

    def main_value(self) -> float:
        """The number the best stage follows: the stage's main metric."""
        return self.evaluation.map50

    def save_stages(self, checkpoint: Path, n: int, final_epoch: bool) -> None:
        """Stages of epoch ``n`` (1-based) from its checkpoint: ``best`` when the main metric
        rose, ``epoch_<n>`` every save_period epochs and at the end unless save_best_only."""
        cfg = self.ctx.config
        if self.main_value() > self.best_map:
            self.best_map = self.main_value()
            self._stage(STAGE_BEST, checkpoint, "best.pt", n, top_level=True)
        if not cfg["save_best_only"] and (n % int(cfg["save_period"]) == 0 or final_epoch):
            self._stage(f"epoch_{n}", checkpoint, f"epoch_{n}.pt", n)
        self.journal.staged(n)
        self.monitor.progress(0.95 * n / self.epochs)

    def _stage(self, name: str, checkpoint: Path, filename: str, epoch: int, top_level: bool = False) -> None:
        from yolov5.utils.general import strip_optimizer

        folder = self.result.stage_dir(name)
        tmp = folder / f".{filename}.tmp"
        strip_optimizer(str(checkpoint), str(tmp))
        os.replace(tmp, folder / filename)
        if top_level:
            self.result.expose_top_level(name, filename)
        self.result.add_stage(name, [filename], self.evaluation.stage_metrics(),
                              details=self.evaluation.as_dict(epoch))
        LOG.info("stage %s saved (%s)", name, self.evaluation.describe())

    def close(self) -> None:
        if self.tb is not None:
            self.tb.close()


def export_onnx(ctx: TaskContext, result: TrainingResult) -> None:
    """ONNX export of the best stage, attached to the model package (attachments/onnx/)."""
    best = result.best_stage()
    if best is None:
        return
    weights = result.models_dir / best.name / best.files[0]
    target_dir = result.models_dir / "attachments" / "onnx"
    target_dir.mkdir(parents=True, exist_ok=True)
    try:
        from yolov5 import export as y5export

        size = int(ctx.config["img_size"])
        y5export.run(weights=str(weights), include=("onnx",), imgsz=(size, size), opset=int(ctx.config["opset"]),
                     device="cpu", batch_size=1)
        produced = weights.with_suffix(".onnx")
        os.replace(produced, target_dir / f"{best.name}.onnx")
        result.add_attachment("onnx", [f"{best.name}.onnx"])
        LOG.info("exported %s to ONNX (opset %s)", weights.name, ctx.config["opset"])
    except Exception as exc:  # the trained model stands without its ONNX copy
        LOG.warning("ONNX export of %s failed: %s", weights, exc)
