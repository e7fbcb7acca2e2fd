"""The task map: a rotated and a segmentation backend plug in without touching the engine, the
writers or the miners. Fake backends (no deep learning) run through `ymir-exec run` and `verify`
end to end, every output checked."""

from __future__ import annotations

import json
from importlib.metadata import EntryPoint
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pytest
import yaml
from pycocotools import mask as mask_utils

from conftest import read_monitor
from ymir_base import cli
from ymir_base.engine import registry
from ymir_base.engine.backend import Backend, Predictor
from ymir_base.errors import ErrorCode
from ymir_base.prediction import BOXES, SEMANTIC_PROBS, Prediction
from ymir_base.sample.generator import generate
from ymir_base.tasks import INSTANCE, SEMANTIC
from ymir_base.verify.checks import check_infer_result
from ymir_base.verify.pipeline import verify

PARAMS = {"training": {"epochs": {"type": "int", "default": 1}},
          "mining": {"mining_algorithm": {"type": "str", "default": "entropy", "choices": ["entropy", "random"]}},
          "infer": {"conf_threshold": {"type": "float", "default": 0.1}}}
METRICS = {"rotated": {"mAP": 0.5, "mAR": 0.25}, "semantic": {"mIoU": 0.5, "mAcc": 0.75},
           "instance": {"maskAP": 0.5, "boxAP": 0.625}}


class _FakePredictor(Predictor):
    """Objects from the image itself: its darkest and brightest quarters (deterministic)."""

    capabilities = frozenset({BOXES})

    def __init__(self, kind: str, class_names: list[str]):
        self.kind, self.class_names, self.batch_size = kind, class_names, 4
        if kind == "semantic":
            self.capabilities = frozenset({BOXES, SEMANTIC_PROBS})

    def predict(self, images: list[np.ndarray], *, want: frozenset[str] = frozenset()) -> list[Prediction]:
        return [self._one(img, want) for img in images]

    def _one(self, img: np.ndarray, want: frozenset[str]) -> Prediction:
        h, w = img.shape[:2]
        gray = img.mean(axis=2)
        if self.kind == "rotated":
            rboxes = [[w / 2, h / 2, w / 2, h / 4, 0.3], [w / 3, h / 3, 10, 6, -0.7]]
            return Prediction.from_rotated((h, w), rboxes, [0.9, 0.4], [0, 1 % len(self.class_names)])
        if self.kind == "semantic":
            labels = np.full((h, w), -1, np.int64)
            labels[gray > np.percentile(gray, 75)] = 0
            labels[gray < np.percentile(gray, 25)] = len(self.class_names) - 1
            probs = None
            if SEMANTIC_PROBS in want:  # background + the classes, at half resolution
                small = labels[::2, ::2] + 1
                probs = np.full((len(self.class_names) + 1, *small.shape), 0.1, np.float32)
                np.put_along_axis(probs, small[None], 0.9, axis=0)
                probs /= probs.sum(axis=0, keepdims=True)
            return Prediction((h, w), label_map=labels, semantic_probs=probs)
        masks = [gray > np.percentile(gray, 90), gray < np.percentile(gray, 10)]
        rles = [mask_utils.encode(np.asfortranarray(m.astype(np.uint8))) for m in masks]
        boxes = [mask_utils.toBbox(r) for r in rles]
        return Prediction((h, w), boxes=[[x, y, x + bw, y + bh] for x, y, bw, bh in boxes], scores=[0.8, 0.6],
                          class_ids=[0, len(self.class_names) - 1], masks=rles)


class _FakeBackend(Backend):
    kind_names: ClassVar[dict[int, str]] = {}

    def train(self, ctx, dataset, monitor, result) -> None:
        from torch.utils.tensorboard import SummaryWriter

        kind = self.kind_for(ctx.object_type).name
        folder = result.stage_dir("best")
        (folder / "model.json").write_text(json.dumps({"kind": kind, "classes": ctx.class_names}))
        writer = SummaryWriter(str(ctx.tensorboard_dir))
        writer.add_scalar("loss", 1.0, 1)
        writer.close()
        result.add_stage("best", ["model.json"], METRICS[kind])

    def predictor(self, ctx) -> Predictor:
        model = json.loads(ctx.require_model_files((".json",))[0].read_text())
        return _FakePredictor(model["kind"], model["classes"])


