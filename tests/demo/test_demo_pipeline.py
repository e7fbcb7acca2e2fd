"""The demo's plumbing on a model trained for one epoch: pictures, curve and a summary that
says what the files say. (The real demo, 40 epochs, is `make demo`.)"""

from __future__ import annotations

import json

import cv2
import pytest

from ymir_base.demo import pipeline
from ymir_yolov5.backend import Yolov5Backend

pytestmark = pytest.mark.slow


@pytest.fixture
def tiny_demo(monkeypatch):
    def settings(cls, work_dir):
        return {"training": {"model": "yolov5n", "epochs": 2, "img_size": 64, "batch_size_per_gpu": 4,
                             "num_workers_per_gpu": 0},
                "infer": {"img_size": 64, "conf_thres": 0.001}, "mining": {"img_size": 64}}

    monkeypatch.setattr(Yolov5Backend, "demo_settings", classmethod(settings))


def test_demo_draws_plots_and_reports_what_the_files_say(tmp_path, tiny_demo):
    result = pipeline.run_demo("yolov5", tmp_path, echo=lambda line: None, min_map=0.0, images=8, candidates=6)
    assert result.ok and result.report.ok
    picture = cv2.imread(str(tmp_path / pipeline.PICTURE))
    assert picture is not None and picture.shape[0] > 100
    assert cv2.imread(str(tmp_path / pipeline.CURVE)) is not None
    text = "\n".join(result.summary)
    detection = json.loads((tmp_path / "infer/out/infer-result.json").read_text())["detection"]
    boxes = sum(len(v["boxes"]) for v in detection.values())
    assert f"infer on 6 new images at confidence 0.001 (conf_thres): {boxes} boxes" in text
    assert "trained yolov5n for 2 epochs at 64 px on 6 sample images (2 for validation)" in text
    for algorithm in Yolov5Backend.mining_algorithms:
        top = (tmp_path / f"mining-{algorithm}/out/result.tsv").read_text().split("\t")[0].rsplit("/", 1)[-1]
        assert f"mining-{algorithm}" in text and top[:10] in text
    # the candidates are new images, not the training ones
    train = (tmp_path / "training/in/train-index.tsv").read_text()
    assert not any(name.rsplit(".", 1)[0] in train for name in detection)


def test_demo_fails_when_the_model_did_not_learn(tmp_path, tiny_demo):
    result = pipeline.run_demo("yolov5", tmp_path, echo=lambda line: None, min_map=0.99, images=8, candidates=6)
    assert result.report.ok and not result.ok
    assert "the model did not learn" in "\n".join(result.summary)
