"""Regression (kill harness, issue 15): yolov5's trainer rewrote last.pt in place, so a kill during
the save left no checkpoint and the rerun trained from the start. Under atomic_torch_saves a kill
in the middle of torch.save leaves the previous checkpoint whole."""

from __future__ import annotations

import signal
import subprocess
import sys

import pytest
import torch

CHILD = """
import os, signal, sys, torch
from ymir_yolov5lib.atomic_save import atomic_torch_saves

class KilledWhileSaving:  # pickled by torch.save after it opened the target: SIGKILL right there
    def __reduce__(self):
        os.kill(os.getpid(), signal.SIGKILL)

path = sys.argv[1]
save = {"atomic": atomic_torch_saves, "plain": __import__("contextlib").nullcontext}[sys.argv[2]]
with save():
    torch.save({"epoch": 2, "model": torch.ones(1000), "bomb": KilledWhileSaving()}, path)
"""


@pytest.mark.parametrize("mode", ["atomic", "plain"])
def test_a_kill_during_the_save_keeps_the_previous_checkpoint(tmp_path, mode):
    last = tmp_path / "last.pt"
    torch.save({"epoch": 1, "model": torch.zeros(1000)}, last)
    proc = subprocess.run([sys.executable, "-c", CHILD, str(last), mode], capture_output=True, timeout=120)
    assert proc.returncode == -signal.SIGKILL, proc.stderr.decode()[-2000:]
    if mode == "plain":  # what yolov5 does on its own: the file is cut short
        with pytest.raises((RuntimeError, EOFError)):
            torch.load(last, weights_only=True)
        return
    assert torch.load(last, weights_only=True)["epoch"] == 1


def test_saves_replace_the_target_and_leave_no_temporary_file(tmp_path):
    from ymir_yolov5lib.atomic_save import atomic_torch_saves

    original = torch.save
    with atomic_torch_saves():
        assert torch.save is not original
        torch.save({"epoch": 3}, tmp_path / "last.pt")
        torch.save({"epoch": 4}, str(tmp_path / "last.pt"))
    assert torch.save is original
    assert torch.load(tmp_path / "last.pt", weights_only=True) == {"epoch": 4}
    assert [p.name for p in tmp_path.iterdir()] == ["last.pt"]
