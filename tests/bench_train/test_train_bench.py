"""The training benchmark's own logic, without training: the per-epoch slope and fixed part, the
tables' ratios, the /in's split, and the reference command built from our trainer's logged
options (checked to parse back to the same options), the dataset copy and the OpenMMLab config."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "bench"))

import train_bench as tb  # noqa: E402
import train_reference as ref  # noqa: E402


def test_slope_is_the_difference_quotient_of_two_epoch_counts_and_fixed_the_rest():
    slope, fixed = tb.epoch_fit({1: 30.0, 3: 50.0})
    assert slope == pytest.approx(10.0) and fixed == pytest.approx(20.0)
    slope, fixed = tb.epoch_fit({1: 7.0, 2: 9.0, 5: 15.0})  # collinear: the same line
    assert slope == pytest.approx(2.0) and fixed == pytest.approx(5.0)
    with pytest.raises(ValueError, match="two or more"):
        tb.epoch_fit({3: 12.0})


def test_summary_and_table_give_ours_over_the_reference():
    medians = {"ours": {1: {"wall": 33.0, "cpu": 22.0}, 3: {"wall": 57.0, "cpu": 42.0}},
               "reference": {1: {"wall": 30.0, "cpu": 20.0}, 3: {"wall": 50.0, "cpu": 40.0}}}
    fits = tb.summary(medians)
    assert fits["ours"]["wall"] == pytest.approx({"total_1": 33.0, "total_3": 57.0, "per_epoch": 12.0, "fixed": 21.0})
    assert fits["reference"]["cpu"] == pytest.approx({"total_1": 20.0, "total_3": 40.0, "per_epoch": 10.0,
                                                      "fixed": 10.0})
    rows = {line.split(" | ")[0].lstrip("| "): line for line in tb.table(fits, [1, 3], 2.5).splitlines()}
    assert rows["per epoch (slope)"].endswith("| 12.00 | 10.00 | 1.20 | 10.00 | 10.00 | 1.00 |")
    assert rows["fixed part (intercept)"].endswith("| 21.00 | 20.00 | 1.05 | 12.00 | 10.00 | 1.20 |")
    assert rows["1 epoch (whole command)"].endswith("| 1.10 | 22.00 | 20.00 | 1.10 |")
    assert "| 2.50 |" in rows["ONNX export of the best stage (ours only, in the fixed part)"]
    assert tb.ratio(1.0, 0.0) == "-" and tb.ratio(None, 1.0) == "-"


def test_split_makes_the_first_images_the_training_set(tmp_path):
    from ymir_base.sample.generator import generate

    in_dir = generate(tmp_path / "in", task="training", object_type="detection", fmt="ark", images=7, seed=3)
    before = [(in_dir / n).read_text().splitlines() for n in ("train-index.tsv", "val-index.tsv")]
    tb.split_indexes(in_dir, 5)
    train, val = ((in_dir / n).read_text().splitlines() for n in ("train-index.tsv", "val-index.tsv"))
    assert train + val == before[0] + before[1] and len(train) == 5 and len(val) == 2
    with pytest.raises(ValueError, match="no validation image"):
        tb.split_indexes(in_dir, 7)


def test_same_training_allows_float_noise_not_other_numbers():
    a = [[0.0, 0.1306, 0.0070589], [1.0, 0.084938, 0.0061904]]
    assert tb.same_training(a, [[0.0, 0.13051, 0.0070958], [1.0, 0.084936, 0.0061907]])
    assert not tb.same_training(a, [[0.0, 0.1306, 0.0070589]])  # an epoch fewer
    assert not tb.same_training(a, [[0.0, 0.1606, 0.0070589], [1.0, 0.084938, 0.0061904]])
    assert not tb.same_training([], [])


def test_reference_command_repeats_our_logged_options(sample, tmp_path):
    """Our trainer's options as it logs them -> python -m yolov5.train arguments, on the
    reference's own data and folder; yolov5_command itself checks that they parse back."""
    from yolov5 import train as y5train

    from ymir_base.engine.registry import backend_class, image_spec
    from ymir_base.protocol.context import build_context
    from ymir_base.protocol.paths import PathMapper
    from ymir_yolov5lib.train import build_opt, changed_options

    in_dir, out_dir = sample("training")
    overrides = {"model": "yolov5n", "epochs": 3, "img_size": 320, "batch_size_per_gpu": 8, "num_workers_per_gpu": 0,
                 "args_options": "--exist-ok --cos-lr --freeze 0 1"}
    ctx = build_context(image_spec("yolov5"), PathMapper(in_dir, out_dir), overrides=overrides)
    opt = build_opt(backend_class("yolov5")(), ctx, out_dir / "data.yaml", None, y5train.parse_opt, out_dir / "run")
    logged = changed_options(opt, y5train.parse_opt)
    log = f"2026-11-26 15:00:00,000 INFO ymir_yolov5lib.train: yolov5 train options: {logged}\n"
    options = ref.logged_options("other line\n" + log)

    cmd = ref.yolov5_command(options, tmp_path / "ref-data" / "data.yaml", tmp_path / "ref")
    assert cmd[1:3] == ["-m", "yolov5.train"]
    args = cmd[3:]
    pairs = {args[i]: args[i + 1] for i in range(len(args) - 1) if args[i].startswith("--")}
    assert pairs["--weights"] == "" and pairs["--workers"] == "0" and pairs["--epochs"] == "3"
    assert pairs["--imgsz"] == "320" and pairs["--batch-size"] == "8" and pairs["--device"] == "cpu"
    assert pairs["--data"] == str(tmp_path / "ref-data" / "data.yaml") and pairs["--project"] == str(tmp_path / "ref")
    assert pairs["--name"] == "train" and Path(pairs["--cfg"]).name == "yolov5n.yaml"
    assert args[args.index("--freeze") + 1:args.index("--freeze") + 3] == ["0", "1"]
    assert {"--noplots", "--exist-ok", "--cos-lr"} <= set(args) and "--hyp" not in args  # the default hyp


