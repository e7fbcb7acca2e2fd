"""yolov5-specific options that fail fast with a coded, named error."""

from conftest import edit_yaml, read_monitor
from ymir_base.engine.task import run_task

FAST = {"model": "yolov5n", "epochs": 1, "img_size": 64, "batch_size_per_gpu": 4, "num_workers_per_gpu": 0}


def test_bad_activation_is_a_config_error(sample):
    in_dir, out_dir = sample("training")
    assert run_task("yolov5", in_dir, out_dir, {**FAST, "activate": "Sparkle"}) == 1
    state, code, text = read_monitor(out_dir)
    assert (state, code) == (4, 300001) and "'activate'" in text


def test_bad_args_options_is_a_config_error(sample):
    in_dir, out_dir = sample("training")
    edit_yaml(in_dir / "config.yaml", args_options="--exist-ok --no-such-flag")
    assert run_task("yolov5", in_dir, out_dir, FAST) == 1
    state, code, text = read_monitor(out_dir)
    assert (state, code) == (4, 300001) and "'args_options'" in text


def test_activation_rewrites_the_architecture(sample, tmp_path):
    import yaml

    from ymir_base.engine.registry import image_spec
    from ymir_base.protocol.context import build_context
    from ymir_base.protocol.paths import PathMapper
    from ymir_yolov5lib.train import _architecture

    in_dir, out_dir = sample("training")
    ctx = build_context(image_spec("yolov5"), PathMapper(in_dir, out_dir), overrides={"activate": "nn.ReLU"})
    spec = yaml.safe_load(_architecture(ctx, "yolov5n", None).read_text())
    assert spec["activation"] == "nn.ReLU()" and spec["depth_multiple"] == 0.33


def test_logged_options_are_those_off_the_trainer_defaults_falsy_ones_included(sample):
    """The "yolov5 train options" log line lists every option that differs from train.py's
    defaults, so that train.py can repeat the run from it: a random start (weights '') and no
    loader workers (0) used to be left out as falsy."""
    from yolov5 import train as y5train

    from ymir_base.engine.registry import backend_class, image_spec
    from ymir_base.protocol.context import build_context
    from ymir_base.protocol.paths import PathMapper
    from ymir_yolov5lib.train import build_opt, changed_options

    in_dir, out_dir = sample("training")
    ctx = build_context(image_spec("yolov5"), PathMapper(in_dir, out_dir), overrides=FAST)
    opt = build_opt(backend_class("yolov5")(), ctx, out_dir / "data.yaml", None, y5train.parse_opt, out_dir / "run")
    logged = changed_options(opt, y5train.parse_opt)
    assert logged["weights"] == "" and logged["workers"] == 0 and logged["epochs"] == 1
    assert logged["noplots"] is True and logged["data"] == str(out_dir / "data.yaml")
    assert "hyp" not in logged and "rect" not in logged and "save_period" not in logged  # train.py's defaults
    assert all(isinstance(v, str | int | float | bool | list) for v in logged.values())  # a literal in the log


def test_a_resumed_run_reports_with_the_killed_runs_epochs_and_batch(tmp_path):
    """Resuming, the parsed options are train.py's defaults but --resume (100 epochs, batch 16);
    yolov5 trains with the killed run's (its opt.yaml, else the checkpoint's), and so must the
    progress and the stage numbering."""
    from types import SimpleNamespace

    import torch
    import yaml

    from ymir_base.engine.training import TaskMarker
    from ymir_yolov5lib.train import resumable_checkpoint, run_options

    parsed = SimpleNamespace(epochs=100, batch_size=16, resume=True)
    assert run_options(parsed, None) == vars(parsed)  # a new run: as parsed
    ctx, folder = SimpleNamespace(task_id="t1"), tmp_path / "train"
    (folder / "weights").mkdir(parents=True)
    torch.save({"epoch": 0, "opt": {"epochs": 3, "batch_size": 4}}, folder / "weights" / "last.pt")
    TaskMarker(folder).write("t1")
    resume = resumable_checkpoint(ctx, folder)
    assert resume.epochs_done == 1 and str(resume) == str(folder / "weights" / "last.pt")
    assert run_options(parsed, resume)["epochs"] == 3
    (folder / "opt.yaml").write_text(yaml.safe_dump({"epochs": 5, "batch_size": 8}))
    assert run_options(parsed, resumable_checkpoint(ctx, folder)) == {"epochs": 5, "batch_size": 8}
