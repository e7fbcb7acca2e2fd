"""The trainers' shared pieces: the resume marker, the loss check, the rank tests."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from ymir_base import ranks
from ymir_base.engine.training import EpochJournal, TaskMarker, check_finite_loss
from ymir_base.errors import ErrorCode, NanError


def test_task_marker_tells_this_tasks_run_from_others(tmp_path):
    marker = TaskMarker(tmp_path / "run")
    assert not marker.matches("t1")
    marker.write("t1")  # the folder is created
    assert marker.matches("t1") and not marker.matches("t2")
    finished = TaskMarker(tmp_path / "run", "ymir-finished")
    assert not finished.matches("t1")
    finished.write("t1")
    assert finished.matches("t1")
    finished.clear()
    assert not finished.matches("t1") and marker.matches("t1")


def test_epoch_journal_hands_back_an_evaluated_epoch_until_its_stages_are_written(tmp_path):
    journal = EpochJournal(tmp_path / "run")
    assert journal.pending(1) is None  # nothing recorded
    (tmp_path / "run").mkdir()
    journal.evaluated(1, [0.5, 0.25])
    assert journal.pending(1) == [0.5, 0.25] and journal.pending(2) is None
    journal.staged(1)
    assert journal.pending(1) is None
    journal.evaluated(2, {"mAP": 0.75})  # keeps the staged epoch
    assert journal.pending(2) == {"mAP": 0.75} and journal.pending(1) is None
    journal.path.write_text('{"evaluated": 2, "evalu')  # unreadable: nothing to catch up on
    assert journal.pending(2) is None
    journal.clear()
    assert not journal.path.exists()


@pytest.mark.parametrize("loss", [1.5, torch.tensor(0.3), [torch.tensor(0.1), torch.tensor(0.2)],
                                  torch.tensor([0.1, 0.2]), np.float32(2.0), None])
def test_finite_losses_pass(loss):
    check_finite_loss(loss, 1)


@pytest.mark.parametrize("loss", [math.nan, torch.tensor(math.inf), [torch.tensor(0.1), torch.tensor(math.nan)],
                                  torch.tensor([0.1, math.nan], dtype=torch.float16)])
def test_nan_or_inf_loss_raises_nan_error(loss):
    with pytest.raises(NanError, match=r"iteration 7: .*learning rate \(lr here\)") as info:
        check_finite_loss(loss, 7, "lr here")
    assert info.value.code == ErrorCode.NAN


def test_ranks(monkeypatch):
    for key in ("RANK", "LOCAL_RANK", "WORLD_SIZE"):
        monkeypatch.delenv(key, raising=False)
    assert (ranks.rank(), ranks.world_size(), ranks.is_distributed_child(), ranks.is_rank_zero()) == (0, 1, False, True)
    monkeypatch.setenv("RANK", "1")
    monkeypatch.setenv("LOCAL_RANK", "1")
    monkeypatch.setenv("WORLD_SIZE", "2")
    assert (ranks.rank(), ranks.world_size(), ranks.is_distributed_child(), ranks.is_rank_zero()) == (1, 2, True, False)
    monkeypatch.setenv("RANK", "-1")  # yolov5's "no DDP"
    monkeypatch.setenv("LOCAL_RANK", "-1")
    assert ranks.is_rank_zero()