def test_command_line_forms_and_refusals():
    from yolov5 import train as y5train

    parser = ref.trainer_parser(y5train.parse_opt)
    options = {"resume": True, "rect": True, "freeze": [10], "bbox_interval": 2, "cache": "ram"}
    assert ref.command_line(options, parser) == ["--resume", "--rect", "--freeze", "10", "--bbox_interval", "2",
                                                 "--cache", "ram"]
    with pytest.raises(ValueError, match="not an option"):
        ref.command_line({"no_such_option": 1}, parser)
    with pytest.raises(ValueError, match="is a flag"):
        ref.command_line({"rect": "yes"}, parser)
    with pytest.raises(ValueError, match="no 'yolov5 train options' line"):
        ref.logged_options("nothing here\n")


def test_yolo_dataset_copy_has_its_own_paths_and_no_label_cache(tmp_path):
    source, image = tmp_path / "yolo-data", tmp_path / "asset.jpg"
    image.write_bytes(b"jpeg")
    for split in ("train", "val"):
        (source / "images" / split).mkdir(parents=True)
        (source / "labels" / split).mkdir(parents=True)
        (source / "images" / split / f"{split}.jpg").symlink_to(image)
        (source / "labels" / split / f"{split}.txt").write_text("0 0.5 0.5 0.1 0.1\n")
        (source / "labels" / f"{split}.cache").write_bytes(b"cache")
    (source / "data.yaml").write_text(yaml.safe_dump({"train": str(source / "images" / "train"),
                                                      "val": str(source / "images" / "val"), "nc": 1,
                                                      "names": ["circle"]}, sort_keys=False))
    data_yaml = ref.copy_yolo_dataset(source, tmp_path / "copy")
    data = yaml.safe_load(data_yaml.read_text())
    assert data == {"train": str(tmp_path / "copy" / "images" / "train"),
                    "val": str(tmp_path / "copy" / "images" / "val"), "nc": 1, "names": ["circle"]}
    linked = tmp_path / "copy" / "images" / "train" / "train.jpg"
    assert linked.is_symlink() and linked.resolve() == image.resolve()
    assert (tmp_path / "copy" / "labels" / "val" / "val.txt").read_text() == "0 0.5 0.5 0.1 0.1\n"
    assert not list((tmp_path / "copy" / "labels").glob("*.cache"))
    assert (source / "labels" / "train.cache").is_file()  # ours untouched


def test_openmmlab_reference_runs_our_config_in_its_own_folders(tmp_path):
    ours = tmp_path / "config.py"
    ours.write_text("work_dir = '/out/work/mmengine'\nmax_epochs = 3\n"
                    "visualizer = dict(type='DetLocalVisualizer', vis_backends=[dict(type='LocalVisBackend'), "
                    "dict(type='TensorboardVisBackend', save_dir='/out/tensorboard')])\n")
    config = ref.openmmlab_config(ours, tmp_path / "ref" / "config.py", tmp_path / "run", tmp_path / "tb")
    from mmengine.config import Config

    cfg = Config.fromfile(str(config))
    assert cfg.work_dir == str(tmp_path / "run") and cfg.max_epochs == 3
    assert cfg.visualizer.vis_backends[1].save_dir == str(tmp_path / "tb")
    cmd = ref.openmmlab_command("mmdet", config, tmp_path / "run")
    assert Path(cmd[1]).parts[-3:] == (".mim", "tools", "train.py") and Path(cmd[1]).is_file()
    assert cmd[2:] == [str(config), "--work-dir", str(tmp_path / "run")]
    with pytest.raises(ValueError, match="not installed"):
        ref.openmmlab_command("no_such_package_here", config, tmp_path / "run")
