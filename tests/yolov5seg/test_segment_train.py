"""Training through yolov5's own YOLOv5-seg trainer: stages, options, resume, every model, and a
learning run. The slow ones train for real on CPU."""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml
from seglayer import (
    CLASSES,
    HERE,
    TINY,
    SegLayerBackend,
    make_context,
    run_infer,
    run_training,
    seg_checkpoint,
    seg_task,
)

from ymir_base import faults
from ymir_base.data.reader import load_dataset
from ymir_base.data.types import Dataset, ImageRecord, ObjectAnnotation
from ymir_base.demo.curve import read_scalars
from ymir_base.engine.training import EpochJournal
from ymir_base.errors import ConfigError, ModelError
from ymir_base.monitor import Monitor
from ymir_base.results.training import TrainingResult
from ymir_base.verify.checks import check_infer_result, check_training_result


def epoch_metrics(mask_map50: float, box_map50: float) -> dict[str, float]:
    """What the seg trainer hands its logger after an epoch (yolov5.utils.segment.metrics.KEYS)."""
    return {"train/box_loss": 0.1, "train/seg_loss": 0.2, "train/obj_loss": 0.3, "train/cls_loss": 0.4,
            "metrics/precision(B)": 0.7, "metrics/recall(B)": 0.6, "metrics/mAP_0.5(B)": box_map50,
            "metrics/mAP_0.5:0.95(B)": box_map50 / 2, "metrics/precision(M)": 0.5, "metrics/recall(M)": 0.4,
            "metrics/mAP_0.5(M)": mask_map50, "metrics/mAP_0.5:0.95(M)": mask_map50 / 2,
            "val/box_loss": 0.1, "val/seg_loss": 0.2, "val/obj_loss": 0.3, "val/cls_loss": 0.4,
            "x/lr0": 0.01, "x/lr1": 0.01, "x/lr2": 0.01}


def test_stages_follow_mask_ap_and_an_early_stop_keeps_its_last_epoch(tmp_path):
    from ymir_yolov5lib.segment_train import _SegReporter

    ctx, _, out_dir = seg_task(tmp_path, overrides={"save_best_only": False, "save_period": 2})
    record = ImageRecord("/in/assets/v.jpg", Path("v.jpg"), 64, 64, [ObjectAnnotation(0, (1, 1, 9, 9))])
    result = TrainingResult(out_dir / "models", object_type=4)
    reporter = _SegReporter(ctx, Monitor(out_dir / "monitor.txt", "t"), result, Dataset(CLASSES, [], [record]),
                            epochs=5, batches_per_epoch=1, journal=EpochJournal(tmp_path))
    weights = tmp_path / "run" / "weights"
    checkpoint = seg_checkpoint(weights)
    for epoch, (mask_ap, box_ap) in enumerate([(0.3, 0.5), (0.2, 0.9), (0.4, 0.1)]):
        reporter.on_epoch_metrics(epoch_metrics(mask_ap, box_ap), epoch)
        shutil.copy(checkpoint, weights / f"epoch{epoch}.pt")
        reporter.on_checkpoint(weights / f"epoch{epoch}.pt")
        assert not (weights / f"epoch{epoch}.pt").exists()  # made a stage, then deleted
    shutil.copy(checkpoint, weights / "last.pt")
    reporter.on_checkpoint(checkpoint)  # the trainer stopped early after epoch 3 of 5
    reporter.close()

    data = yaml.safe_load((out_dir / "models/result.yaml").read_text())
    assert data["best_stage_name"] == "best" and data["maskAP"] == 0.4  # epoch 3; epoch 2 had the best boxAP
    stages = data["model_stages"]
    assert set(stages) == {"best", "epoch_2", "epoch_3"}  # save_period 2, and the last epoch
    assert (stages["epoch_2"]["maskAP"], stages["epoch_2"]["boxAP"]) == (0.2, 0.9)
    assert check_training_result(out_dir / "models", 4, out_dir / "tensorboard") == []
    details = json.loads((out_dir / "models/attachments/metrics/best.json").read_text())
    assert details["epoch"] == 3 and details["mask"]["mAP@0.5:0.95"] == 0.2 and details["box"]["recall"] == 0.6
    scalars = read_scalars(out_dir / "tensorboard")
    assert [v for _, v in scalars["metrics/maskAP_0.5"]] == pytest.approx([0.3, 0.2, 0.4])
    assert "metrics/box/mAP_0.5:0.95" in scalars and "train/seg_loss" in scalars


