import hashlib
import json

import pytest
import yaml
from pycocotools import mask as mask_utils

from ymir_base.data.reader import load_dataset
from ymir_base.protocol.paths import PathMapper
from ymir_base.sample.generator import generate

CLASSES = ["circle", "square", "triangle"]
OBJECT_FORMATS = [("detection", "ark"), ("detection", "voc"), ("detection", "coco"), ("rotated", "ark"),
                  ("rotated", "voc"), ("rotated", "coco"), ("semantic", "coco"), ("instance", "coco")]
TASKS = ["training", "mining", "infer", "mining+infer"]


def _files(folder):
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def _raw_object_count(folder, fmt):
    """Objects in the annotation files, counted without the readers."""
    if fmt == "coco":
        return len(json.loads((folder / "annotations/coco-annotations.json").read_text())["annotations"])
    texts = [p.read_text() for p in (folder / "annotations").rglob(f"*.{'txt' if fmt == 'ark' else 'xml'}")]
    return sum(t.count("<object>") if fmt == "voc" else len(t.splitlines()) for t in texts)


@pytest.mark.parametrize(("object_type", "fmt"),
                         [("rotated", "ark"), ("rotated", "voc"), ("instance", "coco"), ("semantic", "coco")])
def test_same_seed_same_bytes(tmp_path, object_type, fmt):
    kwargs = {"task": "training", "object_type": object_type, "fmt": fmt, "images": 5}
    first = _files(generate(tmp_path / "a", **kwargs))
    assert first == _files(generate(tmp_path / "b", **kwargs))
    assert first != _files(generate(tmp_path / "c", seed=1, **kwargs))


def test_assets_are_content_addressed_and_index_lines_resolve(tmp_path):
    folder = generate(tmp_path / "in", task="training", object_type="detection", fmt="ark")
    mapper = PathMapper(in_dir=folder)
    assets = sorted((folder / "assets").rglob("*.jpg"))
    assert len(assets) == 12
    for asset in assets:
        digest = hashlib.sha1(asset.read_bytes()).hexdigest()
        assert asset.name == f"{digest}.jpg" and asset.parent.name == digest[-2:]
    train = (folder / "train-index.tsv").read_text().splitlines()
    val = (folder / "val-index.tsv").read_text().splitlines()
    assert (len(train), len(val)) == (8, 4)
    for line in train + val:
        image, annotation = line.split("\t")
        assert image.startswith("/in/assets/") and annotation.startswith("/in/annotations/")
        assert mapper.host(image).is_file() and mapper.host(annotation).is_file()
    assert {mapper.host(line.split("\t")[0]) for line in train + val} == set(assets)
    assert sum(1 for p in (folder / "annotations").rglob("*.txt") if not p.read_text()) == 1  # one negative


@pytest.mark.parametrize("task", TASKS)
@pytest.mark.parametrize(("object_type", "fmt"), OBJECT_FORMATS)
def test_every_combination(tmp_path, task, object_type, fmt):
    folder = generate(tmp_path / "in", task=task, object_type=object_type, fmt=fmt, images=4)
    env = yaml.safe_load((folder / "env.yaml").read_text())
    config = yaml.safe_load((folder / "config.yaml").read_text())
    training = task == "training"
    assert env["protocol_version"] == "1.1.0" and env["task_id"] == config["task_id"]
    assert (env["run_training"], env["run_mining"], env["run_infer"]) == (
        training, "mining" in task, "infer" in task)
    assert env["input"]["root_dir"] == "/in" and env["output"]["monitor_file"] == "/out/monitor.txt"
    assert env["input"]["training_index_file"] == ("/in/train-index.tsv" if training else "")
    assert env["input"]["candidate_index_file"] == ("" if training else "/in/candidate-index.tsv")
    assert config["class_names"] == CLASSES and config["gpu_id"] == "" and config["gpu_count"] == 0
    assert config["object_type"] == {"detection": 2, "rotated": 2, "semantic": 3, "instance": 4}[object_type]
    mapper = PathMapper(in_dir=folder)
    if training:
        seg = object_type in ("semantic", "instance")
        assert config["export_format"] == ("seg-coco:raw" if seg else f"{fmt}:raw")
        assert "run_mining" not in config and not (folder / "candidate-index.tsv").exists()
        ds = load_dataset(env["input"]["training_index_file"], env["input"]["val_index_file"], mapper,
                          config["class_names"], config["export_format"])
        assert (len(ds.train), len(ds.val)) == (2, 2)
        assert sum(len(r.objects) for r in ds.train + ds.val) == _raw_object_count(folder, fmt) > 0
    else:
        assert (config["run_mining"], config["run_infer"]) == ("mining" in task, "infer" in task)
        assert "export_format" not in config and not (folder / "annotations").exists()
        candidates = (folder / "candidate-index.tsv").read_text().splitlines()
        assert len(candidates) == 4 and all(mapper.host(c).is_file() for c in candidates)


