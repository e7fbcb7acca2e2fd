"""/dev/shm too small for the data loader workers: fewer workers (or none), and a warning that
says so, instead of a worker's bus error in the middle of an epoch."""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml

from ymir_base.engine import shm


def fake_statvfs(free: int):
    return lambda _path: SimpleNamespace(f_bavail=free // 4096, f_frsize=4096, f_blocks=free // 4096)


def test_enough_shared_memory_keeps_every_worker(caplog):
    with caplog.at_level(logging.WARNING):
        assert shm.loader_workers(4, 10 * 2**20, statvfs=fake_statvfs(64 * 2**30)) == 4
    assert caplog.text == ""


def test_too_little_for_all_gives_as_many_as_fit(caplog):
    # 1.5 x 10 MiB per worker, 40 MiB free: two fit
    with caplog.at_level(logging.WARNING):
        assert shm.loader_workers(4, 10 * 2**20, statvfs=fake_statvfs(40 * 2**20)) == 2
    assert "using 2 worker(s) instead of 4" in caplog.text and "--shm-size" in caplog.text


def test_far_too_little_loads_in_the_training_process(caplog):
    with caplog.at_level(logging.WARNING):
        assert shm.loader_workers(2, 10 * 2**20, statvfs=fake_statvfs(256 * 1024)) == 0
    assert "using 0 worker(s) instead of 2 (loading in the training process)" in caplog.text


def test_the_gpus_training_processes_share_it():
    assert shm.loader_workers(4, 10 * 2**20, processes=2, statvfs=fake_statvfs(64 * 2**20)) == 2


def test_no_workers_asked_and_no_dev_shm():
    assert shm.loader_workers(0, 1, statvfs=fake_statvfs(0)) == 0

    def missing(_path):
        raise FileNotFoundError(2, "No such file or directory")

    assert shm.loader_workers(3, 10**9, statvfs=missing) == 3


def test_yolov5_sizes_its_workers_by_training_and_validation_batches(monkeypatch):
    from ymir_yolov5lib import train

    batch = 4 * 3 * 128 * 128
    per_worker = 1.5 * 2 * batch * 5  # training batches + validation's (twice the workers, twice the batch)
    monkeypatch.setattr(os, "statvfs", fake_statvfs(int(per_worker * 3 + 4096)))
    cfg = {"batch_size_per_gpu": 4, "img_size": 128, "num_workers_per_gpu": 8}
    assert train._workers(cfg, 1) == 3
    assert train._workers(cfg, 3) == 1


@pytest.mark.slow
def test_training_with_a_tiny_dev_shm_finishes(tmp_path):
    """A real run in a private mount namespace whose /dev/shm holds 256 KiB: two workers at 128 px
    die of a bus error there without the fallback (checked by hand on this machine)."""
    if not shutil.which("unshare"):
        pytest.skip("no unshare(1)")
    probe = subprocess.run(["unshare", "--mount", "--propagation", "private", "sh", "-c",
                            "mount -t tmpfs -o size=256k tmpfs /dev/shm"], capture_output=True, timeout=60)
    if probe.returncode != 0:
        pytest.skip(f"cannot mount a private /dev/shm: {probe.stderr.decode(errors='replace').strip()}")
    from ymir_base.sample.generator import generate

    in_dir, out_dir = tmp_path / "in", tmp_path / "out"
    generate(in_dir, task="training", object_type="detection", fmt="ark", images=8)
    run = [sys.executable, "-m", "ymir_base.cli", "run", "yolov5", "--in", str(in_dir), "--out", str(out_dir),
           *[f"--set={k}={v}" for k, v in {"model": "yolov5n", "epochs": 1, "img_size": 128, "batch_size_per_gpu": 4,
                                           "num_workers_per_gpu": 2}.items()]]
    script = "mount -t tmpfs -o size=256k tmpfs /dev/shm && exec \"$@\""
    proc = subprocess.run(["unshare", "--mount", "--propagation", "private", "sh", "-c", script, "sh", *run],
                          capture_output=True, text=True, timeout=600, cwd=Path(__file__).resolve().parents[2])
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "using 0 worker(s) instead of 2" in proc.stdout
    assert yaml.safe_load((out_dir / "models" / "result.yaml").read_text())["model_stages"]
