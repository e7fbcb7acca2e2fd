import json

import numpy as np
import pytest
import yaml

from ymir_base.results.training import TrainingResult
from ymir_base.verify.checks import check_training_result


def make_stage(result, name, metrics, ts):
    (result.stage_dir(name) / "w.pt").write_bytes(b"x")
    return result.add_stage(name, ["w.pt"], metrics, timestamp=ts)


def test_best_stage_and_plain_types(tmp_path):
    r = TrainingResult(tmp_path)
    make_stage(r, "epoch_1", {"mAP": np.float32(0.25), "mAR": 0.5, "tp": np.int64(3)}, 1)
    make_stage(r, "epoch_2", {"mAP": 0.5}, 2)
    make_stage(r, "epoch_3", {"mAP": 0.4}, 3)
    text = (tmp_path / "result.yaml").read_text()
    data = yaml.safe_load(text)  # safe_load: no numpy objects leaked into the YAML
    assert data["best_stage_name"] == "epoch_2" and data["mAP"] == 0.5
    assert data["model_stages"]["epoch_1"] == {"stage_name": "epoch_1", "files": ["w.pt"], "timestamp": 1,
                                               "mAP": 0.25, "mAR": 0.5, "tp": 3}
    assert check_training_result(tmp_path) == []


def test_ties_go_to_the_later_stage(tmp_path):
    r = TrainingResult(tmp_path)
    make_stage(r, "a", {"mAP": 0.5}, 1)
    make_stage(r, "b", {"mAP": 0.5}, 2)
    assert r.best_stage().name == "b"


def test_rejects_bad_stages(tmp_path):
    r = TrainingResult(tmp_path)
    with pytest.raises(ValueError, match="identifier"):
        r.add_stage("epoch-1", ["w.pt"], {"mAP": 0.1})
    with pytest.raises(FileNotFoundError):
        r.add_stage("s", ["missing.pt"], {"mAP": 0.1})
    (r.stage_dir("s") / "w.pt").write_bytes(b"x")
    with pytest.raises(ValueError, match="outside"):
        r.add_stage("s", ["w.pt"], {"mAP": 55.1})
    assert not (tmp_path / "result.yaml").exists()


def test_keeps_best_plus_ten_recent_and_reloads(tmp_path):
    r = TrainingResult(tmp_path)
    make_stage(r, "best", {"mAP": 0.9}, 0)
    for i in range(1, 15):
        make_stage(r, f"epoch_{i}", {"mAP": 0.1}, i)
    assert len(r.stages) == 11 and "best" in r.stages and "epoch_4" not in r.stages
    again = TrainingResult.load(tmp_path)
    assert set(again.stages) == set(r.stages)
    (tmp_path / "epoch_14" / "w.pt").unlink()  # a file lost: the stage is dropped on reload
    assert "epoch_14" not in TrainingResult.load(tmp_path).stages


def test_segmentation_metric_key(tmp_path):
    r = TrainingResult(tmp_path, object_type=3)
    make_stage(r, "last", {"mIoU": 0.3}, 1)
    data = yaml.safe_load((tmp_path / "result.yaml").read_text())
    assert data["mIoU"] == 0.3 and data["model_stages"]["last"]["mIoU"] == 0.3


def test_preferred_stage_wins_ties(tmp_path):
    r = TrainingResult(tmp_path)
    r.preferred_stage = "best"
    make_stage(r, "epoch_1", {"mAP": 0.0}, 5)
    make_stage(r, "best", {"mAP": 0.0}, 5)
    make_stage(r, "epoch_2", {"mAP": 0.0}, 5)
    assert r.best_stage().name == "best"
    make_stage(r, "epoch_3", {"mAP": 0.1}, 6)
    assert r.best_stage().name == "epoch_3"


def test_reload_takes_stages_written_elsewhere(tmp_path):
    writer, reader = TrainingResult(tmp_path), TrainingResult(tmp_path)
    make_stage(writer, "best", {"mAP": 0.3}, 1)
    assert reader.stages == {}
    reader.reload()
    assert reader.best_stage().name == "best" and reader.best_stage().metrics["mAP"] == 0.3


