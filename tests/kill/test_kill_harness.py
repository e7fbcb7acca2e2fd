"""The kill harness (ymir_base/verify/kills.py): its /out checker catches each broken output on
hand-made folders, its runner kills a whole process group, and a small K of real kills of the
yolov5 and mmdet images leaves valid outputs that a rerun completes (and a training resumes)."""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from pathlib import Path

import pytest
import torch
import yaml

from ymir_base.results.training import TrainingResult
from ymir_base.verify import kills

CANDIDATES = ["/in/assets/a.jpg", "/in/assets/b.jpg"]
CLASSES = ["circle", "square"]


def valid_out(root: Path) -> Path:
    """An /out as a training + mining + infer would leave it mid-run, every file valid."""
    out = root / "out"
    models = out / "models"
    result = TrainingResult(models)
    torch.save({"epoch": 1, "model": torch.zeros(3)}, result.stage_dir("epoch_1") / "epoch_1.pt")
    result.add_stage("epoch_1", ["epoch_1.pt"], {"mAP": 0.25}, details={"mAP": 0.25})
    result.expose_top_level("epoch_1", "epoch_1.pt")
    (out / "monitor.txt").write_text("t1\t1795700000.000001\t0.4000\t2\t0\n")
    box = {"box": {"x": 1, "y": 2, "w": 3, "h": 4}, "class_name": "circle", "score": 0.5}
    detection = {"a.jpg": {"boxes": [box]}, "b.jpg": {"boxes": []}}
    (out / "infer-result.json").write_text(json.dumps({"detection": detection}))
    (out / "result.tsv").write_text("/in/assets/b.jpg\t0.9\n/in/assets/a.jpg\t0.1\n")
    return out


def problems(out: Path) -> list[str]:
    return kills.check_out(out, candidates=CANDIDATES, class_names=CLASSES)


def test_a_valid_out_passes_and_an_empty_one_too(tmp_path):
    assert problems(valid_out(tmp_path)) == []
    (tmp_path / "empty").mkdir()
    assert problems(tmp_path / "empty") == []  # killed before it wrote anything


