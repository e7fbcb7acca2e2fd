"""The seg-in-one image end to end on CPU: every seed model trains a step and predicts, `ymir-exec
verify` on the semantic sample data, resume of a killed run, a NaN loss, the outputs of protocol §7."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch
import yaml
from _seg_helpers import one_thread

from conftest import kill_after_stage, read_monitor
from ymir_base.data.convert import semantic as labels
from ymir_base.engine.task import run_task
from ymir_base.errors import ErrorCode
from ymir_base.verify.checks import check_infer_result, check_training_result
from ymir_seginone.models import LEGACY_NAMES, MODELS
from ymir_seginone.semantic import semantic_miners

CLASSES = ["circle", "square", "triangle"]
IMAGE = "seg-in-one"
ONE_STEP = {"max_iters": 1, "interval": 1, "img_size": 64, "samples_per_gpu": 2, "workers_per_gpu": 0}
# each model under the name the seed gives it, or mmseg 1.x's, alternately
SEED_CONFIGS = {key: f"configs/{(LEGACY_NAMES if i % 2 == 0 else MODELS)[key]}" for i, key in enumerate(MODELS)}


@pytest.fixture(autouse=True)
def _one_thread():
    with one_thread():
        yield


@pytest.mark.slow
@pytest.mark.parametrize("model", list(MODELS))
def test_every_seed_model_trains_a_step_and_predicts(sample, model):
    in_dir, out_dir = sample("training", "coco", images=6, object_type="semantic")
    overrides = {"config_file": SEED_CONFIGS[model], **ONE_STEP}
    assert run_task(IMAGE, in_dir, out_dir, overrides) == 0, read_monitor(out_dir)[2]
    assert check_training_result(out_dir / "models", 3, out_dir / "tensorboard") == []
    best = out_dir / "models" / "best"
    ckpt = torch.load(best / "best.pth", map_location="cpu", weights_only=False)
    assert ckpt["meta"]["dataset_meta"]["classes"] == (*CLASSES, labels.BLANK_CLASS)
    assert "optimizer" not in ckpt
    in_dir, out_dir = sample("infer", "coco", images=3, object_type="semantic", models={"best": best})
    assert run_task(IMAGE, in_dir, out_dir) == 0, read_monitor(out_dir)[2]
    candidates = (in_dir / "candidate-index.tsv").read_text().split()
    assert check_infer_result(out_dir / "infer-result.json", candidates, CLASSES, "semantic") == []


@pytest.mark.slow
def test_ymir_exec_verify_on_semantic_sample_data(tmp_path):
    """Training, infer, mining with each of the image's semantic algorithms (every one is
    registered in the base for semantic tasks) and mining+infer."""
    from ymir_base.verify.pipeline import verify

    assert set(semantic_miners()) == {"RSAL", "RIPU", "entropy", "random"}
    report = verify(IMAGE, tmp_path, object_type=3)
    failed = [(name, detail) for ok, name, detail in report.lines if not ok]
    assert not failed
    names = [name for _, name, _ in report.lines]
    assert {"training: result.yaml and model files", "infer: infer-result.json", "mining-RSAL: result.tsv",
            "mining-random: result.tsv",
            "mining+infer: result.tsv", "mining+infer: infer-result.json"} <= set(names)
    result = yaml.safe_load((tmp_path / "training/out/models/result.yaml").read_text())
    assert set(result["model_stages"]) == {"best", "iter_10"}  # save_least_file: the best and the last
    assert {"mIoU", "mAcc"} <= set(result["model_stages"]["iter_10"]) and "evaluate_config" not in result
    details = json.loads((tmp_path / "training/out/models/attachments/metrics/iter_10.json").read_text())
    assert details["iter"] == 10 and set(details["per_class"]) == set(CLASSES)
    document = json.loads((tmp_path / "infer/out/infer-result.json").read_text())
    assert [c["name"] for c in document["categories"]] == CLASSES  # no blank class


@pytest.mark.slow
def test_a_killed_training_resumes_from_its_last_evaluation(sample):
    in_dir, out_dir = sample("training", "coco", images=6, object_type="semantic")
    cmd = [sys.executable, "-m", "ymir_base.cli", "run", IMAGE, "--in", str(in_dir), "--out", str(out_dir),
           "--set", "max_iters=4", "--set", "interval=2", "--set", "img_size=64", "--set", "samples_per_gpu=2",
           "--set", "workers_per_gpu=0", "--set", "save_least_file=false"]
    kill_after_stage(cmd, "iter_2")
    again = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, again.stdout[-3000:]
    assert "resuming the killed run" in again.stdout and "iter_2.pth" in again.stdout
    stages = yaml.safe_load((out_dir / "models" / "result.yaml").read_text())["model_stages"]
    assert {"iter_2", "iter_4", "best"} <= set(stages)  # max_keep_ckpts -1 keeps both
    assert check_training_result(out_dir / "models", 3, out_dir / "tensorboard") == []


def test_a_nan_loss_fails_with_its_code(sample):
    in_dir, out_dir = sample("training", "coco", images=6, object_type="semantic")
    overrides = {**ONE_STEP, "max_iters": 3, "cfg_options": "optim_wrapper.optimizer.lr=1e30"}
    assert run_task(IMAGE, in_dir, out_dir, overrides) == 1
    state, code, text = read_monitor(out_dir)
    assert (state, code) == (4, ErrorCode.NAN) and "NaN" in text