class FakeRotated(_FakeBackend):
    name = "fake-rotated"
    kinds = ("rotated",)


class FakeSeg(_FakeBackend):
    name = "fake-seg"
    kinds = ("semantic", "instance")


def _img_man(root: Path, kinds: list[Any]) -> Path:
    folder = root / "img-man"
    types = [k.object_type for k in kinds]
    folder.mkdir(parents=True)
    (folder / "manifest.yaml").write_text(yaml.safe_dump({"object_type": types[0] if len(types) == 1 else types}))
    for kind in kinds:
        sub = folder / kind.template_dir if len(types) > 1 else folder
        sub.mkdir(exist_ok=True)
        for task, params in PARAMS.items():
            (sub / f"{task}-template.yaml").write_text(yaml.safe_dump({k: v["default"] for k, v in params.items()}))
    (root / "params.yaml").write_text(yaml.safe_dump(PARAMS))
    return folder


@pytest.fixture
def fakes(tmp_path_factory, monkeypatch):
    declared = dict(registry._declared())
    for cls in (FakeRotated, FakeSeg):
        root = tmp_path_factory.mktemp(cls.name)
        monkeypatch.setattr(cls, "img_man_dir", _img_man(root, cls.served()), raising=False)
        monkeypatch.setattr(cls, "params_file", root / "params.yaml", raising=False)
        declared[cls.name] = EntryPoint(cls.name, f"{__name__}:{cls.__name__}", registry.GROUP)
    monkeypatch.setattr(registry, "_declared", lambda: declared)


@pytest.mark.parametrize(("image", "object_type"), [("fake-rotated", 2), ("fake-seg", 3), ("fake-seg", 4)])
def test_verify_passes_for_every_served_kind(tmp_path, fakes, image, object_type):
    report = verify(image, tmp_path, images=8, object_type=object_type)
    assert report.ok, [line for line in report.lines if not line[0]]
    assert len(report.lines) == 2 * 5 + 1 + 1 + 2 + 2  # 5 tasks x (exit, monitor) + the result checks
    if object_type == 2:
        boxes = json.loads((tmp_path / "infer/out/infer-result.json").read_text())["detection"]
        assert all("rotate_angle" in b["box"] for entry in boxes.values() for b in entry["boxes"])
    else:
        data = json.loads((tmp_path / "infer/out/infer-result.json").read_text())
        assert data["annotations"] and {a["iscrowd"] for a in data["annotations"]} == {int(object_type == 3)}


def test_ymir_exec_run_writes_the_kinds_result(tmp_path, fakes):
    in_dir, out_dir = tmp_path / "in", tmp_path / "out"
    generate(in_dir, task="training", object_type="instance", fmt="coco", images=6)
    assert cli.main(["run", "fake-seg", "--in", str(in_dir), "--out", str(out_dir)]) == 0
    result = yaml.safe_load((out_dir / "models/result.yaml").read_text())
    assert result["maskAP"] == 0.5 and result["model_stages"]["best"]["boxAP"] == 0.625
    infer_in, infer_out = tmp_path / "infer-in", tmp_path / "infer-out"
    generate(infer_in, task="mining+infer", object_type="instance", fmt="coco", images=5,
             models={"best": out_dir / "models" / "best"})
    (infer_in / "assets" / "zz").mkdir()
    bad = infer_in / "assets" / "zz" / "broken.jpg"
    bad.write_bytes(b"not an image")
    with open(infer_in / "candidate-index.tsv", "a") as f:
        f.write("/in/assets/zz/broken.jpg\n")
    assert cli.main(["run", "fake-seg", "--in", str(infer_in), "--out", str(infer_out)]) == 0
    candidates = (infer_in / "candidate-index.tsv").read_text().split()
    assert check_infer_result(infer_out / "infer-result.json", candidates, ["circle", "square", "triangle"],
                              "instance") == []
    data = json.loads((infer_out / "infer-result.json").read_text())
    broken = next(i for i in data["images"] if i["file_name"] == "broken.jpg")
    assert not [a for a in data["annotations"] if a["image_id"] == broken["id"]]