def test_a_truncated_infer_result_is_caught(tmp_path):
    out = valid_out(tmp_path)
    text = (out / "infer-result.json").read_text()
    (out / "infer-result.json").write_text(text[: len(text) // 2])
    assert any("infer-result.json is not valid JSON" in p for p in problems(out))


def test_a_truncated_mining_result_is_caught(tmp_path):
    out = valid_out(tmp_path)
    (out / "result.tsv").write_text("/in/assets/b.jpg\t0.9\n/in/ass")
    assert any("result.tsv" in p for p in problems(out))


def test_result_yaml_listing_a_missing_file_is_caught(tmp_path):
    out = valid_out(tmp_path)
    (out / "models" / "epoch_1" / "epoch_1.pt").unlink()
    (out / "models" / "epoch_1.pt").unlink()
    assert any("epoch_1.pt exists in neither" in p for p in problems(out))


def test_a_truncated_listed_checkpoint_is_caught(tmp_path):
    out = valid_out(tmp_path)
    path = out / "models" / "epoch_1" / "epoch_1.pt"
    path.write_bytes(path.read_bytes()[:200])
    assert any("epoch_1.pt is incomplete" in p for p in problems(out))


def test_a_truncated_result_yaml_and_a_listed_temporary_file_are_caught(tmp_path):
    out = valid_out(tmp_path)
    path = out / "models" / "result.yaml"
    data = yaml.safe_load(path.read_text())
    (out / "models" / "epoch_1" / ".epoch_1.pt.tmp").write_bytes(b"x")
    data["model_stages"]["epoch_1"]["files"] = [".epoch_1.pt.tmp"]
    path.write_text(yaml.safe_dump(data))
    assert any("a temporary file is listed" in p for p in problems(out))
    path.write_text(path.read_text()[:40])
    assert problems(out)


def test_a_truncated_metrics_attachment_is_caught(tmp_path):
    out = valid_out(tmp_path)
    path = out / "models" / "attachments" / "metrics" / "epoch_1.json"
    path.write_text(path.read_text()[:5])
    assert any("epoch_1.json is incomplete" in p for p in problems(out))


@pytest.mark.parametrize(("text", "fragment"), [
    ("t1 1.0 0.5 2 0\n", "is not"),            # spaces
    ("t1\t1.0\t0.5\n", "is not"),               # three fields
    ("t1\t1.0\t1.0\t3\t0\n", "state 3"),        # YMIR's own state
])
def test_a_malformed_monitor_is_caught(tmp_path, text, fragment):
    out = valid_out(tmp_path)
    (out / "monitor.txt").write_text(text)
    assert any(fragment in p for p in problems(out))


@pytest.mark.parametrize("text", ["", "t1\t1.0\t0.5\t2\n", "t1\t1.0\t0.5\t4\t300001\tbad key\ntraceback\n"])
def test_monitor_lines_ymir_accepts_pass(tmp_path, text):
    out = valid_out(tmp_path)
    (out / "monitor.txt").write_text(text)
    assert problems(out) == []


def test_a_finished_task_needs_its_results_and_the_monitor_at_100(tmp_path):
    out = valid_out(tmp_path)
    found = kills.check_finished(out, "mining+infer", candidates=CANDIDATES, class_names=CLASSES)
    assert any("expected state 2, code 0, percent 1.0" in p for p in found)
    (out / "result.tsv").unlink()
    (out / "monitor.txt").write_text("t1\t1.0\t1.0000\t2\t0\n")
    assert kills.check_finished(out, "mining+infer", candidates=CANDIDATES, class_names=CLASSES) == [
        "result.tsv was not written"]


def test_kill_moments_are_seeded_fractions_of_the_duration():
    moments = kills.kill_moments(5, 100.0, "0/x")
    assert moments == kills.kill_moments(5, 100.0, "0/x") != kills.kill_moments(5, 100.0, "1/x")
    assert all(2.0 <= m <= 98.0 for m in moments)


def test_the_runner_kills_the_whole_process_group(tmp_path):
    child_pid = tmp_path / "child.pid"
    script = ("import subprocess, sys, time; p = subprocess.Popen([sys.executable, '-c', 'import time; "
              f"time.sleep(60)']); open({str(child_pid)!r}, 'w').write(str(p.pid)); time.sleep(60)")
    code, seconds = kills.run([sys.executable, "-c", script], tmp_path / "log", kill_at=3.0)
    assert code == -signal.SIGKILL and seconds < 30
    pid = int(child_pid.read_text())
    for _ in range(50):  # reparented and reaped by init once killed
        state = Path(f"/proc/{pid}/stat")
        if not state.exists() or state.read_text().split(")")[-1].split()[0] == "Z":
            break
        time.sleep(0.1)
    else:
        os.kill(pid, signal.SIGKILL)
        pytest.fail("the child process outlived the kill of its group")


# ---- real kills (small K) ----------------------------------------------------------------------

def assert_all_held(report: kills.TaskKills) -> None:
    details = kills.details([report])
    assert not report.baseline_problems, details
    assert report.landed >= 1, f"no kill landed before the task ended\n{details}"
    assert report.invariant_failures == 0, details
    assert report.reruns_finished == len(report.kills), details
    resumed, due = report.resumes
    assert resumed == due, details


@pytest.mark.slow
def test_yolov5_training_killed_twice(tmp_path):
    spec = kills.prepare("yolov5", "detection", "training", tmp_path / "in")
    report = kills.kill_task(spec, tmp_path, 2, seed=1)
    assert_all_held(report)


@pytest.mark.slow
def test_yolov5_mining_and_infer_killed_twice(tmp_path, yolov5n_checkpoint):
    spec = kills.prepare("yolov5", "detection", "mining+infer", tmp_path / "in",
                         models={"best": yolov5n_checkpoint.parent})
    assert_all_held(kills.kill_task(spec, tmp_path, 2, seed=1))


@pytest.mark.slow
def test_mmdet_training_killed_once(tmp_path):
    spec = kills.prepare("mmdet", "detection", "training", tmp_path / "in")
    assert_all_held(kills.kill_task(spec, tmp_path, 1, seed=1))
