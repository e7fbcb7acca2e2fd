"""How much of the CPU a task uses: torch threads capped at the CPUs a container may use (its
affinity and cgroup quota), and at most CPU_FORWARD_BATCH images per forward pass on a CPU."""

from __future__ import annotations

import os

import pytest
import torch

from ymir_base.engine.device import CPU_FORWARD_BATCH, forward_batch, limit_threads, usable_cpus

AFFINITY = len(os.sched_getaffinity(0))


def _cgroup(tmp_path, v2: str | None = None, v1: tuple[str, str] | None = None):
    if v2 is not None:
        (tmp_path / "cpu.max").write_text(v2 + "\n")
    if v1 is not None:
        (tmp_path / "cpu").mkdir()
        (tmp_path / "cpu" / "cpu.cfs_quota_us").write_text(v1[0] + "\n")
        (tmp_path / "cpu" / "cpu.cfs_period_us").write_text(v1[1] + "\n")
    return tmp_path


def test_the_forward_batch_is_capped_on_a_cpu_only():
    cpu, gpu = torch.device("cpu"), torch.device("cuda", 0)
    assert forward_batch(16, cpu) == CPU_FORWARD_BATCH == 4
    assert forward_batch(2, cpu) == 2 and forward_batch(16, gpu) == 16


@pytest.mark.parametrize(("v2", "v1", "expected"), [
    ("50000 100000", None, 1),             # docker --cpus 0.5: one thread
    ("max 100000", None, AFFINITY),        # no quota
    (None, ("100000", "100000"), 1),       # cgroup v1: one CPU
    (None, ("-1", "100000"), AFFINITY),    # v1 without a quota
    ("garbage", None, AFFINITY),           # unreadable: the affinity alone
    (None, None, AFFINITY),
])
def test_usable_cpus_reads_the_cgroup_quota(tmp_path, v2, v1, expected):
    assert usable_cpus(_cgroup(tmp_path, v2, v1)) == expected


def test_a_quota_above_the_affinity_does_not_raise_the_count(tmp_path):
    assert usable_cpus(_cgroup(tmp_path, f"{(AFFINITY + 8) * 100000} 100000")) == AFFINITY


def test_torch_threads_are_lowered_to_the_quota_and_never_raised(tmp_path):
    one, unlimited = tmp_path / "one", tmp_path / "unlimited"
    one.mkdir()
    unlimited.mkdir()
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(3)
        assert limit_threads(_cgroup(one, "100000 100000")) == 1 == torch.get_num_threads()
        assert limit_threads(_cgroup(unlimited, "max 100000")) == 1  # never raised
    finally:
        torch.set_num_threads(before)