def test_a_type_the_image_does_not_serve_fails_with_300005(tmp_path, fakes):
    in_dir, out_dir = tmp_path / "in", tmp_path / "out"
    generate(in_dir, task="training", object_type="semantic", fmt="coco", images=6)
    assert cli.main(["run", "fake-rotated", "--in", str(in_dir), "--out", str(out_dir)]) == 1
    state, code, text = read_monitor(out_dir)
    assert (state, code) == (4, ErrorCode.OBJECT_TYPE)
    assert "'object_type': 3 is not supported by this image (supported: 2" in text


def test_segmentation_shards_merge_with_ids_renumbered():
    masks = [np.zeros((6, 8), bool) for _ in range(3)]
    masks[0][1:3, 1:4] = True
    masks[1][2:5, 5:7] = True
    masks[2][0:1, 0:8] = True
    preds = [Prediction((6, 8), boxes=[[0, 0, 1, 1]], scores=[0.5], class_ids=[0],
                        masks=[mask_utils.encode(np.asfortranarray(m.astype(np.uint8)))]) for m in masks]
    writer = INSTANCE.writer
    shard_a = {"a.jpg": writer.entry(preds[0], ["c"]), "c.jpg": writer.entry(preds[2], ["c"])}
    shard_b = {"b.jpg": writer.entry(preds[1], ["c"]), "d.jpg": writer.entry(None, ["c"])}
    merged = json.loads(json.dumps({**shard_a, **shard_b}))  # through the shard files' JSON
    doc = writer.document({n: merged[n] for n in ("a.jpg", "b.jpg", "c.jpg", "d.jpg")}, ["c"])
    assert [i["id"] for i in doc["images"]] == [1, 2, 3, 4]
    assert [(a["id"], a["image_id"], a["area"], a["bbox"]) for a in doc["annotations"]] == [
        (1, 1, 6, [1, 1, 3, 2]), (2, 2, 6, [5, 2, 2, 3]), (3, 3, 8, [0, 0, 8, 1])]
    assert doc["categories"] == [{"id": 0, "name": "c", "supercategory": "none"}]


def test_semantic_writer_gives_one_crowd_annotation_per_class_and_skips_unknown_labels():
    labels = np.array([[0, 0, 1], [2, -1, 1]])
    entry = SEMANTIC.writer.entry(Prediction((2, 3), label_map=labels), ["a", "b"])
    assert [(a["category_id"], a["area"], a["iscrowd"]) for a in entry["annotations"]] == [(0, 2, 1), (1, 2, 1)]
    assert all("confidence" not in a for a in entry["annotations"])
    decoded = mask_utils.decode({"size": [2, 3], "counts": entry["annotations"][1]["segmentation"]["counts"]})
    assert decoded.tolist() == [[0, 0, 1], [0, 0, 1]]


def test_a_mask_of_the_wrong_size_is_refused():
    rle = mask_utils.encode(np.asfortranarray(np.ones((4, 4), np.uint8)))
    pred = Prediction((5, 5), boxes=[[0, 0, 4, 4]], scores=[0.9], class_ids=[0], masks=[rle])
    with pytest.raises(ValueError, match="mask of size"):
        INSTANCE.writer.entry(pred, ["c"])


@pytest.mark.parametrize(("fmt", "export_format"), [("coco", "coco:raw"), ("coco", "seg-coco:raw")])
def test_a_rotated_image_refuses_coco_exports_naming_ark_and_voc(tmp_path, fakes, fmt, export_format):
    in_dir, out_dir = tmp_path / "in", tmp_path / "out"
    generate(in_dir, task="training", object_type="rotated", fmt=fmt, images=6,
             extra_config={"export_format": export_format})
    assert cli.main(["run", "fake-rotated", "--in", str(in_dir), "--out", str(out_dir)]) == 1
    state, code, text = read_monitor(out_dir)
    assert (state, code) == (4, ErrorCode.CONFIG)
    assert "drops rotate_angle" in text and "ark:raw" in text and "voc:raw" in text
    assert not (out_dir / "models" / "result.yaml").exists()


def test_a_segmentation_task_refuses_ark_exports(tmp_path, fakes):
    in_dir, out_dir = tmp_path / "in", tmp_path / "out"
    generate(in_dir, task="training", object_type="semantic", fmt="coco", images=6,
             extra_config={"export_format": "ark:raw"})
    assert cli.main(["run", "fake-seg", "--in", str(in_dir), "--out", str(out_dir)]) == 1
    state, code, text = read_monitor(out_dir)
    assert (state, code) == (4, ErrorCode.CONFIG) and "seg-coco:raw" in text
