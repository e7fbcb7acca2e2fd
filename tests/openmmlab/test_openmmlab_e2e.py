"""End to end on CPU through the executor: verify both images, exports, resume, bad input."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import pytest
import yaml

from conftest import edit_yaml, kill_after, kill_after_stage, read_monitor
from ymir_base.engine.task import run_task
from ymir_base.errors import ErrorCode
from ymir_base.verify.checks import check_infer_result, check_training_result

pytestmark = pytest.mark.slow
CLASSES = ["circle", "square", "triangle"]


@pytest.mark.parametrize("image", ["mmdet", "mmyolo"])
def test_ymir_exec_verify(tmp_path, image):
    proc = subprocess.run([sys.executable, "-m", "ymir_base.cli", "verify", image, "--keep", str(tmp_path)],
                          capture_output=True, text=True, timeout=1200)
    out = proc.stdout
    assert proc.returncode == 0, out[-4000:] + proc.stderr[-4000:]
    assert "FAIL" not in out
    for algorithm in ("random", "entropy", "aldd", "cald"):
        assert f"PASS  mining-{algorithm}: result.tsv" in out
    data = yaml.safe_load((tmp_path / "training/out/models/result.yaml").read_text())
    # max_keep_checkpoints 1: the best stage and the latest evaluated epoch only
    assert set(data["model_stages"]) == {"best", "epoch_2"}
    assert (tmp_path / "training/out/models/best.pth").is_file()
    assert list((tmp_path / "training/out/tensorboard").glob("events.out.tfevents.*"))
    scores = [float(r.split("\t")[1]) for r in (tmp_path / "mining-aldd/out/result.tsv").read_text().splitlines()]
    assert max(scores) > 0  # ALDD saw disagreement in the dense maps


@pytest.mark.parametrize("fmt", ["voc", "coco"])
def test_other_exports_train(sample, fmt):
    in_dir, out_dir = sample("training", fmt)
    code = run_task("mmyolo", in_dir, out_dir, {"model_name": "rtmdet_tiny", "max_epochs": 1, "img_size": 64,
                                                "samples_per_gpu": 4, "workers_per_gpu": 0,
                                                "max_keep_checkpoints": -1})
    assert code == 0, read_monitor(out_dir)[2]
    assert check_training_result(out_dir / "models", 2, out_dir / "tensorboard") == []


def test_infer_with_the_checkpoint_alone(sample, mmyolo_model, tmp_path):
    """A model package without config.py still loads: MMEngine stored the config in the checkpoint."""
    package = tmp_path / "package"
    package.mkdir()
    shutil.copy(mmyolo_model / "best.pth", package / "best.pth")
    in_dir, out_dir = sample("infer", models={"best": package})
    assert run_task("mmyolo", in_dir, out_dir, {"conf_threshold": 0.001}) == 0, read_monitor(out_dir)[2]
    candidates = (in_dir / "candidate-index.tsv").read_text().split()
    assert check_infer_result(out_dir / "infer-result.json", candidates, CLASSES) == []
    boxes = sum(len(v["boxes"]) for v in json.loads((out_dir / "infer-result.json").read_text())["detection"].values())
    assert boxes > 0


@pytest.mark.parametrize(("override", "code", "message"), [
    ({"model_name": "yolov9_t"}, ErrorCode.CONFIG, "model_name"),
    ({"cfg_options": "optim_wrapper.optimizer.lr"}, ErrorCode.CONFIG, "cfg_options"),
    ({"args_options": "--launcher slurm"}, ErrorCode.CONFIG, "args_options"),
    ({"args_options": "--resume /in/models/missing.pth"}, ErrorCode.CONFIG, "no such checkpoint"),
])
def test_bad_training_options_fail_with_the_key(sample, override, code, message):
    in_dir, out_dir = sample("training")
    assert run_task("mmyolo", in_dir, out_dir, {"max_epochs": 1, "img_size": 64, "workers_per_gpu": 0,
                                                **override}) == 1
    state, got_code, text = read_monitor(out_dir)
    assert (got_code, state) == (code, 4) and message in text
    assert not (out_dir / "models" / "result.yaml").exists()


def test_unknown_mmdet_config_file(sample):
    in_dir, out_dir = sample("training")
    edit_yaml(in_dir / "config.yaml", config_file="configs/yolox/yolox_nano_8x8_300e_coco.py")
    assert run_task("mmdet", in_dir, out_dir) == 1
    state, got_code, text = read_monitor(out_dir)
    assert (got_code, state) == (ErrorCode.CONFIG, 4) and "config_file" in text


def test_killed_training_resumes_from_its_checkpoint(sample):
    in_dir, out_dir = sample("training", images=10)
    cmd = [sys.executable, "-m", "ymir_base.cli", "run", "mmyolo", "--in", str(in_dir), "--out", str(out_dir),
           "--set", "model_name=yolov5_n", "--set", "max_epochs=3", "--set", "img_size=64",
           "--set", "samples_per_gpu=4", "--set", "workers_per_gpu=0", "--set", "max_keep_checkpoints=-1"]
    result = out_dir / "models" / "result.yaml"
    kill_after_stage(cmd, "epoch_1")
    again = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, again.stdout[-3000:]
    assert "resuming the killed run" in again.stdout
    stages = yaml.safe_load(result.read_text())["model_stages"]
    assert {"epoch_1", "epoch_2", "epoch_3", "best"} <= set(stages)
    assert check_training_result(out_dir / "models", 2, out_dir / "tensorboard") == []
    # a third start of the same finished task keeps its stages and trains no more
    third = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert third.returncode == 0 and "already finished" in third.stdout


@pytest.mark.parametrize("epochs", [1, 2])
def test_a_training_killed_between_checkpoint_and_validation_validates_first(sample, epochs):
    """MMEngine checkpoints epoch 1 before it validates it. Killed in between, the rerun resumes
    after epoch 1: it validates epoch 1 first, so epoch 1 (the last one, with 1 epoch) gets its
    stage instead of being skipped."""
    in_dir, out_dir = sample("training", images=10)
    cmd = [sys.executable, "-m", "ymir_base.cli", "run", "mmyolo", "--in", str(in_dir), "--out", str(out_dir),
           "--set", "model_name=yolov5_n", "--set", f"max_epochs={epochs}", "--set", "img_size=64",
           "--set", "samples_per_gpu=4", "--set", "workers_per_gpu=0", "--set", "max_keep_checkpoints=-1"]
    kill_after(cmd, "validate:epoch_1")
    assert not (out_dir / "models" / "result.yaml").exists()  # no stage before the kill
    again = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, again.stdout[-3000:]
    assert "resuming the killed run" in again.stdout and "validating epoch 1, which the kill" in again.stdout
    stages = yaml.safe_load((out_dir / "models" / "result.yaml").read_text())["model_stages"]
    assert {f"epoch_{n}" for n in range(1, epochs + 1)} | {"best"} <= set(stages)
    assert check_training_result(out_dir / "models", 2, out_dir / "tensorboard") == []
