"""YOLOv5 ``.pt`` files pickle whole models, so they are checked from their pickle opcodes before
anything unpickles them. A file that would run code is refused before any of it runs: each payload
here would create a marker file, and the marker never appears. Controls load the same files the
way yolov5 does (in a subprocess) and show that the payloads are live."""

from __future__ import annotations

import io
import os
import pickle
import re
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import torch

from conftest import kill_after_stage, read_monitor
from ymir_base.checkpoints import check_pickle_globals
from ymir_base.engine.task import run_task
from ymir_base.errors import ErrorCode, ModelError
from ymir_yolov5lib import trust

FAST = {"model": "yolov5n", "epochs": 1, "img_size": 64, "batch_size_per_gpu": 4, "num_workers_per_gpu": 0}


class _Call:
    """Pickles as a call of ``fn(*args)``: what a malicious checkpoint puts in place of a model."""

    def __init__(self, fn, *args):
        self.fn, self.args = fn, args

    def __reduce__(self):
        return self.fn, self.args


def _touch(marker: Path) -> str:
    return f"__import__('pathlib').Path({str(marker)!r}).touch() or Conv"


def _evil_architecture(marker: Path) -> dict:
    """A model.yaml whose first module name yolov5's parse_model evaluates into a file write."""
    return {"nc": 3, "depth_multiple": 0.33, "width_multiple": 0.25, "anchors": 3,
            "backbone": [[-1, 1, _touch(marker), [16, 3, 2]]], "head": [[-1, 1, "Detect", ["nc", "anchors"]]]}


def _zip_pickle(path: Path, data: bytes) -> Path:
    """A zip-format torch file around raw pickle bytes."""
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("archive/data.pkl", data)
        archive.writestr("archive/version", "3\n")
    return path


def evil_checkpoint(kind: str, path: Path, marker: Path) -> Path:
    from yolov5.models.yolo import DetectionModel

    if kind == "os.system":
        torch.save({"model": _Call(os.system, f"touch {marker}"), "epoch": -1}, path)
    elif kind == "builtins.exec":
        torch.save({"model": _Call(exec, f"open({str(marker)!r}, 'w').close()")}, path)
    elif kind == "protocol-4":  # STACK_GLOBAL takes the global's name from the stack
        torch.save({"model": _Call(os.system, f"touch {marker}")}, path, pickle_protocol=4)
    elif kind == "allowed-class-called":  # a YOLOv5 class, but called with a crafted architecture
        torch.save({"model": _Call(DetectionModel, _evil_architecture(marker))}, path)
    elif kind == "getattr":  # getattr is allowed only for Detect.forward (the Segment head keeps it)
        torch.save({"model": _Call(getattr, DetectionModel, "__init__")}, path)
    elif kind == "class-state":  # BUILD on a class: would replace Conv.forward for every model
        buffer = io.BytesIO()
        buffer.write(b"\x80\x02cyolov5.models.common\nConv\n}X\x07\x00\x00\x00forwardNsb.")
        _zip_pickle(path, buffer.getvalue())
    else:
        raise ValueError(kind)
    return path


KINDS = ["os.system", "builtins.exec", "protocol-4", "allowed-class-called", "getattr", "class-state"]
REASONS = {"os.system": "names the global posix.system", "builtins.exec": "names the global __builtin__.exec",
           "protocol-4": "names the global posix.system",
           "allowed-class-called": "calls yolov5.models.yolo.DetectionModel",
           "getattr": "fetches the attribute yolov5.models.yolo.DetectionModel.__init__",
           "class-state": "sets the state of yolov5.models.common.Conv"}


def _full_load_in_subprocess(path: Path) -> None:
    """Load ``path`` the way yolov5 does (a full unpickling), ignoring whatever fails after."""
    code = ("import sys, torch; from ymir_yolov5lib import runtime; runtime.prepare()\n"
            "try: torch.load(sys.argv[1], map_location='cpu', weights_only=False)\n"
            "except Exception: pass\n")
    subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, timeout=120, check=True)


@pytest.mark.parametrize("kind", KINDS)
def test_a_malicious_checkpoint_is_refused_before_it_runs(tmp_path, kind):
    marker = tmp_path / "pwned"
    path = evil_checkpoint(kind, tmp_path / "best.pt", marker)
    with pytest.raises(ModelError, match=rf"best\.pt is not a YOLOv5 model: it {REASONS[kind]}.*refusing"):
        trust.check_checkpoint(path)
    assert not marker.exists()
    if kind not in ("class-state", "getattr"):  # the control: a full load runs the payload
        _full_load_in_subprocess(path)
        assert marker.exists(), f"the {kind} payload is not live: the test proves nothing"


def test_infer_with_a_malicious_model_fails_before_it_runs(sample, tmp_path):
    marker = tmp_path / "pwned"
    folder = tmp_path / "package" / "best"
    folder.mkdir(parents=True)
    evil_checkpoint("os.system", folder / "best.pt", marker)
    in_dir, out_dir = sample("mining+infer", models={"best": folder})
    code = run_task("yolov5", in_dir, out_dir, {"mining_algorithm": "entropy"})
    state, written, text = read_monitor(out_dir)
    assert code != 0 and (state, written) == (4, int(ErrorCode.MODEL)), text
    assert "best.pt is not a YOLOv5 model: it names the global posix.system" in text.splitlines()[0]
    assert not marker.exists()
    assert not (out_dir / "infer-result.json").exists() and not (out_dir / "result.tsv").exists()


