"""Shared fixtures: sample /in folders from the base's generator, a tiny YOLOv5 checkpoint and
briefly trained OpenMMLab model packages."""

from __future__ import annotations

import contextlib
import faulthandler
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from ymir_base import faults
from ymir_base.engine.task import run_task
from ymir_base.sample.generator import generate


def read_monitor(out_dir: Path) -> tuple[int, int, str]:
    """(state, code, whole text) of out_dir/monitor.txt."""
    text = (out_dir / "monitor.txt").read_text()
    fields = text.splitlines()[0].split("\t")
    return int(fields[3]), int(fields[4]), text


def edit_yaml(path: Path, **changes) -> None:
    data = yaml.safe_load(path.read_text()) or {}
    data.update(changes)
    path.chmod(0o644)
    path.write_text(yaml.safe_dump(data))


def kill_after_stage(cmd: list[str], stage: str, timeout: float = 600) -> None:
    """Run ``cmd`` and have it SIGKILL itself right after result.yaml lists ``stage`` (YMIR's stop
    is `docker rm -f`: no grace period). The kill point is exact, not a race with a timer."""
    kill_after(cmd, f"stage:{stage}", timeout)


def kill_after(cmd: list[str], point: str, timeout: float = 600) -> None:
    """Run ``cmd`` and have it SIGKILL itself right after the fault point ``point`` (ymir_base.faults)."""
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
                            env={**os.environ, faults.KILL_AFTER: point})
    try:
        code = proc.wait(timeout)
    finally:
        with contextlib.suppress(ProcessLookupError):  # data loader workers left behind
            os.killpg(proc.pid, signal.SIGKILL)
    assert code == -signal.SIGKILL, f"the task ended with {code} instead of being killed after {point}"


def detection_result(predictions: dict, class_names: list[str], *, with_angle: bool = False,
                     legacy: bool = False) -> dict:
    """The detection infer-result.json the engine writes for these predictions (None: unreadable)."""
    from ymir_base.tasks import DetectionWriter

    writer = DetectionWriter(with_angle=with_angle)
    return writer.document({n: writer.entry(p, class_names, legacy=legacy) for n, p in predictions.items()},
                           class_names)


@pytest.fixture
def sample(tmp_path):
    """Factory: sample(task, fmt="ark", **kwargs) -> (in_dir, out_dir)."""

    def make(task: str = "training", fmt: str = "ark", **kwargs):
        name = f"{task.replace('+', '-')}-{fmt}-{len(list(tmp_path.iterdir()))}"
        in_dir, out_dir = tmp_path / name / "in", tmp_path / name / "out"
        out_dir.mkdir(parents=True)
        kwargs.setdefault("images", 8)
        generate(in_dir, task=task, object_type=kwargs.pop("object_type", "detection"), fmt=fmt, **kwargs)
        return in_dir, out_dir

    return make


@pytest.fixture(scope="session")
def yolov5n_checkpoint(tmp_path_factory) -> Path:
    """A random-init YOLOv5n for the sample's three classes, saved as the trainer saves it."""
    from ymir_yolov5lib import models, runtime

    runtime.prepare()
    import torch
    from yolov5.models.yolo import Model

    torch.manual_seed(0)
    model = Model(str(models.model_yaml("yolov5n")), ch=3, nc=3)
    model.names = {0: "circle", 1: "square", 2: "triangle"}
    folder = tmp_path_factory.mktemp("weights") / "best"
    folder.mkdir()
    path = folder / "best.pt"
    torch.save({"model": model.half(), "epoch": -1}, path)
    return path


# ---- OpenMMLab images: one briefly trained model package each (best.pth + config.py) ----
TINY = {"mmdet": {"config_file": "configs/yolox/yolox_tiny_8x8_300e_coco.py"}, "mmyolo": {"model_name": "yolov8_n"}}


def _train_openmmlab(root: Path, image: str) -> Path:
    in_dir, out_dir = root / "in", root / "out"
    out_dir.mkdir(parents=True)
    generate(in_dir, task="training", object_type="detection", fmt="ark", images=8, seed=3)
    code = run_task(image, in_dir, out_dir, {**TINY[image], "max_epochs": 1, "img_size": 96, "samples_per_gpu": 4,
                                             "workers_per_gpu": 0})
    assert code == 0, (out_dir / "monitor.txt").read_text()
    return out_dir / "models" / "best"


@pytest.fixture(scope="session")
def mmdet_model(tmp_path_factory) -> Path:
    return _train_openmmlab(tmp_path_factory.mktemp("mmdet-model"), "mmdet")


@pytest.fixture(scope="session")
def mmyolo_model(tmp_path_factory) -> Path:
    return _train_openmmlab(tmp_path_factory.mktemp("mmyolo-model"), "mmyolo")


@pytest.fixture(autouse=True)
def _fuzz_watchdog(request):
    """A fuzzed-parser test not finished after this long is stuck where a Python signal cannot
    reach (a C loop): dump every thread's stack and end the process rather than hang CI."""
    if "fuzz" not in Path(str(request.node.path)).parent.parts:
        yield
        return
    faulthandler.dump_traceback_later(3600 if os.environ.get("YMIR_FUZZ_PROFILE") == "fuzz" else 300,
                                      exit=True, file=sys.stderr)
    yield
    faulthandler.cancel_dump_traceback_later()
