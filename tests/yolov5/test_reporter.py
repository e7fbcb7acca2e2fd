"""The yolov5 callbacks -> stages, metrics attachments and tensorboard scalars (no training)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml

from ymir_base.data.types import Dataset, ImageRecord, ObjectAnnotation
from ymir_base.demo.curve import read_scalars
from ymir_base.engine.registry import image_spec
from ymir_base.engine.training import EpochJournal
from ymir_base.monitor import Monitor
from ymir_base.protocol.context import build_context
from ymir_base.protocol.paths import PathMapper
from ymir_base.results.training import TrainingResult

CLASSES = ["circle", "square", "triangle"]


def log_vals(precision, recall, map50, map5095, aps, ap50s):
    """What yolov5's trainer hands to on_fit_epoch_end."""
    return [0.1, 0.2, 0.3, precision, recall, map50, map5095, 0.4, 0.5, 0.6, 0.01, 0.01, 0.01, *aps, *ap50s]


def test_stages_follow_map50_with_their_whole_evaluation(sample, tmp_path, yolov5n_checkpoint):
    from ymir_yolov5lib.train import _Reporter

    in_dir, out_dir = sample("training")
    ctx = build_context(image_spec("yolov5"), PathMapper(in_dir, out_dir),
                        overrides={"save_best_only": False, "save_period": 1})
    record = ImageRecord("/in/assets/v.jpg", Path("v.jpg"), 64, 64,
                         [ObjectAnnotation(0, (1, 1, 9, 9)), ObjectAnnotation(1, (2, 2, 9, 9))])
    result = TrainingResult(out_dir / "models")
    reporter = _Reporter(ctx, Monitor(out_dir / "monitor.txt", "t"), result, Dataset(CLASSES, [], [record]),
                         epochs=2, batches_per_epoch=1, journal=EpochJournal(tmp_path))
    last = tmp_path / "weights" / "last.pt"
    last.parent.mkdir()
    shutil.copy(yolov5n_checkpoint, last)

    reporter.on_fit_epoch_end(log_vals(0.7, 0.6, 0.6, 0.3, [0.3, 0.2, 0.25], [0.7, 0.5, 0.6]), 0, 0.33, 0.33)
    reporter.on_model_save(last, 0, False, 0.33, 0.33)
    # yolov5's fitness (mostly mAP@0.5:0.95) would call this epoch best; mAP@0.5 does not
    reporter.on_fit_epoch_end(log_vals(0.8, 0.5, 0.5, 0.4, [0.4, 0.4, 0.45], [0.5, 0.5, 0.5]), 1, 0.41, 0.41)
    reporter.on_model_save(last, 1, True, 0.41, 0.41)
    reporter.close()

    models = out_dir / "models"
    data = yaml.safe_load((models / "result.yaml").read_text())
    assert data["best_stage_name"] == "best" and data["mAP"] == 0.6
    assert data["model_stages"]["epoch_2"]["mAP"] == 0.5 and data["model_stages"]["epoch_2"]["mAR"] == 0.5
    assert data["evaluate_config"] == {"iou_thr": 0.5, "conf_thr": 0.001}
    assert data["attachments"]["metrics"] == ["best.json", "epoch_1.json", "epoch_2.json"]
    best = json.loads((models / "attachments/metrics/best.json").read_text())
    assert best == {"stage": "best", "epoch": 1, "mAP": 0.6, "mAP@0.5": 0.6, "mAP@0.5:0.95": 0.3,
                    "precision": 0.7, "recall": 0.6, "iou_thr": 0.5,
                    "per_class": {"circle": {"AP@0.5": 0.7, "AP@0.5:0.95": 0.3},
                                  "square": {"AP@0.5": 0.5, "AP@0.5:0.95": 0.2},
                                  "triangle": {"AP@0.5": None, "AP@0.5:0.95": None}}}  # not in the val set
    scalars = read_scalars(out_dir / "tensorboard")
    assert scalars["metrics/mAP_0.5"] == [(1, pytest.approx(0.6)), (2, 0.5)]  # float32 in the event file
    assert scalars["metrics/mAP_0.5:0.95"] == [(1, pytest.approx(0.3)), (2, pytest.approx(0.4))]
    assert scalars["metrics/AP_0.5/square"] == [(1, 0.5), (2, 0.5)] and "metrics/AP_0.5/triangle" not in scalars
    assert "train/box_loss" in scalars and "val/cls_loss" in scalars


