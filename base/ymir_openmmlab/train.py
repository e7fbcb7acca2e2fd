"""Training through MMEngine's Runner with the upstream config of the chosen model.

The run lives in ``/out/work/mmengine``: the Runner's own checkpoint of the last epoch (of the
last evaluation for an iteration-based config, e.g. mmseg's) lets a run killed by YMIR resume when
the same task starts again. Stages go to ``/out/models`` through
:class:`~ymir_openmmlab.hooks.YmirReportHook`.
"""

from __future__ import annotations

import logging
import math
import time
import zipfile
from pathlib import Path
from typing import TYPE_CHECKING

from mmengine.config import Config

from ymir_base.data.types import Dataset
from ymir_base.engine import shm
from ymir_base.engine.ddp import launch_torchrun
from ymir_base.engine.training import FINISHED_MARKER, TaskMarker
from ymir_base.errors import ConfigError
from ymir_base.monitor import Monitor
from ymir_base.protocol.context import TaskContext
from ymir_base.ranks import is_distributed_child
from ymir_base.results.training import TrainingResult
from ymir_openmmlab import checkpoint as mmckpt
from ymir_openmmlab import config as mmcfg
from ymir_openmmlab.head_fit import fit_head
from ymir_openmmlab.hooks import YmirReportHook

if TYPE_CHECKING:
    from ymir_openmmlab.backend import OpenMMLabBackend

LOG = logging.getLogger(__name__)


def run_dir(ctx: TaskContext) -> Path:
    return ctx.work_dir / "mmengine"


# the image side assumed for /dev/shm when the task keeps the config's own input size
DEFAULT_SIDE = 1024


def train(backend: OpenMMLabBackend, ctx: TaskContext, dataset: Dataset, monitor: Monitor,
          result: TrainingResult) -> None:
    ann_dir = ctx.work_dir / backend.annotation_dir
    train_json, val_json = ann_dir / "train.json", ann_dir / "val.json"
    if not (is_distributed_child() and train_json.is_file() and val_json.is_file()):
        backend.write_annotations(dataset.train, ctx.class_names, train_json)
        backend.write_annotations(dataset.val, ctx.class_names, val_json)
    if ctx.gpu_count > 1 and not is_distributed_child():
        launch_torchrun(ctx.gpu_count)
        result.reload()  # rank 0 wrote the stages
        return

    work = run_dir(ctx)
    state = _resume_state(ctx, work)
    if state == "finished":
        LOG.info("training of this task already finished in an earlier run; keeping its stages")
        return
    cfg = build_train_config(backend, ctx, train_json, val_json, work, train_images=len(dataset.train),
                             resume_from=state if isinstance(state, Path) else None)
    work.mkdir(parents=True, exist_ok=True)
    config_file = work / "config.py"
    cfg.dump(str(config_file))
    TaskMarker(work).write(ctx.task_id)
    TaskMarker(work, FINISHED_MARKER).clear()

    from mmengine.runner import Runner

    runner = Runner.from_cfg(cfg)
    runner.register_hook(YmirReportHook(monitor, result, config_file, backend.checkpoints_to_keep(ctx),
                                        ctx.class_names, backend.score_threshold(cfg), evaluate=backend.evaluation,
                                        by_epoch=not mmcfg.is_iter_based(cfg)), priority="LOW")
    runner.train()
    TaskMarker(work, FINISHED_MARKER).write(ctx.task_id)


def _resume_state(ctx: TaskContext, work: Path) -> str | Path | None:
    """"finished", the checkpoint to resume this task's killed run from, or None (a new run)."""
    if not TaskMarker(work).matches(ctx.task_id):
        return None
    if TaskMarker(work, FINISHED_MARKER).matches(ctx.task_id):
        return "finished"
    checkpoint = _last_good_checkpoint(work)
    if checkpoint is not None:
        LOG.info("resuming the killed run of this task from %s", checkpoint)
    return checkpoint


