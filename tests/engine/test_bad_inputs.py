"""The bad-input catalogue: each case ends with a clear, coded monitor line and a non-zero exit
(or, where the protocol asks for robustness, a complete result)."""

from __future__ import annotations

import json

import pytest
import yaml

from conftest import edit_yaml, read_monitor
from ymir_base.engine.task import run_task
from ymir_base.errors import ErrorCode

FAST = {"model": "yolov5n", "epochs": 1, "img_size": 64, "batch_size_per_gpu": 4, "num_workers_per_gpu": 0}


def run(in_dir, out_dir, **overrides):
    return run_task("yolov5", in_dir, out_dir, overrides or None)


def assert_failed(code, out_dir, expected: ErrorCode, *fragments: str):
    state, written, text = read_monitor(out_dir)
    assert code != 0
    assert (state, written) == (4, int(expected)), text
    for fragment in fragments:
        assert fragment in text, text
    assert not (out_dir / "models" / "result.yaml").exists()
    assert not (out_dir / "infer-result.json").exists()
    assert not (out_dir / "result.tsv").exists()


def test_missing_env_yaml(sample):
    in_dir, out_dir = sample("training")
    (in_dir / "env.yaml").unlink()
    assert_failed(run(in_dir, out_dir), out_dir, ErrorCode.CONFIG, "env.yaml not found")


def test_garbled_config_yaml(sample):
    in_dir, out_dir = sample("training")
    (in_dir / "config.yaml").write_text("epochs: [1, 2\nclass_names: {a\n")
    assert_failed(run(in_dir, out_dir), out_dir, ErrorCode.CONFIG, "config.yaml", "not valid YAML", "line")


def test_unknown_model_name(sample):
    in_dir, out_dir = sample("training")
    edit_yaml(in_dir / "config.yaml", model="yolov9-huge")
    assert_failed(run(in_dir, out_dir), out_dir, ErrorCode.CONFIG, "'model'", "yolov9-huge")


def test_bad_string_boolean(sample):
    in_dir, out_dir = sample("training")
    edit_yaml(in_dir / "config.yaml", save_best_only="perhaps")
    assert_failed(run(in_dir, out_dir), out_dir, ErrorCode.CONFIG, "'save_best_only'")


def test_string_booleans_and_numbers_are_understood(sample):
    from ymir_base.engine.registry import image_spec
    from ymir_base.protocol.context import build_context
    from ymir_base.protocol.paths import PathMapper

    in_dir, out_dir = sample("training")
    edit_yaml(in_dir / "config.yaml", save_best_only="False", sync_bn="true", epochs="3", img_size=320.0)
    ctx = build_context(image_spec("yolov5"), PathMapper(in_dir, out_dir))
    assert ctx.config["save_best_only"] is False and ctx.config["sync_bn"] is True
    assert ctx.config["epochs"] == 3 and ctx.config["img_size"] == 320


def test_empty_train_index(sample):
    in_dir, out_dir = sample("training")
    (in_dir / "train-index.tsv").write_text("")
    assert_failed(run(in_dir, out_dir, **FAST), out_dir, ErrorCode.DATASET, "train-index.tsv", "empty")


def _first_ark(in_dir):
    line = (in_dir / "train-index.tsv").read_text().splitlines()[0]
    return in_dir / line.split("\t")[1].removeprefix("/in/")


def test_class_outside_class_names(sample):
    in_dir, out_dir = sample("training")
    ann = _first_ark(in_dir)
    ann.write_text("7, 1, 1, 10, 10, -1.0, 0.0\n")
    assert_failed(run(in_dir, out_dir, **FAST), out_dir, ErrorCode.DATASET, ann.name, "line 1")


def test_box_outside_the_image(sample):
    in_dir, out_dir = sample("training")
    ann = _first_ark(in_dir)
    ann.write_text("0, 10, 10, 5000, 20, -1.0, 0.0\n")
    assert_failed(run(in_dir, out_dir, **FAST), out_dir, ErrorCode.DATASET, ann.name)


def test_corrupt_training_image(sample):
    in_dir, out_dir = sample("training")
    image = in_dir / (in_dir / "train-index.tsv").read_text().splitlines()[1].split("\t")[0].removeprefix("/in/")
    image.write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    assert_failed(run(in_dir, out_dir, **FAST), out_dir, ErrorCode.IMAGE_FORMAT, image.name)