def test_a_resumed_seg_run_writes_the_last_epochs_stages_a_kill_cut_off(tmp_path):
    """Killed after the seg trainer saved last.pt of its last epoch, before that epoch's stages:
    the resumed run writes them from the journal's metrics and trains no more."""
    from ymir_yolov5lib.segment_train import _SegReporter
    from ymir_yolov5lib.train import Resume

    ctx, _, out_dir = seg_task(tmp_path, overrides={"save_best_only": False, "save_period": 1})
    record = ImageRecord("/in/assets/v.jpg", Path("v.jpg"), 64, 64, [ObjectAnnotation(0, (1, 1, 9, 9))])

    def reporter() -> _SegReporter:
        return _SegReporter(ctx, Monitor(out_dir / "monitor.txt", "t"), TrainingResult.load(out_dir / "models", 4),
                            Dataset(CLASSES, [], [record]), epochs=2, batches_per_epoch=1,
                            journal=EpochJournal(tmp_path))

    weights = tmp_path / "run" / "weights"
    checkpoint = seg_checkpoint(weights)
    killed = reporter()
    killed.catch_up(None)
    killed.on_epoch_metrics(epoch_metrics(0.3, 0.5), 0)
    shutil.copy(checkpoint, weights / "epoch0.pt")
    killed.on_checkpoint(weights / "epoch0.pt")
    killed.on_epoch_metrics(epoch_metrics(0.4, 0.6), 1)
    last = weights / "last.pt"
    torch.save({**torch.load(checkpoint, weights_only=False), "epoch": 1}, last)  # then the kill
    killed.close()

    resumed = reporter()
    assert resumed.catch_up(Resume(last, 2, {})) is True
    resumed.close()
    stages = yaml.safe_load((out_dir / "models/result.yaml").read_text())["model_stages"]
    assert set(stages) == {"best", "epoch_1", "epoch_2"}
    assert (stages["epoch_2"]["maskAP"], stages["epoch_2"]["boxAP"], stages["best"]["maskAP"]) == (0.4, 0.6, 0.4)


@pytest.mark.parametrize(("overrides", "error", "text"), [
    ({"model": "yolov5q-seg"}, ConfigError, "config key 'model': 'yolov5q-seg' is not one of yolov5n-seg"),
    ({"model": "yolov5n"}, ConfigError, "config key 'model': 'yolov5n' is not one of"),
    ({"args_options": "--exist-ok --no-such-flag"}, ConfigError, "'args_options'"),
])
def test_bad_options_fail_before_training(tmp_path, overrides, error, text):
    """The layer's own checks, behind the image's schema (which already refuses a model it does
    not list)."""
    ctx, _, out_dir = seg_task(tmp_path, overrides=TINY)
    ctx.config.update(overrides)
    with pytest.raises(error, match=text):
        run_training(ctx)
    assert not (out_dir / "models/result.yaml").exists()


def test_detection_weights_are_refused_as_a_starting_point(tmp_path, yolov5n_checkpoint):
    ctx, _, _ = seg_task(tmp_path, models={"coco": yolov5n_checkpoint.parent}, overrides=TINY)
    with pytest.raises(ModelError, match="holds a YOLOv5 Detect model, not a YOLOv5-seg"):
        run_training(ctx)


