"""The MMEngine hook that reports a training run to YMIR.

Every evaluation becomes a stage ``epoch_<n>`` (``iter_<n>`` for an iteration-based run: its
weights, EMA included, and the run config), and the best one so far is also the stage ``best``;
only the ``keep`` latest of those stages are kept. The best is chosen by the evaluation's main
number, result.yaml's main metric: a detection stage's ``mAP`` is the evaluator's mAP@0.5, as in
every image (CocoMetric's ``bbox_mAP_50``, or what ``OpenMMLabBackend.evaluation`` reads from
another evaluator), a semantic stage's ``mIoU``. The other numbers go to tensorboard and to the
stage's metrics attachment. Progress and NaN losses are reported after every iteration.

MMEngine checkpoints an epoch before it validates it, so a kill in between resumes after an
epoch that was never validated. The hook keeps the last step it made stages of in an
``EpochJournal``, and a resumed run validates its checkpoint's step first when that validation was
due; otherwise the last epoch of a run killed there would never become a stage.
"""

from __future__ import annotations

import logging
import os
import shutil
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

from mmengine.hooks import Hook

from ymir_base import faults
from ymir_base.engine.training import EpochJournal, check_finite_loss
from ymir_base.monitor import Monitor
from ymir_base.ranks import is_rank_zero
from ymir_base.results.atomic import link_or_copy_atomic
from ymir_base.results.metrics import AP50_95, DetectionEvaluation, evaluate_config
from ymir_base.results.training import TrainingResult

LOG = logging.getLogger(__name__)
STAGE_BEST = "best"
CONFIG_NAME = "config.py"