def test_expose_top_level_replaces_the_link(tmp_path):
    r = TrainingResult(tmp_path)
    (r.stage_dir("best") / "best.pt").write_bytes(b"one")
    r.expose_top_level("best", "best.pt")
    assert (tmp_path / "best.pt").read_bytes() == b"one"
    (tmp_path / "best" / "best.pt").unlink()
    (tmp_path / "best" / "best.pt").write_bytes(b"two")
    r.expose_top_level("best", "best.pt")
    assert (tmp_path / "best.pt").read_bytes() == b"two"
    assert not list(tmp_path.glob(".*.tmp"))


def test_percentages_are_converted_by_the_caller_only(tmp_path):
    assert TrainingResult.from_percent(55.1) == pytest.approx(0.551)
    assert TrainingResult.from_percent("100") == 1.0 and TrainingResult.from_percent(0) == 0.0
    with pytest.raises(ValueError, match="outside"):
        TrainingResult.from_percent(101)
    r = TrainingResult(tmp_path)
    (r.stage_dir("s") / "w.pt").write_bytes(b"x")
    with pytest.raises(ValueError, match="from_percent"):  # add_stage never guesses a percentage
        r.add_stage("s", ["w.pt"], {"mAP": 55.1})
    r.add_stage("s", ["w.pt"], {"mAP": TrainingResult.from_percent(55.1)})
    assert r.stages["s"].metrics["mAP"] == pytest.approx(0.551)


def test_stage_details_become_a_listed_metrics_attachment(tmp_path):
    r = TrainingResult(tmp_path)
    (r.stage_dir("epoch_1") / "w.pt").write_bytes(b"x")
    r.add_stage("epoch_1", ["w.pt"], {"mAP": 0.5},
                details={"epoch": 1, "mAP@0.5:0.95": np.float32(0.25), "per_class": {"cat": {"AP@0.5": float("nan")}}})
    data = yaml.safe_load((tmp_path / "result.yaml").read_text())
    assert data["attachments"] == {"metrics": ["epoch_1.json"]}
    details = json.loads((tmp_path / "attachments/metrics/epoch_1.json").read_text())
    assert details == {"stage": "epoch_1", "epoch": 1, "mAP@0.5:0.95": 0.25, "per_class": {"cat": {"AP@0.5": None}}}
    (r.stage_dir("epoch_2") / "w.pt").write_bytes(b"x")
    r.add_stage("epoch_2", ["w.pt"], {"mAP": 0.6}, details={"epoch": 2})
    r.add_attachment("onnx", [])  # nothing to list: the sections stay as they are
    assert r.attachments["metrics"] == ["epoch_1.json", "epoch_2.json"]
    r.remove_stage("epoch_1")  # a dropped stage takes its attachment along
    assert r.attachments["metrics"] == ["epoch_2.json"]
    assert not (tmp_path / "attachments/metrics/epoch_1.json").exists()
    assert check_training_result(tmp_path) == []
    assert TrainingResult.load(tmp_path).attachments == {"metrics": ["epoch_2.json"]}


def test_attachments_of_a_section_accumulate(tmp_path):
    r = TrainingResult(tmp_path)
    make_stage(r, "best", {"mAP": 0.5}, 1)
    for name in ("a.onnx", "b.onnx"):
        (r.attachment_dir("onnx") / name).write_bytes(b"x")
        r.add_attachment("onnx", [name])
    r.add_attachment("onnx", ["a.onnx", "missing.onnx"])
    assert yaml.safe_load((tmp_path / "result.yaml").read_text())["attachments"] == {"onnx": ["a.onnx", "b.onnx"]}


def test_pruned_stages_lose_their_metrics_attachment(tmp_path):
    r = TrainingResult(tmp_path)
    for i in range(1, 13):
        (r.stage_dir(f"epoch_{i}") / "w.pt").write_bytes(b"x")
        r.add_stage(f"epoch_{i}", ["w.pt"], {"mAP": 0.1 * (i == 1)}, timestamp=i, details={"epoch": i})
    kept = {f"{n}.json" for n in r.stages}
    assert set(r.attachments["metrics"]) == kept and len(kept) == 11 and "epoch_2.json" not in kept
    assert {p.name for p in (tmp_path / "attachments/metrics").iterdir()} == kept