@pytest.mark.slow
def test_training_makes_stages_onnx_and_a_model_that_infers(tmp_path):
    ctx, _, out_dir = seg_task(tmp_path, overrides={**TINY, "epochs": 2, "save_best_only": False, "save_period": 1})
    run_training(ctx)
    models = out_dir / "models"
    assert check_training_result(models, 4, out_dir / "tensorboard") == []
    data = yaml.safe_load((models / "result.yaml").read_text())
    assert {"best", "epoch_1", "epoch_2"} <= set(data["model_stages"])
    assert all({"maskAP", "boxAP"} <= set(s) for s in data["model_stages"].values())
    onnx_file = models / "attachments/onnx/best.onnx"
    assert onnx_file.stat().st_size > 1_000_000
    import onnx

    outputs = [o.name for o in onnx.load(str(onnx_file)).graph.output]
    assert len(outputs) == 2  # detections with mask coefficients, and the prototypes
    assert "maskAP_0.5" in " ".join(read_scalars(out_dir / "tensorboard"))

    infer_ctx, in_dir, infer_out = seg_task(tmp_path, "infer", images=3, models={"best": models / "best"},
                                            overrides={"img_size": 64, "conf_thres": 0.001})
    run_infer(infer_ctx)
    candidates = (in_dir / "candidate-index.tsv").read_text().split()
    assert check_infer_result(infer_out / "infer-result.json", candidates, CLASSES, kind="instance") == []


@pytest.mark.slow
@pytest.mark.parametrize("model", ["yolov5s-seg", "yolov5m-seg", "yolov5l-seg", "yolov5x-seg"])
def test_every_model_trains_a_step_and_predicts(tmp_path, model):
    """yolov5's own architecture file, random weights, one optimiser step on 4 images at 64 px
    (the trainer without the ONNX export, which train() adds for every model alike), then the
    trained checkpoint predicts."""
    from ymir_yolov5lib.segment_data import write_seg_dataset
    from ymir_yolov5lib.segment_predictor import Yolov5SegPredictor
    from ymir_yolov5lib.segment_train import _train_here

    ctx, _, out_dir = seg_task(tmp_path, overrides={**TINY, "model": model})
    env = ctx.env.input
    dataset = load_dataset(env.training_index_file, env.val_index_file, ctx.mapper, CLASSES, "seg-coco:raw")
    data_yaml = write_seg_dataset(dataset, ctx.work_dir / "yolo-seg-data")
    result = TrainingResult(out_dir / "models", object_type=4)
    _train_here(SegLayerBackend(), ctx, dataset, data_yaml, Monitor(out_dir / "monitor.txt", "t"), result)
    assert set(result.stages) == {"best"}
    import torch

    predictor = Yolov5SegPredictor(out_dir / "models/best/best.pt", device=torch.device("cpu"), img_size=64,
                                   conf_thres=0.0, iou_thres=0.45, batch_size=2, class_names=CLASSES)
    from ymir_base.data.images import read_image

    pred = predictor.predict([read_image(dataset.val[0].path)])[0]
    assert len(pred) > 0 and pred.masks[0]["size"] == [dataset.val[0].height, dataset.val[0].width]


@pytest.mark.slow
def test_killed_training_resumes_from_its_checkpoint(tmp_path, caplog):
    overrides = {**TINY, "epochs": 3, "save_best_only": False, "save_period": 1}
    _, in_dir, out_dir = seg_task(tmp_path, overrides=overrides)
    script = ("import sys, json; sys.path.insert(0, sys.argv[1]); from pathlib import Path; "
              "from seglayer import make_context, run_training; "
              "run_training(make_context(Path(sys.argv[2]), Path(sys.argv[3]), json.loads(sys.argv[4])))")
    proc = subprocess.run([sys.executable, "-c", script, str(HERE), str(in_dir), str(out_dir), json.dumps(overrides)],
                          env={**os.environ, faults.KILL_AFTER: "stage:epoch_1"}, capture_output=True, timeout=600)
    assert proc.returncode == -9, proc.stderr[-3000:]
    assert set(yaml.safe_load((out_dir / "models/result.yaml").read_text())["model_stages"]) == {"best", "epoch_1"}
    with caplog.at_level(logging.INFO):
        result = run_training(make_context(in_dir, out_dir, overrides))
    assert "resuming the killed run of this task" in caplog.text and "(epoch 1 done)" in caplog.text
    assert {"epoch_1", "epoch_2", "epoch_3"} <= set(result.stages)
    assert json.loads((out_dir / "models/attachments/metrics/epoch_2.json").read_text())["epoch"] == 2
    assert check_training_result(out_dir / "models", 4, out_dir / "tensorboard") == []
