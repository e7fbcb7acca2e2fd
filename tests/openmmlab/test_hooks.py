"""YmirReportHook with a stand-in Runner: stages, best choice, metrics attachments, scalars."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml

from ymir_base.errors import NanError
from ymir_base.monitor import Monitor
from ymir_base.results.training import TrainingResult
from ymir_openmmlab.hooks import YmirReportHook, coco_evaluation

CLASSES = ["circle", "square"]


class FakeRunner:
    """What the hook reads of MMEngine's Runner; the model's weights are the epoch number."""

    def __init__(self):
        import torch

        self._epoch, self.iter, self.max_epochs, self.max_iters = 0, 0, 3, 30
        self.scalars: list[tuple[dict, int]] = []
        self.visualizer = SimpleNamespace(add_scalars=lambda d, step: self.scalars.append((dict(d), step)))
        self.model = torch.nn.Linear(2, 1)
        self.seed, self.experiment_name = 0, "run"
        self.train_dataloader = SimpleNamespace(dataset=SimpleNamespace(metainfo={"classes": tuple(CLASSES)}))
        self.hooks: list = []

    @property
    def epoch(self):
        return self._epoch

    @epoch.setter
    def epoch(self, value):
        import torch

        self._epoch = value
        with torch.no_grad():
            self.model.weight.fill_(value)

    def call_hook(self, fn_name, **kwargs):
        for hook in self.hooks:
            getattr(hook, fn_name)(self, **kwargs)


def stage_weights(path: Path) -> float:
    """The (single) weight value of a stage checkpoint of FakeRunner's model."""
    import torch

    return float(torch.load(path, map_location="cpu", weights_only=True)["state_dict"]["weight"].unique())


def coco(map50, map5095, per_class=(0.4, float("nan"))):
    metrics = {"coco/bbox_mAP": map5095, "coco/bbox_mAP_50": map50, "coco/bbox_mAP_75": map5095 + 0.05,
               "coco/bbox_mAP_s": -1.0}
    metrics.update({f"coco/{n}_precision": v for n, v in zip(CLASSES, per_class, strict=True)})
    return metrics


@pytest.fixture
def hook(tmp_path):
    config = tmp_path / "config.py"
    config.write_text("model = dict()\n")
    result = TrainingResult(tmp_path / "models")
    return YmirReportHook(Monitor(tmp_path / "monitor.txt", "t"), result, config, keep=1, class_names=CLASSES,
                          conf_thr=0.01)


def test_stage_map_is_coco_map50_and_best_follows_it(hook, tmp_path):
    runner = FakeRunner()
    runner.epoch = 1
    hook.after_val_epoch(runner, coco(map50=0.6, map5095=0.30))
    runner.epoch = 2  # better at IoU .5:.95, worse at IoU .5: not the best stage
    hook.after_val_epoch(runner, coco(map50=0.5, map5095=0.35))
    models = tmp_path / "models"
    data = yaml.safe_load((models / "result.yaml").read_text())
    assert data["model_stages"]["epoch_2"]["mAP"] == 0.5
    assert data["model_stages"]["best"]["mAP"] == 0.6 and data["best_stage_name"] == "best" and data["mAP"] == 0.6
    assert stage_weights(models / "best" / "best.pth") == 1.0
    assert stage_weights(models / "epoch_2" / "epoch_2.pth") == 2.0
    assert data["evaluate_config"] == {"iou_thr": 0.5, "conf_thr": 0.01}
    assert data["attachments"] == {"metrics": ["best.json", "epoch_2.json"]}  # epoch_1 dropped (keep 1)
    best = json.loads((models / "attachments/metrics/best.json").read_text())
    assert best == {"stage": "best", "epoch": 1, "mAP": 0.6, "mAP@0.5": 0.6, "mAP@0.5:0.95": 0.3,
                    "mAP@0.75": pytest.approx(0.35), "iou_thr": 0.5,
                    "per_class": {"circle": {"AP@0.5:0.95": 0.4}, "square": {"AP@0.5:0.95": None}}}
    scalars, step = runner.scalars[-1]
    assert step == 2 and scalars["metrics/mAP_0.5"] == 0.5 and scalars["metrics/mAP_0.5:0.95"] == 0.35
    assert scalars["metrics/AP_0.5:0.95/circle"] == 0.4 and "metrics/AP_0.5:0.95/square" not in scalars


