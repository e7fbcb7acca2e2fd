"""OpenMMLab checkpoints from /in load with ``weights_only=True`` only. MMEngine's own loader falls
back to a full unpickling when torch refuses a file: the control below shows that it runs the
payload; ours refuses the file and nothing runs."""

from __future__ import annotations

import os
import subprocess
import sys
from collections import OrderedDict
from pathlib import Path

import pytest
import torch

from conftest import read_monitor
from ymir_base.engine.task import run_task
from ymir_base.errors import ErrorCode, ModelError
from ymir_openmmlab import checkpoint


class _Call:
    def __init__(self, fn, *args):
        self.fn, self.args = fn, args

    def __reduce__(self):
        return self.fn, self.args


def evil_pth(path: Path, marker: Path) -> Path:
    torch.save({"meta": {"epoch": 1}, "state_dict": OrderedDict(w=torch.zeros(2)),
                "message_hub": _Call(os.system, f"touch {marker}")}, path)
    return path


def test_a_malicious_checkpoint_is_refused_and_nothing_runs(tmp_path):
    marker = tmp_path / "pwned"
    path = evil_pth(tmp_path / "best.pth", marker)
    with pytest.raises(ModelError, match=r"best\.pth is not an OpenMMLab checkpoint that can be loaded safely"):
        checkpoint.load(path)
    assert not marker.exists()
    # the control: MMEngine's loader, refused by weights_only, unpickles the file in full
    code = "import sys; from mmengine.runner.checkpoint import _load_checkpoint; _load_checkpoint(sys.argv[1])"
    subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, timeout=120, check=True)
    assert marker.exists()


def test_plain_weights_load(tmp_path):
    torch.save({"meta": {"dataset_meta": {"classes": ("a",)}}, "state_dict": OrderedDict(w=torch.ones(3))},
               tmp_path / "ok.pth")
    ckpt = checkpoint.load(tmp_path / "ok.pth")
    assert torch.equal(ckpt["state_dict"]["w"], torch.ones(3))
    torch.save([1, 2], tmp_path / "list.pth")
    with pytest.raises(ModelError, match="holds a list, not a dict"):
        checkpoint.load(tmp_path / "list.pth")


def test_training_from_a_malicious_pretrained_model(sample, tmp_path):
    marker = tmp_path / "pwned"
    folder = tmp_path / "package" / "best"
    folder.mkdir(parents=True)
    evil_pth(folder / "best.pth", marker)
    in_dir, out_dir = sample("training", models={"best": folder})
    code = run_task("mmdet", in_dir, out_dir, {"config_file": "configs/yolox/yolox_tiny_8x8_300e_coco.py",
                                               "max_epochs": 1, "img_size": 96, "samples_per_gpu": 4,
                                               "workers_per_gpu": 0})
    state, written, text = read_monitor(out_dir)
    assert code != 0 and (state, written) == (4, int(ErrorCode.MODEL)), text
    assert "best.pth is not an OpenMMLab checkpoint that can be loaded safely" in text.splitlines()[0]
    assert "posix.system" in text.splitlines()[0]
    assert not marker.exists()
    assert not (out_dir / "models" / "result.yaml").exists()


@pytest.mark.slow
def test_infer_with_a_malicious_model_package(sample, mmdet_model, tmp_path):
    marker = tmp_path / "pwned"
    folder = tmp_path / "package" / "best"
    folder.mkdir(parents=True)
    evil_pth(folder / "best.pth", marker)
    (folder / "config.py").write_bytes((mmdet_model / "config.py").read_bytes())
    in_dir, out_dir = sample("infer", models={"best": folder})
    code = run_task("mmdet", in_dir, out_dir, {"img_size": 96})
    state, written, text = read_monitor(out_dir)
    assert code != 0 and (state, written) == (4, int(ErrorCode.MODEL)), text
    assert not marker.exists()
    assert not (out_dir / "infer-result.json").exists()