def _last_good_checkpoint(work: Path) -> Path | None:
    """The newest complete checkpoint of the Runner. A kill can land after the CheckpointHook
    deleted the previous checkpoint but before it rewrote ``last_checkpoint``, or mid-write.
    torch.save writes a zip whose directory comes last: its CRC check proves the file whole
    without unpickling it (MMEngine loads it next)."""
    pointer = work / "last_checkpoint"
    listed = [Path(pointer.read_text().strip())] if pointer.is_file() else []
    numbered = sorted(work.glob("epoch_*.pth"), key=_number, reverse=True) + sorted(work.glob("iter_*.pth"),
                                                                                    key=_number, reverse=True)
    for path in dict.fromkeys(listed + numbered):
        if not path.is_file():
            continue
        try:
            with zipfile.ZipFile(path) as archive:
                if archive.testzip() is None:
                    return path
            LOG.warning("cannot resume from %s (a corrupt member)", path)
        except (OSError, zipfile.BadZipFile) as exc:  # cut short by the kill
            LOG.warning("cannot resume from %s (%s)", path, exc)
    return None


def _number(path: Path) -> int:
    """The epoch or iteration of a Runner checkpoint ``epoch_<n>.pth`` / ``iter_<n>.pth``."""
    number = path.stem.rsplit("_", 1)[-1]
    return int(number) if number.isdigit() else -1


