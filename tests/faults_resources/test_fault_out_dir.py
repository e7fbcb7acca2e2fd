"""/out not writable, /out full: a clear message, YMIR's container code in monitor.txt where the
platform's monitor.txt can still be written, a non-zero exit, and no half-written result file.

The real-folder cases mount a small tmpfs (root only); they skip themselves where that is not
possible.
"""

from __future__ import annotations

import errno
import json
import os
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml

from conftest import read_monitor
from ymir_base.engine import outspace
from ymir_base.engine.task import run_task
from ymir_base.errors import ErrorCode
from ymir_base.monitor import Monitor

FAST = {"model": "yolov5n", "epochs": 1, "img_size": 64, "batch_size_per_gpu": 4, "num_workers_per_gpu": 0}
RESULTS = ("models/result.yaml", "infer-result.json", "result.tsv")


def _mount(*args: str) -> None:
    subprocess.run(["mount", *args], check=True, capture_output=True, timeout=30)


@contextmanager
def tmpfs(folder: Path, size: str) -> Iterator[Path]:
    """A tmpfs of ``size`` on ``folder``; skips the test where it cannot be mounted."""
    folder.mkdir(parents=True, exist_ok=True)
    try:
        _mount("-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder))
    except (OSError, subprocess.CalledProcessError) as exc:
        pytest.skip(f"cannot mount a tmpfs here: {exc}")
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], capture_output=True, timeout=30)


def assert_no_half_results(out_dir: Path) -> None:
    """Any result file present is complete; result.yaml lists only files that exist."""
    assert not list(out_dir.rglob("*.tmp")), list(out_dir.rglob("*.tmp"))
    assert not (out_dir / outspace.RESERVE_NAME).exists()
    if (out_dir / "infer-result.json").exists():
        json.loads((out_dir / "infer-result.json").read_text())
    result = out_dir / "models" / "result.yaml"
    if result.exists():
        data = yaml.safe_load(result.read_text())
        for name, stage in data["model_stages"].items():
            for f in stage["files"]:
                assert (out_dir / "models" / name / f).is_file() or (out_dir / "models" / f).is_file()


# ---- /out not writable ------------------------------------------------------------------------
@contextmanager
def read_only_out(out_dir: Path, platform_monitor: bool) -> Iterator[None]:
    """``out_dir`` read-only; with ``platform_monitor``, a monitor.txt in it that stays writable,
    as YMIR creates it before the task. Non-root: permissions; root: read-only bind mounts."""
    monitor = out_dir / "monitor.txt"
    if platform_monitor:
        monitor.write_text("t\t0\t0\t1\t0\n")
        monitor.chmod(0o666)
    if os.geteuid() != 0:
        out_dir.chmod(0o555)
        try:
            yield
        finally:
            out_dir.chmod(0o755)
        return
    mounted: list[Path] = []
    try:
        _mount("--bind", str(out_dir), str(out_dir))
        mounted.append(out_dir)
        _mount("-o", "remount,bind,ro", str(out_dir))
        if platform_monitor:
            writable = out_dir.parent / "platform-monitor.txt"
            writable.write_text(monitor.read_text())
            _mount("--bind", str(writable), str(monitor))
            mounted.append(monitor)
    except (OSError, subprocess.CalledProcessError) as exc:
        for path in reversed(mounted):
            subprocess.run(["umount", "-l", str(path)], capture_output=True, timeout=30)
        pytest.skip(f"cannot make a read-only bind mount here: {exc}")
    try:
        yield
    finally:
        for path in reversed(mounted):
            subprocess.run(["umount", "-l", str(path)], capture_output=True, timeout=30)


def test_out_not_writable_is_reported_in_the_platform_monitor(sample, capsys):
    in_dir, out_dir = sample("training")
    with read_only_out(out_dir, platform_monitor=True):
        code = run_task("yolov5", in_dir, out_dir, FAST)
        state, written, text = read_monitor(out_dir)
    assert code != 0
    assert (state, written) == (4, int(ErrorCode.CONTAINER)), text
    assert "output folder /out" in text and "not writable" in text
    assert "not writable" in capsys.readouterr().out
    for name in RESULTS:
        assert not (out_dir / name).exists()
    assert_no_half_results(out_dir)