def test_coco_segmentation_kinds(tmp_path):
    def coco(object_type):
        folder = generate(tmp_path / object_type, task="training", object_type=object_type, fmt="coco",
                          images=6)
        return json.loads((folder / "annotations/coco-annotations.json").read_text())

    detection, instance, semantic = coco("detection"), coco("instance"), coco("semantic")
    assert [img["id"] for img in detection["images"]] == [1, 2, 3, 4, 5, 6]
    names = [img["file_name"] for img in detection["images"]]
    assert names == sorted(names) and all(n.endswith(".jpg") and "/" not in n for n in names)
    assert [c["id"] for c in detection["categories"]] == [0, 1, 2]
    assert [c["name"] for c in detection["categories"]] == CLASSES
    assert all(a["segmentation"] == {} and a["area"] == a["bbox"][2] * a["bbox"][3]
               for a in detection["annotations"])
    for ann in instance["annotations"]:
        (polygon,) = ann["segmentation"]
        assert len(polygon) >= 6 and len(polygon) % 2 == 0
    for ann in semantic["annotations"]:
        rle = ann["segmentation"]
        assert isinstance(rle["counts"], str)
        assert int(mask_utils.area(rle)) == ann["area"] > 0
        assert [int(v) for v in mask_utils.toBbox(rle)] == ann["bbox"]
    # same seed: the three object types draw the same shapes
    assert [a["bbox"] for a in detection["annotations"]] == [a["bbox"] for a in semantic["annotations"]]


def test_categories_list_only_present_classes(tmp_path):
    folder = generate(tmp_path / "in", task="training", object_type="detection", fmt="coco", images=4,
                      class_names=[f"c{i}" for i in range(20)])
    data = json.loads((folder / "annotations/coco-annotations.json").read_text())
    present = sorted({a["category_id"] for a in data["annotations"]})
    assert [c["id"] for c in data["categories"]] == present and 0 < len(present) <= 12


def test_models_and_extra_config(tmp_path):
    weights = tmp_path / "weights"
    weights.mkdir()
    (weights / "best.pt").write_bytes(b"w")
    (weights / "config.py").write_text("x = 1\n")
    for task, key in (("training", "pretrained_model_params"), ("mining", "model_params_path")):
        folder = generate(tmp_path / task, task=task, object_type="detection", fmt="ark", images=4,
                          models={"epoch_3": weights}, extra_config={"epochs": 2, "gpu_id": "0"})
        config = yaml.safe_load((folder / "config.yaml").read_text())
        assert config[key] == ["/in/models/epoch_3/best.pt", "/in/models/epoch_3/config.py"]
        assert (folder / "models/epoch_3/best.pt").read_bytes() == b"w"
        assert config["epochs"] == 2 and config["gpu_id"] == "0"


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"object_type": "semantic", "fmt": "ark"}, "needs fmt 'coco'"),
    ({"task": "train"}, "task 'train'"),
    ({"fmt": "yolo"}, "fmt 'yolo'"),
    ({"images": 3}, "too few"),
])
def test_invalid_arguments(tmp_path, kwargs, message):
    args = {"task": "training", "object_type": "detection", "fmt": "ark", **kwargs}
    with pytest.raises(ValueError, match=message):
        generate(tmp_path, **args)