def build_train_config(backend: OpenMMLabBackend, ctx: TaskContext, train_json: Path, val_json: Path,
                       work: Path, *, train_images: int, resume_from: Path | None = None) -> Config:
    """The upstream config with YMIR's data, classes and hyper-parameters applied."""
    cfg_in = ctx.config
    cfg = mmcfg.load_config(backend.config_path(ctx))
    names = ctx.class_names
    cfg.work_dir = str(work)
    cfg.launcher = "pytorch" if is_distributed_child() else "none"

    mmcfg.set_num_classes(cfg.model, len(names))
    removed = mmcfg.strip_pretrained(cfg.model)
    if removed:
        LOG.info("removed %d download-only pretrained initialiser(s) from the model config", removed)
    backend.configure_data(cfg, train_json, val_json, names, str(cfg_in.get("metric") or "bbox"))

    cfg.train_dataloader.batch_size = int(cfg_in.get("samples_per_gpu", cfg.train_dataloader.batch_size))
    # the train, val and test loaders keep their workers alive: each worker's share of /dev/shm is
    # PREFETCH batches of each (the evaluation batch no larger than the training one)
    workers = shm.loader_workers(int(cfg_in.get("workers_per_gpu", 4)), 3 * shm.PREFETCH * shm.batch_bytes(
        cfg.train_dataloader.batch_size, int(cfg_in.get("img_size") or 0) or DEFAULT_SIDE), processes=ctx.gpu_count)
    for d in mmcfg.walk(cfg.optim_wrapper):  # YOLO optimizer constructors scale weight decay by it
        if "batch_size_per_gpu" in d:
            d["batch_size_per_gpu"] = cfg.train_dataloader.batch_size
    for loader in (cfg.train_dataloader, cfg.val_dataloader, cfg.test_dataloader):
        loader.num_workers = workers
        loader.persistent_workers = workers > 0
    cfg.train_cfg.pop("dynamic_intervals", None)
    if mmcfg.is_iter_based(cfg):
        # iteration-based configs (mmseg): max_iters and the evaluation period `interval`
        total_iters = int(cfg_in.get("max_iters", cfg.train_cfg.max_iters))
        interval = int(cfg_in.get("interval", cfg.train_cfg.get("val_interval", total_iters)))
        mmcfg.set_max_iters(cfg, total_iters)
        iters_per_epoch = 1  # its schedulers count iterations
        cfg.train_cfg.val_interval = max(1, min(interval, total_iters))
        # the Runner's own checkpoint only serves to resume a killed run: one, at every evaluation
        checkpoint = dict(type="CheckpointHook", interval=cfg.train_cfg.val_interval, by_epoch=False,
                          max_keep_ckpts=1, save_last=True)
    else:
        cfg.train_cfg.val_interval = int(cfg_in.get("val_interval", 1))
        mmcfg.set_max_epochs(cfg, int(cfg_in.get("max_epochs", cfg.train_cfg.max_epochs)))
        iters_per_epoch = math.ceil(train_images / (cfg.train_dataloader.batch_size * max(1, ctx.gpu_count)))
        total_iters = iters_per_epoch * cfg.train_cfg.max_epochs
        # the Runner's own checkpoint only serves to resume a killed run: one, every epoch
        checkpoint = dict(type="CheckpointHook", interval=1, by_epoch=True, max_keep_ckpts=1, save_last=True)
    mmcfg.resize(cfg, int(cfg_in.get("img_size") or 0))
    args = mmcfg.parse_args_options(str(cfg_in.get("args_options") or ""))
    # the starting weights of a new run; a resumed run keeps the schedule they gave it
    weights = backend.starting_weights(ctx, backend.model_key(ctx), ".pth")
    mmcfg.cap_warmup(cfg, total_iters, fine_tuning=weights is not None)
    mmcfg.fit_warmup_schedulers(cfg, iters_per_epoch, total_iters, fine_tuning=weights is not None)
    cfg.default_hooks.checkpoint = checkpoint
    cfg.default_hooks.logger = dict(type="LoggerHook", interval=10)
    # a fresh visualizer per run: MMEngine keeps instances by name for the whole process
    cfg.visualizer.name = f"ymir-{ctx.task_id}-{time.time_ns()}"
    cfg.visualizer.vis_backends = [dict(type="LocalVisBackend"),
                                   dict(type="TensorboardVisBackend", save_dir=str(ctx.tensorboard_dir))]

    if args.amp and not ctx.gpu_ids:
        LOG.warning("args_options --amp ignored: mixed precision needs a GPU and this task has none")
    if ctx.gpu_ids:  # AMP whenever a GPU is present
        if cfg.optim_wrapper.get("type", "OptimWrapper") == "OptimWrapper":
            cfg.optim_wrapper.type = "AmpOptimWrapper"
            cfg.optim_wrapper.loss_scale = "dynamic"
    if args.auto_scale_lr:
        if "auto_scale_lr" not in cfg:
            raise ConfigError("config key 'args_options': --auto-scale-lr, but the model's config has no "
                              "auto_scale_lr.base_batch_size")
        cfg.auto_scale_lr.enable = True
    # seeded like yolov5's trainer (seed 0), so the same task trains the same model;
    # cfg_options randomness.seed=... chooses another
    cfg.randomness = dict(seed=0, deterministic=False)
    backend.adapt_config(cfg, ctx, total_iters)
    mmcfg.merge_options(cfg, mmcfg.parse_cfg_options(str(cfg_in.get("cfg_options") or "")))
    mmcfg.merge_options(cfg, dict(args.cfg_options), "args_options")

    cfg.resume = False
    cfg.load_from = None
    if resume_from is not None:
        cfg.resume = True
        cfg.load_from = str(resume_from)
    elif args.resume:
        cfg.resume = True
        if args.resume != "auto":
            path = ctx.host(args.resume)
            if not path.is_file():
                raise ConfigError(f"config key 'args_options': --resume {args.resume}: no such checkpoint")
            mmckpt.load(path)  # MMEngine would fall back to a full unpickling of a file weights_only refuses
            cfg.load_from = str(path)
    elif weights is not None:
        ckpt = mmckpt.load(weights)  # as above: refused here, never unpickled in full by the Runner
        start, fitted = fit_head(cfg, weights, ckpt, list(ctx.class_names), ctx.work_dir / "start" / weights.name)
        if fitted:
            LOG.info("%s: %s", weights, fitted)
        cfg.load_from = str(start)
    return cfg

