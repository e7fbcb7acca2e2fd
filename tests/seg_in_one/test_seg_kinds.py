"""The seg-in-one image's three object types: detection (2) and instance segmentation (4) through
the shared YOLOv5 layer beside semantic segmentation (3): `ymir-exec verify` for each, the
templates YMIR shows per type, and instance data it refuses with a message naming the file."""

from __future__ import annotations

import json

import pytest
import yaml

from conftest import read_monitor
from ymir_base.engine.registry import backend_class, image_spec
from ymir_base.engine.task import run_task
from ymir_base.errors import ErrorCode
from ymir_base.verify.pipeline import verify

IMAGE = "seg-in-one"


def test_the_manifest_and_templates_serve_three_object_types():
    spec = image_spec(IMAGE)
    assert spec.object_types == [2, 3, 4] and spec.per_type_templates
    assert [k.name for k in backend_class(IMAGE).served()] == ["detection", "semantic", "instance"]
    assert spec.defaults("training", 2)["model"] == "yolov5s"
    assert spec.defaults("training", 4)["model"] == "yolov5s-seg"
    assert spec.defaults("training", 3)["config_file"].startswith("configs/fastscnn/")
    assert spec.defaults("mining", 4)["mining_algorithm"] == "apis"
    assert spec.defaults("mining", 2)["mining_algorithm"] == "aldd"
    assert spec.defaults("mining", 3)["mining_algorithm"] == "RSAL"


@pytest.mark.slow
@pytest.mark.parametrize(("object_type", "miners"), [
    (2, {"random", "entropy", "aldd", "cald"}),
    (4, {"apis", "aldd", "cald", "maskAL", "entropy", "random"}),
])
def test_ymir_exec_verify_detection_and_instance(tmp_path, object_type, miners):
    report = verify(IMAGE, tmp_path, object_type=object_type)
    failed = [(name, detail) for ok, name, detail in report.lines if not ok]
    assert not failed
    names = {name for _, name, _ in report.lines}
    assert {f"mining-{m}: result.tsv" for m in miners} <= names
    result = yaml.safe_load((tmp_path / "training/out/models/result.yaml").read_text())
    metric = {2: "mAP", 4: "maskAP"}[object_type]
    assert all(metric in stage for stage in result["model_stages"].values())
    if object_type == 4:
        infer = json.loads((tmp_path / "infer/out/infer-result.json").read_text())
        assert all(a["iscrowd"] == 0 and isinstance(a["segmentation"]["counts"], str)
                   for a in infer.get("annotations", []))


def _instance_training(sample):
    in_dir, out_dir = sample("training", "coco", images=4, object_type="instance")
    return in_dir, out_dir, in_dir / "annotations" / "coco-annotations.json"


def test_an_rle_of_the_wrong_size_fails_the_task_naming_the_file(sample):
    in_dir, out_dir, ann = _instance_training(sample)
    coco = json.loads(ann.read_text())
    image = coco["images"][0]
    target = next(a for a in coco["annotations"] if a["image_id"] == image["id"])
    target["segmentation"] = {"size": [image["height"] + 1, image["width"]], "counts": "0"}
    ann.chmod(0o644)
    ann.write_text(json.dumps(coco))
    before = ann.read_bytes()
    assert run_task(IMAGE, in_dir, out_dir, {"model": "yolov5n-seg", "epochs": 1, "img_size": 64}) == 1
    _, code, text = read_monitor(out_dir)
    assert code == ErrorCode.DATASET and "coco-annotations.json" in text and "RLE" in text
    assert not (out_dir / "models" / "result.yaml").exists()
    assert ann.read_bytes() == before


def test_an_unknown_model_is_refused_before_any_work(sample):
    in_dir, out_dir, _ = _instance_training(sample)
    assert run_task(IMAGE, in_dir, out_dir, {"model": "yolov5q-seg"}) == 1
    _, code, text = read_monitor(out_dir)
    assert code == ErrorCode.CONFIG and "yolov5q-seg" in text
    assert not (out_dir / "models" / "result.yaml").exists()