def test_training_from_a_model_whose_architecture_would_run_code(sample, yolov5n_checkpoint, tmp_path):
    """The pickle is clean, but the trainer builds the model from its model.yaml, whose strings
    yolov5 evaluates: refused before training starts."""
    marker = tmp_path / "pwned"
    ckpt = torch.load(yolov5n_checkpoint, map_location="cpu", weights_only=False)
    ckpt["model"].yaml = _evil_architecture(marker)
    folder = tmp_path / "package" / "best"
    folder.mkdir(parents=True)
    torch.save(ckpt, folder / "best.pt")
    trust.check_checkpoint(folder / "best.pt")  # only names what a model needs
    in_dir, out_dir = sample("training", models={"best": folder})
    code = run_task("yolov5", in_dir, out_dir, {**FAST, "pretrained_model_params": ["/in/models/best/best.pt"]})
    state, written, text = read_monitor(out_dir)
    assert code != 0 and (state, written) == (4, int(ErrorCode.MODEL)), text
    assert "is not a torch.nn.Module class; yolov5 would evaluate and call it" in text.splitlines()[0]
    assert not marker.exists()
    assert not (out_dir / "models" / "result.yaml").exists()
    # the control: yolov5 builds that architecture by evaluating its strings
    from yolov5.models.yolo import DetectionModel

    with pytest.raises(Exception):  # noqa: B017  (the layer is no real module; the write happened first)
        DetectionModel(_evil_architecture(marker))
    assert marker.exists()


def test_a_yolov5_seg_checkpoint_passes(tmp_path):
    """Its Segment head keeps Detect.forward, pickled as getattr(Detect, "forward")."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "yolov5seg"))
    try:
        from seglayer import seg_checkpoint
    finally:
        sys.path.pop(0)
    assert "__builtin__.getattr" in check_pickle_globals(seg_checkpoint(tmp_path / "best"), trust.ALLOWED,
                                                                "a YOLOv5 model")


def test_legacy_and_foreign_files_are_refused(tmp_path, yolov5n_checkpoint):
    ckpt = torch.load(yolov5n_checkpoint, map_location="cpu", weights_only=False)
    torch.save(ckpt, tmp_path / "legacy.pt", _use_new_zipfile_serialization=False)
    with pytest.raises(ModelError, match="not a complete zip-format PyTorch checkpoint"):
        trust.check_checkpoint(tmp_path / "legacy.pt")
    _zip_pickle(tmp_path / "two.pt", pickle.dumps({}, protocol=2))
    with zipfile.ZipFile(tmp_path / "two.pt", "a") as archive:
        archive.writestr("other/data.pkl", pickle.dumps({}, protocol=2))
    with pytest.raises(ModelError, match=r"no single <name>/data\.pkl"):
        trust.check_checkpoint(tmp_path / "two.pt")


def test_architecture_check_accepts_every_model_of_the_package():
    import yaml

    from ymir_yolov5lib.models import PACKAGE_DIR

    files = sorted((PACKAGE_DIR / "models").rglob("*.yaml"))
    assert len(files) > 10
    for path in files:
        spec = yaml.safe_load(path.read_text())
        if "backbone" in spec:
            trust.check_architecture({**spec, "activation": "nn.LeakyReLU(0.1)"}, path)


@pytest.mark.parametrize(("layer", "activation", "reason"), [
    ([-1, 1, "exec", ["open('x', 'w')"]], None, "names the module 'exec'"),
    ([-1, 1, "os.system", ["touch x"]], None, "names the module 'os.system'"),
    ([-1, 1, "check_yaml", ["x"]], None, "names the module 'check_yaml'"),
    ([-1, 1, "Conv", ["exec", 3]], None, "argument 'exec'"),
    ([-1, 1, "Conv", ["__import__('os')", 3]], None, "argument"),
    ([-1, 1, "Conv", [16, 3]], "nn.SiLU(__import__('os'))", "activation"),
    ([-1, 1, "Conv", [16, 3]], "os.system('x')", "activation"),
    ([-1, 1, "Conv", [16, 3]], "nn.init.normal_()", "activation"),
])
def test_architecture_check_refuses_what_would_run(layer, activation, reason):
    spec = {"nc": 3, "depth_multiple": 1.0, "width_multiple": 1.0, "anchors": 3, "backbone": [layer],
            "head": [[-1, 1, "nn.Upsample", [None, 2, "nearest"]]], "activation": activation}
    with pytest.raises(ModelError, match=re.escape(reason)):
        trust.check_architecture(spec, Path("m.pt"))


@pytest.mark.slow
def test_checkpoints_our_training_saves_pass_and_load(sample, tmp_path):
    """A run of two epochs, killed right after its first stage: the stage's weights and the
    trainer's mid-run checkpoint (optimizer, EMA, options) pass, and the resumed run finishes."""
    in_dir, out_dir = sample("training")
    cmd = [sys.executable, "-m", "ymir_base.cli", "run", "yolov5", "--in", str(in_dir), "--out", str(out_dir),
           *[f"--set={k}={v}" for k, v in {**FAST, "epochs": 2, "save_best_only": False, "save_period": 1}.items()]]
    kill_after_stage(cmd, "epoch_1")
    last = out_dir / "work" / "yolov5" / "train" / "weights" / "last.pt"
    trust.check_checkpoint(last)
    trust.check_checkpoint(out_dir / "models" / "epoch_1" / "epoch_1.pt")
    rerun = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert rerun.returncode == 0 and "resuming the killed run of this task" in rerun.stdout
    trust.check_checkpoint(out_dir / "models" / "best.pt")
    infer_in, infer_out = sample("infer", models={"best": out_dir / "models" / "best"})
    assert run_task("yolov5", infer_in, infer_out, {"img_size": 64}) == 0