def test_coco_evaluation_without_classwise_numbers():
    ev = coco_evaluation({"coco/bbox_mAP": 0.2, "coco/bbox_mAP_50": -1.0}, CLASSES)
    assert (ev.map50, ev.map50_95, ev.map75, ev.per_class) == (0.0, 0.2, None, {})


def test_nan_loss_stops_the_run(hook):
    import torch

    runner = FakeRunner()
    with pytest.raises(NanError, match="iteration 1"):
        hook.after_train_iter(runner, 0, outputs={"loss": torch.tensor(float("nan"))})
    hook.after_train_iter(runner, 0, outputs={"loss": torch.tensor(1.5)})


def test_an_iteration_run_reports_iter_stages_and_picks_the_best_by_the_kinds_main_metric(tmp_path):
    from ymir_base.results.metrics import SemanticEvaluation

    config = tmp_path / "config.py"
    config.write_text("model = dict()\n")
    result = TrainingResult(tmp_path / "models", object_type=3)
    hook = YmirReportHook(Monitor(tmp_path / "monitor.txt", "t"), result, config, keep=1, class_names=CLASSES,
                          conf_thr=None, by_epoch=False,
                          evaluate=lambda m, names: SemanticEvaluation(miou=m["mIoU"], macc=m["mAcc"]))
    runner = FakeRunner()
    runner.iter = 10
    hook.after_val_epoch(runner, {"mIoU": 0.5, "mAcc": 0.7})
    runner.iter = 20  # a better mAcc does not make it the best: mIoU decides
    hook.after_val_epoch(runner, {"mIoU": 0.4, "mAcc": 0.8})
    data = yaml.safe_load((tmp_path / "models" / "result.yaml").read_text())
    assert set(data["model_stages"]) == {"best", "iter_20"} and data["mIoU"] == 0.5
    assert data["model_stages"]["best"]["mAcc"] == 0.7 and "evaluate_config" not in data
    details = json.loads((tmp_path / "models/attachments/metrics/iter_20.json").read_text())
    assert details == {"stage": "iter_20", "iter": 20, "mIoU": 0.4, "mAcc": 0.8}
    assert runner.scalars[-1] == ({"metrics/mIoU": 0.4, "metrics/mAcc": 0.8}, 20)


def test_stage_checkpoint_holds_the_ema_weights_and_the_config_text_without_formatting_it(hook, tmp_path):
    """A stage file is the Runner's checkpoint layout without the optimizer: the EMA weights that
    MMEngine's EMAHook swaps in, the classes, the run config's text. That text is config.py's:
    formatting the config again (Runner.save_checkpoint runs yapf over it for every file) was
    half a CPU second per epoch."""
    import torch
    from mmengine.hooks import EMAHook

    runner = FakeRunner()
    ema = EMAHook()
    ema.before_run(runner)  # the averaged copy of the model
    runner.hooks = [ema, hook]
    with torch.no_grad():
        next(ema.ema_model.module.parameters()).fill_(7.0)  # the EMA weight differs from the live 1.0
    runner.epoch = 1
    hook.after_val_epoch(runner, coco(map50=0.6, map5095=0.30))
    ckpt = torch.load(tmp_path / "models" / "epoch_1" / "epoch_1.pth", map_location="cpu", weights_only=True)
    assert set(ckpt) == {"meta", "state_dict"}  # no optimizer, no live copy beside the EMA weights
    assert torch.equal(ckpt["state_dict"]["weight"], torch.full((1, 2), 7.0))
    assert ckpt["meta"]["cfg"] == "model = dict()\n" and ckpt["meta"]["dataset_meta"] == {"classes": tuple(CLASSES)}
    assert (ckpt["meta"]["epoch"], ckpt["meta"]["iter"]) == (1, 0)
    assert torch.equal(runner.model.weight, torch.full((1, 2), 1.0))  # the live weights swapped back
    assert (tmp_path / "models" / "epoch_1" / "config.py").read_text() == "model = dict()\n"
