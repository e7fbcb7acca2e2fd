"""``load_weights_only`` names the file and says what is wrong the same way whatever bytes a
non-zip file holds: torch reads such a file as its legacy pickle format, where random bytes fail
with whichever error the unpickler meets first (UnpicklingError, IndexError, EOFError, ...)."""

from __future__ import annotations

import random

import pytest
import torch

from ymir_base.checkpoints import load_weights_only
from ymir_base.errors import ModelError


@pytest.mark.parametrize("seed", range(40))
def test_any_non_zip_bytes_are_reported_as_not_a_pytorch_file(tmp_path, seed):
    path = tmp_path / "best.pth"
    path.write_bytes(random.Random(seed).randbytes(4096))
    with pytest.raises(ModelError, match=r"best\.pth is not a weights file: not a zip-format PyTorch file"):
        load_weights_only(path)


def test_a_truncated_zip_checkpoint_cannot_be_read_and_a_whole_one_loads(tmp_path):
    path = tmp_path / "w.pth"
    torch.save({"w": torch.zeros(64, 64)}, path)
    assert load_weights_only(path)["w"].shape == (64, 64)
    whole = path.read_bytes()
    path.write_bytes(whole[: len(whole) // 2])
    with pytest.raises(ModelError, match=r"cannot read .*w\.pth as a weights file"):
        load_weights_only(path)