def test_unknown_mining_algorithm(sample):
    in_dir, out_dir = sample("mining")
    edit_yaml(in_dir / "config.yaml", mining_algorithm="coreset")
    assert_failed(run(in_dir, out_dir), out_dir, ErrorCode.CONFIG, "mining_algorithm")


def test_missing_model_for_infer(sample):
    in_dir, out_dir = sample("infer")
    assert_failed(run(in_dir, out_dir), out_dir, ErrorCode.MODEL, "model_params_path")


def test_unloadable_model_file(sample, tmp_path):
    folder = tmp_path / "badmodel" / "best"
    folder.mkdir(parents=True)
    (folder / "best.pt").write_bytes(b"not a checkpoint")
    in_dir, out_dir = sample("infer", models={"best": folder})
    assert_failed(run(in_dir, out_dir), out_dir, ErrorCode.MODEL, "best.pt")


def test_empty_candidate_list_writes_empty_results(sample, yolov5n_checkpoint):
    in_dir, out_dir = sample("mining+infer", models={"best": yolov5n_checkpoint.parent})
    (in_dir / "candidate-index.tsv").write_text("")
    assert run(in_dir, out_dir, mining_algorithm="entropy") == 0
    assert (out_dir / "result.tsv").read_text() == ""
    assert json.loads((out_dir / "infer-result.json").read_text()) == {"detection": {}}
    assert read_monitor(out_dir)[:2] == (2, 0)


@pytest.mark.parametrize("algorithm", ["random", "entropy"])
def test_unreadable_candidate_gets_the_lowest_score(sample, yolov5n_checkpoint, algorithm):
    in_dir, out_dir = sample("mining+infer", models={"best": yolov5n_checkpoint.parent})
    candidates = (in_dir / "candidate-index.tsv").read_text().splitlines()
    (in_dir / candidates[0].removeprefix("/in/")).write_bytes(b"garbage")
    missing = "/in/assets/00/does-not-exist.jpg"
    (in_dir / "candidate-index.tsv").write_text("\n".join([*candidates, missing]) + "\n")
    assert run(in_dir, out_dir, mining_algorithm=algorithm, img_size=64) == 0
    rows = [r.split("\t") for r in (out_dir / "result.tsv").read_text().splitlines()]
    assert len(rows) == len(candidates) + 1
    assert {rows[-1][0], rows[-2][0]} == {candidates[0], missing}
    infer = json.loads((out_dir / "infer-result.json").read_text())["detection"]
    assert infer[candidates[0].rsplit("/", 1)[-1]] == {"boxes": []}
    assert len(infer) == len(candidates) + 1


@pytest.mark.parametrize("mode", ["L", "RGBA", "I;16"])
def test_grayscale_rgba_and_16bit_candidates_are_predicted(sample, yolov5n_checkpoint, mode):
    import numpy as np
    from PIL import Image

    in_dir, out_dir = sample("infer", models={"best": yolov5n_checkpoint.parent})
    candidates = (in_dir / "candidate-index.tsv").read_text().splitlines()
    png = in_dir / "assets" / "ff" / f"odd-{mode.replace(';', '')}.png"
    png.parent.mkdir(exist_ok=True)
    if mode == "I;16":
        Image.fromarray((np.arange(64 * 48).reshape(48, 64) * 20).astype(np.uint16)).save(png)
    else:
        Image.new(mode, (64, 48), 128 if mode == "L" else (10, 200, 30, 128)).save(png)
    asset = "/in/" + str(png.relative_to(in_dir))
    (in_dir / "candidate-index.tsv").write_text("\n".join([*candidates, asset]) + "\n")
    assert run(in_dir, out_dir, img_size=64, conf_thres=0.0001) == 0
    infer = json.loads((out_dir / "infer-result.json").read_text())["detection"]
    assert png.name in infer
    for box in infer[png.name]["boxes"]:
        assert 0 <= box["box"]["x"] < 64 and 0 <= box["box"]["y"] < 48


def test_config_is_not_modified(sample):
    in_dir, out_dir = sample("training")
    before = {p: p.read_bytes() for p in in_dir.rglob("*") if p.is_file()}
    edit_yaml(in_dir / "config.yaml", model="nope")
    before[in_dir / "config.yaml"] = (in_dir / "config.yaml").read_bytes()
    run(in_dir, out_dir)
    assert {p: p.read_bytes() for p in in_dir.rglob("*") if p.is_file()} == before
    assert yaml.safe_load((in_dir / "config.yaml").read_text())["model"] == "nope"
