"""The conformance checks must be able to fail: each broken output is caught."""

import json

import yaml

from ymir_base.verify.checks import check_infer_result, check_mining_result, check_monitor, check_training_result


def test_mining_checks(tmp_path):
    path = tmp_path / "result.tsv"
    path.write_text("/in/a.jpg\t0.5\n/in/b.jpg\t0.9\n")
    assert any("sorted" in p for p in check_mining_result(path, ["/in/a.jpg", "/in/b.jpg"]))
    path.write_text("/in/b.jpg\t0.9\n")
    assert any("1 lines for 2" in p for p in check_mining_result(path, ["/in/a.jpg", "/in/b.jpg"]))
    path.write_text("/in/b.jpg 0.9\n")
    assert check_mining_result(path, ["/in/b.jpg"])
    path.write_text("/in/b.jpg\t0.9\n/in/a.jpg\t-1e9\n")
    assert check_mining_result(path, ["/in/a.jpg", "/in/b.jpg"]) == []


def test_infer_checks(tmp_path):
    path = tmp_path / "infer-result.json"
    good = {"box": {"x": 1, "y": 2, "w": 3, "h": 4}, "class_name": "cat", "score": 0.5}
    path.write_text(json.dumps({"detection": {"a.jpg": {"boxes": [good]}, "b.jpg": {"boxes": []}}}))
    assert check_infer_result(path, ["/in/x/a.jpg", "/in/y/b.jpg"], ["cat"]) == []
    assert check_infer_result(path, ["/in/x/a.jpg"], ["cat"])  # extra key
    bad = {**good, "box": {"x": 1.5, "y": 2, "w": 3, "h": 4}}
    path.write_text(json.dumps({"detection": {"a.jpg": {"boxes": [bad, {**good, "class_name": "dog"}]}}}))
    problems = check_infer_result(path, ["/in/a.jpg"], ["cat"])
    assert any("integers" in p for p in problems) and any("dog" in p for p in problems)
    path.write_text(json.dumps({"a.jpg": {}}))
    assert check_infer_result(path, ["/in/a.jpg"], ["cat"]) == ["infer-result.json: top-level key 'detection' missing"]


def test_training_checks(tmp_path):
    (tmp_path / "s").mkdir()
    (tmp_path / "s" / "w.pt").write_bytes(b"x")
    stage = {"stage_name": "s", "files": ["w.pt"], "timestamp": 1, "mAP": 0.5}
    (tmp_path / "result.yaml").write_text(yaml.safe_dump({"best_stage_name": "s", "model_stages": {"s": stage}}))
    assert check_training_result(tmp_path) == []
    for broken, fragment in (({**stage, "mAP": 55.0}, "outside"), ({**stage, "files": ["/abs.pt"]}, "absolute"),
                             ({**stage, "files": ["nope.pt"]}, "exists in neither"), ({**stage, "tp": -1}, "tp")):
        (tmp_path / "result.yaml").write_text(yaml.safe_dump({"best_stage_name": "s", "model_stages": {"s": broken}}))
        assert any(fragment in p for p in check_training_result(tmp_path)), fragment
    (tmp_path / "result.yaml").write_text(yaml.safe_dump({"best_stage_name": "x", "model_stages": {"s": stage}}))
    assert any("best_stage_name" in p for p in check_training_result(tmp_path))
    assert any("tensorboard" in p for p in check_training_result(tmp_path, 2, tmp_path / "tb"))


def test_monitor_checks(tmp_path):
    path = tmp_path / "monitor.txt"
    path.write_text("t 1.0 0.5 2 0\n")  # spaces, not tabs
    assert check_monitor(path)
    path.write_text("t\t1.0\t1.0\t3\t0\n")
    assert any("state 3" in p for p in check_monitor(path))
    path.write_text("t\t1.0\t0.5\t2\t0\n")
    assert check_monitor(path)  # not finished
