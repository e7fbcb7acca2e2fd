"""No output path derived from an input name can escape /out: every place that builds an output
path from an input string, fed names like ``../../x``, absolute paths and NUL bytes.

The places: env.yaml's output paths (the result files, monitor.txt), the YOLO and semantic
dataset conversions (asset names), RSAL's region masks (candidate names), stage folders, and
the ``activate`` architecture file of yolov5. Class names never become file names (they are
tensorboard tags and JSON keys only).
"""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from conftest import edit_yaml, read_monitor
from ymir_base.data.types import Dataset, ImageRecord
from ymir_base.engine.task import run_task
from ymir_base.errors import DatasetError, ErrorCode
from ymir_base.protocol.paths import IN_ROOT, OUT_ROOT, file_name, outside

BAD_NAMES = ["..", ".", "", "a/../../x", "/etc/x", "a\0b"]
ESCAPING = ["../../x", "/etc/passwd", "/out/../x", "/out/a\0b", "out/x", "/outside/x", "/out"]



@pytest.mark.parametrize("path", ESCAPING)
def test_paths_outside_the_roots_are_named(path):
    reason = outside(path, OUT_ROOT)
    assert reason, path
    assert outside("/out/models/result.yaml", OUT_ROOT) is None
    assert outside("/in/assets/aa/1.jpg", IN_ROOT) is None


@pytest.mark.parametrize("name", BAD_NAMES)
def test_file_names_are_one_component(name):
    with pytest.raises(DatasetError, match="cannot be an output file name"):
        file_name(name, "asset")
    assert file_name("1.jpg", "asset") == "1.jpg" and file_name("..a", "asset") == "..a"


@pytest.mark.parametrize("key", ["infer_result_file", "monitor_file", "models_dir", "root_dir", "tensorboard_dir",
                                 "training_result_file"])
@pytest.mark.parametrize("path", ["/in/x", "../../x", "/out/../../x", "/out/a\0b"])
def test_env_yaml_output_paths_stay_in_out(sample, key, path):
    in_dir, out_dir = sample("infer")
    before = set(in_dir.parent.parent.iterdir())
    env = in_dir / "env.yaml"
    import yaml

    data = yaml.safe_load(env.read_text())
    data["output"][key] = path
    env.write_text(yaml.safe_dump(data))
    code = run_task("yolov5", in_dir, out_dir)
    state, written, text = read_monitor(out_dir)  # the default /out/monitor.txt
    assert code != 0 and (state, written) == (4, int(ErrorCode.CONFIG)), text
    assert f"key 'output.{key}'" in text and "points outside /out" in text
    assert set(in_dir.parent.parent.iterdir()) == before
    assert sorted(p.name for p in out_dir.iterdir()) == ["monitor.txt"]


def test_env_yaml_input_paths_stay_in_in(sample):
    in_dir, out_dir = sample("infer")
    edit_yaml(in_dir / "env.yaml", input={"candidate_index_file": "/etc/passwd"})
    code = run_task("yolov5", in_dir, out_dir)
    state, written, text = read_monitor(out_dir)
    assert code != 0 and (state, written) == (4, int(ErrorCode.CONFIG))
    assert "key 'input.candidate_index_file'" in text and "points outside /in" in text


def _records(tmp_path, asset: str) -> list[ImageRecord]:
    image = tmp_path / "img.png"
    cv2.imwrite(str(image), np.zeros((8, 8, 3), np.uint8))
    return [ImageRecord(asset=asset, path=image, width=8, height=8, line=7)]


@pytest.mark.parametrize("asset", ["/in/assets/..", "/in/assets/.", "/in/assets/", "/in/assets/a\0b.jpg"])
def test_yolo_conversion_refuses_names_that_escape(tmp_path, asset):
    from ymir_base.data.convert.yolo import write_yolo_dataset

    out = tmp_path / "out" / "yolo-data"
    dataset = Dataset(class_names=["a"], train=_records(tmp_path, asset), val=[])
    before = set(tmp_path.iterdir())
    with pytest.raises(DatasetError, match=r"index line 7\): its name .* cannot be an output file name"):
        write_yolo_dataset(dataset, out)
    assert set(tmp_path.iterdir()) - before <= {tmp_path / "out"}
    assert not list((out / "images").rglob("*")) or all(p.is_dir() for p in (out / "images").rglob("*"))


@pytest.mark.parametrize("asset", ["/in/assets/..", "/in/assets/", "/in/assets/a\0b.jpg"])
def test_semantic_conversion_refuses_names_that_escape(tmp_path, asset):
    from ymir_base.data.convert.semantic import write_split

    out = tmp_path / "out" / "train.json"
    with pytest.raises(DatasetError, match="cannot be an output file name"):
        write_split(_records(tmp_path, asset), ["a"], out, ignore_blank=False)
    assert not out.exists() and not list((tmp_path / "out").rglob("*.png"))


@pytest.mark.parametrize("asset", ["/in/assets/..", "/in/assets/", "/in/a\0b.png"])
def test_rsal_masks_refuse_names_that_escape(tmp_path, asset):
    from ymir_base.mining.rsal import MASK_DIR, RegionMask, RsalMining

    _, png = cv2.imencode(".png", np.ones((2, 2), np.uint8))
    mask = RegionMask(png.tobytes(), (4, 4))
    miner = RsalMining({}, ["a"])
    with pytest.raises(DatasetError, match="cannot be an output file name"):
        miner.write_side_outputs([(asset, 1.0, mask)], tmp_path / "out")
    assert not list(tmp_path.rglob("*.png"))
    miner.write_side_outputs([("/in/assets/..a.jpg", 1.0, mask)], tmp_path / "out")
    assert [p.name for p in (tmp_path / "out" / MASK_DIR).iterdir()] == ["..a.png"]


@pytest.mark.parametrize("name", ["../x", "/abs", "a\0b", "..", "a/b"])
def test_stage_names_cannot_leave_the_models_folder(tmp_path, name):
    from ymir_base.results.training import TrainingResult

    result = TrainingResult(tmp_path / "models")
    with pytest.raises(ValueError, match="is not an identifier"):
        result.stage_dir(name)
    with pytest.raises(ValueError, match="is not an identifier"):
        result.add_stage(name, ["w.pt"], {"mAP": 0.5})
    assert not (tmp_path / "models").exists()


@pytest.mark.parametrize("activate", ["../../../x", "/tmp/x", "SiLU\0x"])
def test_yolov5_activation_file_name(sample, activate):
    in_dir, out_dir = sample("training")
    before = set(out_dir.parent.parent.iterdir())
    code = run_task("yolov5", in_dir, out_dir, {"model": "yolov5n", "epochs": 1, "img_size": 64,
                                                  "batch_size_per_gpu": 4, "num_workers_per_gpu": 0,
                                                  "activate": activate})
    state, written, text = read_monitor(out_dir)
    assert code != 0 and (state, written) == (4, int(ErrorCode.CONFIG)), text
    assert "config key 'activate'" in text
    assert set(out_dir.parent.parent.iterdir()) == before
    assert not list((out_dir / "work").glob("*.yaml"))
