"""End to end on CPU: the real yolov5 trainer, predictor and every miner on sample data."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import yaml

from conftest import kill_after, kill_after_stage, read_monitor
from ymir_base.engine.task import run_task
from ymir_base.verify.checks import check_infer_result, check_mining_result, check_training_result

pytestmark = pytest.mark.slow


def test_ymir_exec_verify_yolov5(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "ymir_base.cli", "verify", "yolov5", "--keep", str(tmp_path)],
                          capture_output=True, text=True, timeout=1200)
    out = proc.stdout
    assert proc.returncode == 0, out[-4000:] + proc.stderr[-4000:]
    assert "FAIL" not in out
    for algorithm in ("random", "entropy", "aldd", "cald"):
        assert f"PASS  mining-{algorithm}: result.tsv" in out
    assert "PASS  training: result.yaml and model files" in out
    data = yaml.safe_load((tmp_path / "training/out/models/result.yaml").read_text())
    assert data["best_stage_name"] == "best" and {"epoch_1", "epoch_2", "best"} <= set(data["model_stages"])
    assert (tmp_path / "training/out/models/attachments/onnx/best.onnx").stat().st_size > 100_000
    scores = [float(r.split("\t")[1]) for r in (tmp_path / "mining-aldd/out/result.tsv").read_text().splitlines()]
    assert max(scores) > 0  # ALDD saw real disagreement in the dense maps


def test_voc_and_coco_exports_train(sample):
    for fmt in ("voc", "coco"):
        in_dir, out_dir = sample("training", fmt)
        code = run_task("yolov5", in_dir, out_dir, {"model": "yolov5n", "epochs": 1, "img_size": 64,
                                                    "batch_size_per_gpu": 4, "num_workers_per_gpu": 0})
        assert code == 0, read_monitor(out_dir)[2]
        assert check_training_result(out_dir / "models", 2, out_dir / "tensorboard") == []


def test_mining_and_infer_share_one_pass(sample, yolov5n_checkpoint):
    in_dir, out_dir = sample("mining+infer", models={"best": yolov5n_checkpoint.parent})
    assert run_task("yolov5", in_dir, out_dir, {"mining_algorithm": "cald", "img_size": 64,
                                                "conf_thres": 0.001}) == 0
    candidates = (in_dir / "candidate-index.tsv").read_text().split()
    assert check_mining_result(out_dir / "result.tsv", candidates) == []
    assert check_infer_result(out_dir / "infer-result.json", candidates, ["circle", "square", "triangle"]) == []
    boxes = sum(len(v["boxes"]) for v in json.loads((out_dir / "infer-result.json").read_text())["detection"].values())
    assert boxes > 0


def test_killed_training_resumes_from_its_checkpoint(sample):
    in_dir, out_dir = sample("training", images=10)
    cmd = [sys.executable, "-m", "ymir_base.cli", "run", "yolov5", "--in", str(in_dir), "--out", str(out_dir),
           "--set", "model=yolov5n", "--set", "epochs=3", "--set", "img_size=64", "--set", "batch_size_per_gpu=4",
           "--set", "num_workers_per_gpu=0", "--set", "save_best_only=false", "--set", "save_period=1"]
    result = out_dir / "models" / "result.yaml"
    kill_after_stage(cmd, "epoch_1")
    again = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, again.stdout[-3000:]
    assert "resuming the killed run" in again.stdout
    stages = yaml.safe_load(result.read_text())["model_stages"]
    assert {"epoch_1", "epoch_3"} <= set(stages)
    assert check_training_result(out_dir / "models", 2, out_dir / "tensorboard") == []


@pytest.mark.parametrize(("epochs", "point"), [
    (1, "saved:last.pt"),   # the last epoch's checkpoint saved, none of its stages written
    (1, "stage:epoch_1"),   # its stages written, the checkpoint not yet stripped
    (2, "saved:last.pt"),   # epoch 1 of 2 checkpointed, its stages not written
])
def test_a_training_killed_between_checkpoint_and_stages_finishes_them(sample, epochs, point):
    """yolov5 saves last.pt before the stages are made from it: the rerun writes the stages the
    kill cut off, and does not resume into an empty epoch loop (which failed with 160004)."""
    in_dir, out_dir = sample("training", images=8)
    cmd = [sys.executable, "-m", "ymir_base.cli", "run", "yolov5", "--in", str(in_dir), "--out", str(out_dir),
           "--set", "model=yolov5n", "--set", f"epochs={epochs}", "--set", "img_size=64",
           "--set", "batch_size_per_gpu=4", "--set", "num_workers_per_gpu=0", "--set", "save_best_only=false",
           "--set", "save_period=1"]
    kill_after(cmd, point)
    again = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, again.stdout[-3000:]
    assert "resuming the killed run" in again.stdout
    stages = yaml.safe_load((out_dir / "models" / "result.yaml").read_text())["model_stages"]
    assert {f"epoch_{n}" for n in range(1, epochs + 1)} | {"best"} <= set(stages)
    state, code, text = read_monitor(out_dir)
    assert (state, code, float(text.split("\t")[2])) == (2, 0, 1.0)
    assert check_training_result(out_dir / "models", 2, out_dir / "tensorboard") == []