def test_nan_loss_stops_the_run(sample):
    import torch

    from ymir_base.errors import NanError
    from ymir_yolov5lib.train import _Reporter

    in_dir, out_dir = sample("training")
    ctx = build_context(image_spec("yolov5"), PathMapper(in_dir, out_dir))
    reporter = _Reporter(ctx, Monitor(out_dir / "monitor.txt", "t"), TrainingResult(out_dir / "models"),
                         Dataset(CLASSES, [], []), epochs=1, batches_per_epoch=1, journal=EpochJournal(out_dir))
    with pytest.raises(NanError, match="iteration 4"):
        reporter.on_train_batch_end(None, 4, None, None, None, list(torch.tensor([0.1, float("inf"), 0.2])))
    reporter.close()


@pytest.mark.parametrize("epochs", [2, 3])
def test_a_resumed_run_writes_the_stages_a_kill_cut_off(sample, tmp_path, yolov5n_checkpoint, epochs):
    """The kill landed after yolov5 saved last.pt of epoch 2 but before the stages of epoch 2:
    the resumed run writes them from last.pt first; after the last epoch it trains no more (yolov5
    itself would resume into an empty epoch loop and fail)."""
    import torch

    from ymir_yolov5lib.train import Resume, _Reporter

    in_dir, out_dir = sample("training")
    ctx = build_context(image_spec("yolov5"), PathMapper(in_dir, out_dir),
                        overrides={"save_best_only": False, "save_period": 1})
    record = ImageRecord("/in/assets/v.jpg", Path("v.jpg"), 64, 64, [ObjectAnnotation(0, (1, 1, 9, 9))])
    dataset = Dataset(CLASSES, [], [record])

    def reporter() -> _Reporter:
        return _Reporter(ctx, Monitor(out_dir / "monitor.txt", "t"), TrainingResult.load(out_dir / "models"), dataset,
                         epochs=epochs, batches_per_epoch=1, journal=EpochJournal(tmp_path))

    last = tmp_path / "last.pt"
    killed = reporter()
    assert killed.catch_up(None) is False  # a new run
    shutil.copy(yolov5n_checkpoint, last)
    killed.on_fit_epoch_end(log_vals(0.5, 0.5, 0.3, 0.1, [0.1] * 3, [0.3] * 3), 0, 0.1, 0.1)
    killed.on_model_save(last, 0, False, 0.1, 0.1)
    killed.on_fit_epoch_end(log_vals(0.6, 0.6, 0.4, 0.2, [0.2] * 3, [0.4] * 3), 1, 0.2, 0.2)
    torch.save({**torch.load(yolov5n_checkpoint, weights_only=False), "epoch": 1}, last)  # then the kill
    killed.close()
    assert yaml.safe_load((out_dir / "models/result.yaml").read_text())["mAP"] == 0.3

    resumed = reporter()
    assert resumed.catch_up(Resume(last, 2, {})) is (epochs == 2)
    resumed.close()
    data = yaml.safe_load((out_dir / "models/result.yaml").read_text())
    assert set(data["model_stages"]) == {"best", "epoch_1", "epoch_2"}
    assert data["mAP"] == 0.4 and data["model_stages"]["epoch_2"]["mAP"] == 0.4
    again = reporter()  # killed once more before anything else: nothing is written twice
    assert again.catch_up(Resume(last, 2, {})) is (epochs == 2)
    again.close()
    assert yaml.safe_load((out_dir / "models/result.yaml").read_text()) == data
