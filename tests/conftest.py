"""Shared fixtures: sample /in folders from the base's generator and a tiny YOLOv5 checkpoint."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

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
    from ymir_yolov5 import models, runtime

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