class Evaluation(Protocol):
    """What the hook reads of one evaluation (DetectionEvaluation, SemanticEvaluation)."""

    @property
    def main(self) -> float: ...

    def stage_metrics(self) -> dict[str, float]: ...

    def scalars(self) -> dict[str, float]: ...

    def as_dict(self) -> dict[str, Any]: ...

    def describe(self) -> str: ...


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
                 class_names: Sequence[str], conf_thr: float | None = 0.001,
                 evaluate: Callable[[Mapping[str, Any], Sequence[str]], Evaluation] = coco_evaluation,
                 *, by_epoch: bool = True):
        """``conf_thr``: the score threshold of result.yaml's ``evaluate_config`` (detection; None:
        no evaluate_config). ``by_epoch``: stages are named and reported by epoch, else by iteration."""
        self.monitor, self.result = monitor, result
        self.evaluate = evaluate
        self.config_file = Path(config_file)
        self.keep = keep
        self.class_names = list(class_names)
        self.unit = "epoch" if by_epoch else "iter"
        best = result.stages.get(STAGE_BEST)
        self.best_score = best.metrics.get(result.main_metric, 0.0) if best else -1.0
        self._saving_stage = False
        self._config_text: str | None = None
        prefix = f"{self.unit}_"
        self.step_stages = sorted((s for s in result.stages if s.startswith(prefix) and s[len(prefix):].isdigit()),
                                  key=lambda s: int(s[len(prefix):]))
        result.preferred_stage = STAGE_BEST
        if conf_thr is not None:
            result.evaluate_config = evaluate_config(conf_thr)
        self.journal = EpochJournal(self.config_file.parent)

    def _step(self, runner: Any) -> int:
        return int(runner.epoch if self.unit == "epoch" else runner.iter)

    def _total(self, runner: Any) -> int:
        return int(runner.max_epochs if self.unit == "epoch" else runner.max_iters)

    def before_train(self, runner: Any) -> None:
        """A new run forgets an earlier run's journal; a resumed one first validates its
        checkpoint's step when the kill cut that validation off (see the module docstring)."""
        step, loop = self._step(runner), runner.train_loop
        if step == 0:
            if is_rank_zero():
                self.journal.clear()
            return
        begin, interval = getattr(loop, "val_begin", 1), max(1, int(getattr(loop, "val_interval", 1)))
        due = step == self._total(runner) or (step >= begin and step % interval == 0)
        if due and runner.val_loop is not None and self.journal.last_staged() < step:
            LOG.info("validating %s %d, which the kill of the earlier run cut off", self.unit, step)
            runner.val_loop.run()

    def before_val_epoch(self, runner: Any) -> None:
        faults.reached(f"validate:{self.unit}_{self._step(runner)}")

    def after_train_iter(self, runner: Any, batch_idx: int, data_batch: Any = None, outputs: Any = None) -> None:
        check_finite_loss((outputs or {}).get("loss"), runner.iter + 1, "cfg_options optim_wrapper.optimizer.lr=...")
        self.monitor.progress(0.95 * (runner.iter + 1) / max(1, runner.max_iters))

    def after_val_epoch(self, runner: Any, metrics: dict[str, float] | None = None) -> None:
        if not is_rank_zero():
            return
        evaluation = self.evaluate(metrics or {}, self.class_names)
        step, total = self._step(runner), self._total(runner)
        runner.visualizer.add_scalars(evaluation.scalars(), step=step)
        name = f"{self.unit}_{step}"
        weights = self._save(runner, name)
        stage_metrics, details = evaluation.stage_metrics(), {self.unit: step, **evaluation.as_dict()}
        self.result.add_stage(name, [weights.name, CONFIG_NAME], stage_metrics, details=details)
        self.step_stages = [s for s in self.step_stages if s != name] + [name]
        if evaluation.main > self.best_score:
            self.best_score = evaluation.main
            self._copy_stage(name, weights, STAGE_BEST)
            self.result.add_stage(STAGE_BEST, [f"{STAGE_BEST}.pth", CONFIG_NAME], stage_metrics, details=details)
        while self.keep >= 0 and len(self.step_stages) > self.keep:
            self.result.remove_stage(self.step_stages.pop(0))
        self.journal.staged(step)
        self.monitor.progress(0.95 * step / max(1, total))
        LOG.info("%s %d: %s (best %s %.4f)", self.unit, step, evaluation.describe(), self.result.main_metric,
                 self.best_score)

    def before_save_checkpoint(self, runner: Any, checkpoint: dict) -> None:
        if self._saving_stage:  # EMAHook put the EMA weights in state_dict: the live copy is not needed
            checkpoint.pop("ema_state_dict", None)

    def _save(self, runner: Any, name: str) -> Path:
        """The model weights (EMA swapped in by EMAHook.before_save_checkpoint), no optimizer, in
        the layout of the Runner's checkpoints (``meta`` with the run config's text and the
        dataset's classes, ``state_dict``). Not through ``Runner.save_checkpoint``: it formats the
        whole config with yapf for every file (about 0.5 CPU s for a YOLO config), and the text
        is config.py's, written once before the run."""
        import mmengine
        from mmengine.model import is_model_wrapper
        from mmengine.runner.checkpoint import save_checkpoint, weights_to_cpu

        model = runner.model.module if is_model_wrapper(runner.model) else runner.model
        if self._config_text is None:
            self._config_text = self.config_file.read_text()
        meta = {"epoch": runner.epoch, "iter": runner.iter, "cfg": self._config_text, "seed": runner.seed,
                "experiment_name": runner.experiment_name, "time": time.strftime("%Y%m%d_%H%M%S"),
                "mmengine_version": mmengine.__version__}
        dataset = runner.train_dataloader.dataset
        if hasattr(dataset, "metainfo"):  # the classes, which mmdet's inferencers read from the checkpoint
            meta["dataset_meta"] = dataset.metainfo
        checkpoint = {"meta": meta, "state_dict": weights_to_cpu(model.state_dict())}
        self._saving_stage = True
        try:
            runner.call_hook("before_save_checkpoint", checkpoint=checkpoint)
        finally:
            self._saving_stage = False
        folder = self.result.stage_dir(name)
        tmp = folder / f".{name}.pth.tmp"
        save_checkpoint(checkpoint, str(tmp))
        os.replace(tmp, folder / f"{name}.pth")
        shutil.copyfile(self.config_file, folder / CONFIG_NAME)
        return folder / f"{name}.pth"

    def _copy_stage(self, source: str, weights: Path, target: str) -> None:
        folder = self.result.stage_dir(target)
        link_or_copy_atomic(weights, folder / f"{target}.pth")
        link_or_copy_atomic(self.result.models_dir / source / CONFIG_NAME, folder / CONFIG_NAME)
        self.result.expose_top_level(target, f"{target}.pth")
        self.result.expose_top_level(target, CONFIG_NAME)
