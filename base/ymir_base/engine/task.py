"""Run one YMIR task end to end: read /in, dispatch, report errors through the monitor.

This is what the container's start.py and ``ymir-exec run`` both call.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import traceback
from pathlib import Path
from typing import Any

from ymir_base import ranks
from ymir_base.data.reader import load_dataset
from ymir_base.engine import outspace, predict
from ymir_base.engine.device import limit_threads
from ymir_base.engine.registry import backend_class, image_spec
from ymir_base.engine.shutdown import quick_shutdown
from ymir_base.errors import ConfigError, DatasetError, ErrorCode, classify_exception
from ymir_base.monitor import Monitor
from ymir_base.protocol.context import TaskContext, build_context
from ymir_base.protocol.env import load_env
from ymir_base.protocol.paths import PathMapper
from ymir_base.ranks import is_distributed_child, is_rank_zero
from ymir_base.results.training import TrainingResult
from ymir_base.tasks import ObjectKind

LOG = logging.getLogger("ymir")


def setup_logging() -> None:
    rank = ranks.rank()
    fmt = "%(asctime)s %(levelname)s " + (f"[rank {rank}] " if rank != 0 else "") + "%(name)s: %(message)s"
    logging.basicConfig(level=logging.INFO, format=fmt, stream=sys.stdout, force=True)


def _early_monitor(mapper: PathMapper) -> Monitor:
    """A monitor before env.yaml is known (or when it is broken): default path and task id."""
    task_id = "unknown"
    monitor_file = "/out/monitor.txt"
    try:
        env = load_env(mapper.host("/in/env.yaml"))
        task_id, monitor_file = env.task_id, env.output.monitor_file
    except Exception:  # reported properly by build_context below
        pass
    return Monitor(mapper.host(monitor_file), task_id)


def run_task(image: str, in_dir: Path, out_dir: Path, overrides: dict[str, Any] | None = None,
             img_man_dir: Path | None = None) -> int:
    """Returns the process exit code: 0 on success, 1 on a reported failure."""
    setup_logging()
    mapper = PathMapper(Path(in_dir), Path(out_dir))
    monitor = _early_monitor(mapper)
    ctx: TaskContext | None = None
    reserve: outspace.SpaceReserve | None = None
    try:
        outspace.check_writable(mapper.out_dir)
        if is_rank_zero() and not is_distributed_child():
            reserve = outspace.SpaceReserve(mapper.out_dir)
            reserve.take()
        spec = image_spec(image, img_man_dir)
        ctx = build_context(spec, mapper, overrides=overrides)
        monitor = Monitor(ctx.host(ctx.env.output.monitor_file), ctx.task_id)
        monitor.start()
        LOG.info("image %s, task %s (%s), object type %d, gpus %s", image, ctx.task_id, ctx.task_name,
                 ctx.object_type, ctx.gpu_ids or "none (CPU)")
        limit_threads()
        quick_shutdown()
        backend = backend_class(image)()
        kind = backend.kind_for(ctx.object_type)  # 300005 for a type this image does not serve
        LOG.info("object kind %s: main metric %s", kind.name, kind.main_metric)
        if ctx.env.run_training:
            _train(ctx, backend, kind, monitor)
        elif ctx.gpu_count > 1 and not is_distributed_child():
            _launch_prediction_ranks(ctx, backend)
        else:
            predict.run_prediction(ctx, backend, monitor)
        if is_rank_zero() and not is_distributed_child():
            monitor.done()
        return 0
    except BaseException as exc:  # every failure, even a library's sys.exit, must reach monitor.txt
        code, message = classify_exception(exc)
        full = outspace.full_message(exc, mapper.out_dir, message, coded=code != ErrorCode.CONTAINER)
        if full:
            code, message = ErrorCode.CONTAINER, full
        if reserve is not None:  # room for the error report on a full /out
            reserve.release()
        details = traceback.format_exception(exc)
        LOG.error("task failed with code %d: %s\n%s", code, message, "".join(details))
        monitor.error(code, message, "".join(details).splitlines())
        return 1
    finally:
        if reserve is not None:
            reserve.release()


def _train(ctx: TaskContext, backend: Any, kind: ObjectKind, monitor: Monitor) -> None:
    env = ctx.env
    for key in ("training_index_file", "val_index_file"):
        if not getattr(env.input, key):
            raise DatasetError(f"env.yaml input.{key} is empty for a training task")
    export_format = str(ctx.config.get("export_format") or "")
    kind.check_export_format(export_format)
    with monitor.phase(0.0, 0.02):
        dataset = load_dataset(env.input.training_index_file, env.input.val_index_file,
                               ctx.mapper, ctx.class_names, export_format)
        monitor.progress(1.0, force=True)
    LOG.info("dataset: %d training and %d validation images, classes %s",
             len(dataset.train), len(dataset.val), ctx.class_names)
    result = TrainingResult.load(ctx.models_out, ctx.object_type)
    ctx.tensorboard_dir.mkdir(parents=True, exist_ok=True)
    with monitor.phase(0.02, 1.0):
        backend.train(ctx, dataset, monitor, result)
    if is_rank_zero() and not result.stages:
        raise ConfigError("training finished without producing a model stage")


def _launch_prediction_ranks(ctx: TaskContext, backend: Any) -> None:
    """One process per GPU over a shard of the candidates, then merge on this process."""
    world = ctx.gpu_count
    procs = []
    for rank, gpu in enumerate(ctx.gpu_ids):
        env = dict(os.environ, RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE=str(world),
                   YMIR_DEVICE=f"cuda:{gpu}")
        procs.append(subprocess.Popen([sys.executable, *sys.argv], env=env))
    codes = [p.wait() for p in procs]
    if any(codes):
        raise RuntimeError(f"prediction ranks exited with codes {codes}")
    predict.write_outputs(ctx, backend, predict.merge_shards(ctx, world))
