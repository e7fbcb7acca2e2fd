"""The MMEngine hook that reports a training run to YMIR.

Every evaluation becomes a stage ``epoch_<n>`` (its weights, EMA included, and the run config),
and the best one so far is also the stage ``best``; only the ``max_keep_checkpoints`` latest
epoch stages are kept. A stage's ``mAP`` is the evaluator's mAP@0.5, as in every image (CocoMetric's
``bbox_mAP_50``, or what ``OpenMMLabBackend.evaluation`` reads from another evaluator);
mAP@[.5:.95], mAP@0.75 and the per-class AP go to tensorboard and to the stage's metrics
attachment. Progress and NaN losses are reported after every iteration.
"""

from __future__ import annotations

import logging
import os
import shutil
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from mmengine.hooks import Hook

from ymir_base.engine.training import check_finite_loss
from ymir_base.monitor import Monitor
from ymir_base.ranks import is_rank_zero
from ymir_base.results.atomic import link_or_copy_atomic
from ymir_base.results.metrics import AP50_95, DetectionEvaluation, evaluate_config
from ymir_base.results.training import TrainingResult

LOG = logging.getLogger(__name__)
STAGE_BEST = "best"
CONFIG_NAME = "config.py"


def coco_evaluation(metrics: Mapping[str, Any], class_names: Sequence[str]) -> DetectionEvaluation:
    """CocoMetric's numbers (``coco/bbox_mAP_50``, ``coco/bbox_mAP``, ``coco/bbox_mAP_75`` and, with
    ``classwise=True``, ``coco/<class>_precision``: the class's AP@[.5:.95]) as one evaluation."""
    short = {k.split("/", 1)[-1]: v for k, v in metrics.items()}
    per_class = {n: {AP50_95: short[f"{n}_precision"]} for n in class_names if f"{n}_precision" in short}
    return DetectionEvaluation(map50=short.get("bbox_mAP_50", 0.0), map50_95=short.get("bbox_mAP"),
                               map75=short.get("bbox_mAP_75"), per_class=per_class)


class YmirReportHook(Hook):
    priority = "LOW"  # after EMAHook has swapped the live weights back

    def __init__(self, monitor: Monitor, result: TrainingResult, config_file: Path, keep: int,
                 class_names: Sequence[str], conf_thr: float = 0.001,
                 evaluate: Callable[[Mapping[str, Any], Sequence[str]], DetectionEvaluation] = coco_evaluation):
        self.monitor, self.result = monitor, result
        self.evaluate = evaluate
        self.config_file = Path(config_file)
        self.keep = keep
        self.class_names = list(class_names)
        best = result.stages.get(STAGE_BEST)
        self.best_map = best.metrics.get("mAP", 0.0) if best else -1.0
        self._saving_stage = False
        self.epoch_stages = sorted((s for s in result.stages if s.startswith("epoch_")),
                                   key=lambda s: int(s.split("_")[1]))
        result.preferred_stage = STAGE_BEST
        result.evaluate_config = evaluate_config(conf_thr)

    def after_train_iter(self, runner: Any, batch_idx: int, data_batch: Any = None, outputs: Any = None) -> None:
        check_finite_loss((outputs or {}).get("loss"), runner.iter + 1, "cfg_options optim_wrapper.optimizer.lr=...")
        self.monitor.progress(0.95 * (runner.iter + 1) / max(1, runner.max_iters))

    def after_val_epoch(self, runner: Any, metrics: dict[str, float] | None = None) -> None:
        if not is_rank_zero():
            return
        evaluation = self.evaluate(metrics or {}, self.class_names)
        epoch = int(runner.epoch)
        runner.visualizer.add_scalars(evaluation.scalars(), step=epoch)
        name = f"epoch_{epoch}"
        weights = self._save(runner, name)
        stage_metrics, details = evaluation.stage_metrics(), evaluation.as_dict(epoch)
        self.result.add_stage(name, [weights.name, CONFIG_NAME], stage_metrics, details=details)
        self.epoch_stages = [s for s in self.epoch_stages if s != name] + [name]
        if evaluation.map50 > self.best_map:
            self.best_map = evaluation.map50
            self._copy_stage(name, weights, STAGE_BEST)
            self.result.add_stage(STAGE_BEST, [f"{STAGE_BEST}.pth", CONFIG_NAME], stage_metrics, details=details)
        while self.keep >= 0 and len(self.epoch_stages) > self.keep:
            self.result.remove_stage(self.epoch_stages.pop(0))
        self.monitor.progress(0.95 * epoch / max(1, runner.max_epochs))
        LOG.info("epoch %d: %s (best mAP@0.5 %.4f)", epoch, evaluation.describe(), self.best_map)

    def before_save_checkpoint(self, runner: Any, checkpoint: dict) -> None:
        if self._saving_stage:  # EMAHook put the EMA weights in state_dict: the live copy is not needed
            checkpoint.pop("ema_state_dict", None)

    def _save(self, runner: Any, name: str) -> Path:
        """The model weights (EMA swapped in by EMAHook.before_save_checkpoint), no optimizer."""
        folder = self.result.stage_dir(name)
        tmp_name = f".{name}.pth.tmp"
        self._saving_stage = True
        try:
            runner.save_checkpoint(str(folder), tmp_name, save_optimizer=False, save_param_scheduler=False)
        finally:
            self._saving_stage = False
        os.replace(folder / tmp_name, folder / f"{name}.pth")
        shutil.copyfile(self.config_file, folder / CONFIG_NAME)
        return folder / f"{name}.pth"

    def _copy_stage(self, source: str, weights: Path, target: str) -> None:
        folder = self.result.stage_dir(target)
        link_or_copy_atomic(weights, folder / f"{target}.pth")
        link_or_copy_atomic(self.result.models_dir / source / CONFIG_NAME, folder / CONFIG_NAME)
        self.result.expose_top_level(target, f"{target}.pth")
        self.result.expose_top_level(target, CONFIG_NAME)