def test_out_not_writable_at_all_fails_with_a_message(sample, capsys):
    in_dir, out_dir = sample("training")
    with read_only_out(out_dir, platform_monitor=False):
        code = run_task("yolov5", in_dir, out_dir, FAST)
    assert code != 0
    assert not (out_dir / "monitor.txt").exists()  # nowhere to write it: YMIR then reports 160004
    assert f"the output folder /out ({out_dir}) is not writable" in capsys.readouterr().out
    assert list(out_dir.iterdir()) == []


# ---- /out full -------------------------------------------------------------------------------
@pytest.mark.slow
def test_out_full_during_training(sample, tmp_path):
    in_dir, _ = sample("training")
    with tmpfs(tmp_path / "small-out", "3m") as out_dir:
        code = run_task("yolov5", in_dir, out_dir, FAST)  # the first checkpoint does not fit
        state, written, text = read_monitor(out_dir)
        assert code != 0
        assert (state, written) == (4, int(ErrorCode.CONTAINER)), text
        assert "the output folder /out is full" in text.splitlines()[0], text
        assert not (out_dir / "models" / "result.yaml").exists()
        assert_no_half_results(out_dir)


def test_out_full_when_writing_the_infer_result(sample, yolov5n_checkpoint, tmp_path):
    in_dir, _ = sample("infer", models={"best": yolov5n_checkpoint.parent}, images=12)
    with tmpfs(tmp_path / "small-out", "2m") as out_dir:
        stat = os.statvfs(out_dir)
        filler = stat.f_bavail * stat.f_frsize - outspace.RESERVE_BYTES - 8192
        (out_dir / "filler").write_bytes(b"\0" * filler)
        # a random model at the lowest threshold: hundreds of boxes per image, far more than 8 KB
        code = run_task("yolov5", in_dir, out_dir, {"img_size": 64, "conf_thres": 0.0001})
        state, written, text = read_monitor(out_dir)
        assert code != 0
        assert (state, written) == (4, int(ErrorCode.CONTAINER)), text
        assert "the output folder /out is full" in text and "No space left on device" in text
        assert not (out_dir / "infer-result.json").exists()
        assert_no_half_results(out_dir)


# ---- the decisions, without a real folder --------------------------------------------------------
def _statvfs(free: int, total: int = 10 * 2**30):
    return lambda _path: SimpleNamespace(f_bavail=free // 4096, f_frsize=4096, f_blocks=total // 4096)


def test_a_full_disk_is_named_whatever_library_failed():
    enospc = OSError(errno.ENOSPC, "No space left on device")
    try:
        try:
            raise enospc
        except OSError as inner:
            raise RuntimeError("PytorchStreamWriter failed writing file data/3: file write failed") from inner
    except RuntimeError as exc:
        wrapped = exc
    # an ENOSPC anywhere in the chain: /out is full even with space left now (a big write failed)
    message = outspace.full_message(wrapped, Path("/out"), "RuntimeError: ...", statvfs=_statvfs(5 * 2**20))
    assert message and message.startswith("the output folder /out is full (5.0 MiB free")
    # no errno, nearly no space: only an error without its own code is blamed on the disk
    plain = RuntimeError("file write failed")
    assert outspace.full_message(plain, Path("/out"), "x", statvfs=_statvfs(4096))
    assert outspace.full_message(plain, Path("/out"), "x", coded=True, statvfs=_statvfs(4096)) is None
    assert outspace.full_message(plain, Path("/out"), "x", statvfs=_statvfs(2 * 2**20)) is None


def test_the_reserve_makes_room_and_goes(tmp_path):
    reserve = outspace.SpaceReserve(tmp_path)
    reserve.take()
    assert (tmp_path / outspace.RESERVE_NAME).stat().st_size == outspace.RESERVE_BYTES
    reserve.release()
    assert not (tmp_path / outspace.RESERVE_NAME).exists()


def test_monitor_overwrites_the_platform_file_in_place_when_it_cannot_rename(tmp_path, monkeypatch):
    from ymir_base import monitor as monitor_module

    def no_rename(path, text):
        raise PermissionError(errno.EACCES, "Permission denied")

    monkeypatch.setattr(monitor_module, "write_text_atomic", no_rename)
    path = tmp_path / "monitor.txt"
    Monitor(path, "t1").error(160004, "boom")
    assert not path.exists()  # no file of the platform's: nothing is created in a read-only folder
    path.write_text("t1\t0\t0\t1\t0\n" + "old line\n" * 50)
    Monitor(path, "t1").error(160004, "boom")
    lines = path.read_text().splitlines()
    assert lines[0].split("\t")[3:] == ["4", "160004", "boom"] and len(lines) == 1
