"""A truncated or wrong model file for infer: YOLOv5 ``.pt`` and OpenMMLab ``.pth`` cut short, random
bytes, and a model of the other kind. Each is a 300004 naming the file, a non-zero exit, and no
result file."""

from __future__ import annotations

import random
import shutil
from collections import OrderedDict
from pathlib import Path

import pytest
import torch

from conftest import read_monitor
from ymir_base.engine.task import run_task
from ymir_base.errors import ErrorCode

# seeded: the messages depend on the bytes (a file starting with PK is read as a zip)
RANDOM_BYTES = random.Random(0).randbytes(4096)


def _model_package(tmp_path: Path, name: str, content: bytes, config: Path | None = None) -> Path:
    folder = tmp_path / "packages" / name / "best"
    folder.mkdir(parents=True)
    (folder / name).write_bytes(content)
    if config is not None:
        shutil.copyfile(config, folder / "config.py")
    return folder


def _openmmlab_like_checkpoint(path: Path) -> bytes:
    """What MMEngine saves: meta and a state dict of tensors, no pickled model."""
    torch.manual_seed(0)
    torch.save({"meta": {"epoch": 1, "dataset_meta": {"classes": ("circle", "square", "triangle")}},
                "state_dict": OrderedDict(("backbone.conv.weight", torch.randn(8, 3, 3, 3)) for _ in range(1))}, path)
    return path.read_bytes()


def _assert_model_error(code: int, out_dir: Path, *fragments: str) -> None:
    state, written, text = read_monitor(out_dir)
    assert code != 0
    assert (state, written) == (4, int(ErrorCode.MODEL)), text
    for fragment in fragments:
        assert fragment in text.splitlines()[0], text
    for name in ("infer-result.json", "result.tsv"):
        assert not (out_dir / name).exists()


def _yolov5_cases(checkpoint: Path, tmp_path: Path) -> dict[str, tuple[bytes, str]]:
    good = checkpoint.read_bytes()
    return {
        "truncated": (good[: len(good) // 2], "not a complete zip-format PyTorch checkpoint"),
        "random": (RANDOM_BYTES, "not a complete zip-format PyTorch checkpoint"),
        "openmmlab": (_openmmlab_like_checkpoint(tmp_path / "mm.pth"), "holds no YOLOv5 model"),
    }


@pytest.mark.parametrize("case", ["truncated", "random", "openmmlab"])
def test_yolov5_infer_with_a_bad_model_file(sample, yolov5n_checkpoint, tmp_path, case):
    content, message = _yolov5_cases(yolov5n_checkpoint, tmp_path)[case]
    folder = _model_package(tmp_path, "best.pt", content)
    in_dir, out_dir = sample("mining+infer", models={"best": folder})
    code = run_task("yolov5", in_dir, out_dir, {"mining_algorithm": "entropy", "img_size": 64})
    _assert_model_error(code, out_dir, "best.pt", message)


@pytest.mark.slow
@pytest.mark.parametrize("case", ["truncated", "random", "yolov5"])
def test_openmmlab_infer_with_a_bad_model_file(sample, mmdet_model, yolov5n_checkpoint, tmp_path, case):
    good = (mmdet_model / "best.pth").read_bytes()
    content, message = {
        "truncated": (good[: len(good) // 2], "cannot read"),
        "random": (RANDOM_BYTES, "not a zip-format PyTorch file"),
        "yolov5": (yolov5n_checkpoint.read_bytes(), "not an OpenMMLab checkpoint that can be loaded safely"),
    }[case]
    folder = _model_package(tmp_path, "best.pth", content, config=mmdet_model / "config.py")
    in_dir, out_dir = sample("infer", models={"best": folder})
    code = run_task("mmdet", in_dir, out_dir, {"img_size": 96})
    _assert_model_error(code, out_dir, "best.pth", message)
    if case == "yolov5":  # the reason is torch's, not its advice to load the file in full
        assert "yolov5.models.yolo.DetectionModel" in read_monitor(out_dir)[2].splitlines()[0]


@pytest.mark.slow
def test_openmmlab_model_package_still_loads(sample, mmdet_model):
    in_dir, out_dir = sample("infer", models={"best": mmdet_model})
    assert run_task("mmdet", in_dir, out_dir, {"img_size": 96}) == 0, read_monitor(out_dir)[2]
    assert (out_dir / "infer-result.json").is_file()


@pytest.mark.parametrize("case", ["truncated", "random", "openmmlab"])
def test_yolov5_training_from_a_bad_pretrained_model(sample, yolov5n_checkpoint, tmp_path, case):
    content, _ = _yolov5_cases(yolov5n_checkpoint, tmp_path)[case]
    folder = _model_package(tmp_path, "best.pt", content)
    in_dir, out_dir = sample("training", models={"best": folder})
    code = run_task("yolov5", in_dir, out_dir, {"model": "yolov5n", "epochs": 1, "img_size": 64,
                                                "batch_size_per_gpu": 4, "num_workers_per_gpu": 0})
    _assert_model_error(code, out_dir, "best.pt")
    assert not (out_dir / "models" / "result.yaml").exists()


@pytest.mark.parametrize("case", ["truncated", "random", "yolov5"])
def test_openmmlab_training_from_a_bad_pretrained_model(sample, yolov5n_checkpoint, tmp_path, case):
    torch.manual_seed(0)
    torch.save({"state_dict": OrderedDict(w=torch.randn(64, 64))}, tmp_path / "plain.pth")
    plain = (tmp_path / "plain.pth").read_bytes()
    content = {"truncated": plain[: len(plain) // 2], "random": RANDOM_BYTES,
               "yolov5": yolov5n_checkpoint.read_bytes()}[case]
    folder = _model_package(tmp_path, "best.pth", content)
    in_dir, out_dir = sample("training", models={"best": folder})
    code = run_task("mmdet", in_dir, out_dir, {"config_file": "configs/yolox/yolox_tiny_8x8_300e_coco.py",
                                               "max_epochs": 1, "img_size": 96, "samples_per_gpu": 4,
                                               "workers_per_gpu": 0})
    _assert_model_error(code, out_dir, "best.pth")
    assert not (out_dir / "models" / "result.yaml").exists()
