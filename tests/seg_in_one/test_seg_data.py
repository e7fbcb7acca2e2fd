"""seg-coco semantic annotations -> label maps -> mmseg's own loading; the blank area, overlaps,
the bad inputs of the issue, the config names and the run config built from mmseg's configs."""

from __future__ import annotations

import json
import logging

import numpy as np
import pytest
import yaml
from pycocotools import mask as mask_utils

from conftest import read_monitor
from ymir_base.data.convert import semantic as labels
from ymir_base.data.reader import load_split
from ymir_base.data.types import ImageRecord, ObjectAnnotation
from ymir_base.engine.registry import image_spec
from ymir_base.engine.task import run_task
from ymir_base.errors import ConfigError, DatasetError, ErrorCode
from ymir_base.protocol.context import build_context
from ymir_base.protocol.paths import PathMapper
from ymir_openmmlab import config as mmcfg
from ymir_openmmlab.train import build_train_config
from ymir_seginone.models import LEGACY_NAMES, MODELS, config_choices, config_dir, model_of
from ymir_seginone.semantic import SemanticBackend, ignore_blank

CLASSES = ["circle", "square", "triangle"]
IMAGE = "seg-in-one"


def rle_of(mask: np.ndarray) -> dict:
    rle = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
    return {"size": [int(v) for v in rle["size"]], "counts": rle["counts"].decode("ascii")}


def record(objects: list[ObjectAnnotation], height: int = 20, width: int = 30) -> ImageRecord:
    return ImageRecord(asset="/in/assets/ab/x.jpg", path=__file__, width=width, height=height, objects=objects,
                       annotation="/in/annotations/coco-annotations.json")


def box(class_id: int, mask: np.ndarray) -> ObjectAnnotation:
    return ObjectAnnotation(class_id=class_id, bbox=(0, 0, 1, 1), rle=rle_of(mask), iscrowd=1)


# ---- label maps ---------------------------------------------------------------------------------
def test_rle_and_polygon_masks_paint_their_class_and_the_blank_value():
    square = np.zeros((20, 30), np.uint8)
    square[2:8, 3:9] = 1
    polygon = ObjectAnnotation(class_id=2, bbox=(20, 10, 28, 18), polygons=[[20, 10, 28, 10, 28, 18, 20, 18]])
    rec = record([box(1, square), polygon])
    blank_class = labels.label_map(rec, labels.blank_value(CLASSES, ignore_blank=False))
    assert (blank_class[2:8, 3:9] == 1).all() and (blank_class[11:17, 21:27] == 2).all()
    assert blank_class[0, 0] == len(CLASSES) and set(np.unique(blank_class)) == {1, 2, 3}
    ignored = labels.label_map(rec, labels.blank_value(CLASSES, ignore_blank=True))
    assert ignored[0, 0] == labels.IGNORE_INDEX and (ignored[2:8, 3:9] == 1).all()


def test_overlapping_classes_the_smallest_mask_wins_whatever_the_order():
    large, small = np.zeros((20, 30), np.uint8), np.zeros((20, 30), np.uint8)
    large[0:15, 0:20] = 1
    small[5:10, 5:10] = 1
    for objects in ([box(0, large), box(2, small)], [box(2, small), box(0, large)]):
        result = labels.label_map(record(objects), 3)
        assert (result[5:10, 5:10] == 2).all() and result[0, 0] == 0 and result[19, 29] == 3
    # equal areas: the higher class index wins, in either order
    left, right = np.zeros((20, 30), np.uint8), np.zeros((20, 30), np.uint8)
    left[0:10, 0:10] = 1
    right[0:10, 5:15] = 1
    for objects in ([box(1, left), box(0, right)], [box(0, right), box(1, left)]):
        assert (labels.label_map(record(objects), 3)[0:10, 5:10] == 1).all()


def test_a_mask_of_another_size_than_the_image_names_the_file():
    wrong = box(0, np.ones((10, 30), np.uint8))
    with pytest.raises(DatasetError, match=r"coco-annotations\.json image /in/assets/ab/x\.jpg: an RLE mask .*"
                                           r"size \[h, w\] \[10, 30\], but the image is \[20, 30\]"):
        labels.label_map(record([wrong]), 3)


def test_reserved_and_too_many_class_names_are_config_errors():
    with pytest.raises(ConfigError, match="reserved"):
        labels.model_classes(["a", labels.BLANK_CLASS], ignore_blank=False)
    with pytest.raises(ConfigError, match="at most 254"):
        labels.model_classes([f"c{i}" for i in range(255)], ignore_blank=True)
    assert labels.model_classes(CLASSES, ignore_blank=False) == [*CLASSES, labels.BLANK_CLASS]
    assert labels.model_classes(CLASSES, ignore_blank=True) == CLASSES


def _records(tmp_path, images: int = 8):
    in_dir = generate_training(tmp_path, images)
    mapper = PathMapper(in_dir, tmp_path / "out")
    return in_dir, load_split("/in/train-index.tsv", mapper, CLASSES, "seg-coco:raw") + \
        load_split("/in/val-index.tsv", mapper, CLASSES, "seg-coco:raw")


def generate_training(tmp_path, images: int = 8, **extra):
    from ymir_base.sample.generator import generate

    return generate(tmp_path / "in", task="training", object_type="semantic", fmt="coco", images=images,
                    extra_config=extra)


def test_label_maps_round_trip_through_mmsegs_dataset_and_annotation_loading(tmp_path):
    """Our list and PNGs, read by the run config's dataset and mmseg's LoadAnnotations, give back
    each sample shape's pixels with its class index (the sample's masks are the drawn shapes)."""
    from mmengine.registry import init_default_scope
    from mmseg.registry import DATASETS

    in_dir, records = _records(tmp_path)
    backend = SemanticBackend()
    ann = tmp_path / "val.json"
    backend.write_annotations(records, CLASSES, ann)
    cfg = mmcfg.load_config(config_dir() / MODELS["fast_scnn"])
    backend.configure_data(cfg, ann, ann, CLASSES, "mIoU")
    cfg.val_dataloader.dataset.pipeline = [dict(type="LoadImageFromFile"), dict(type="LoadAnnotations"),
                                           dict(type="PackSegInputs")]
    init_default_scope("mmseg")
    dataset = DATASETS.build(cfg.val_dataloader.dataset)
    assert len(dataset) == len(records) and dataset.metainfo["classes"] == (*CLASSES, labels.BLANK_CLASS)
    coco = json.loads((in_dir / "annotations" / "coco-annotations.json").read_text())
    by_name = {img["file_name"]: img["id"] for img in coco["images"]}
    painted = 0
    for index, rec in enumerate(records):
        sample = dataset[index]["data_samples"]
        assert sample.img_path == str(rec.path)
        gt = sample.gt_sem_seg.data[0].numpy()
        assert gt.shape == (rec.height, rec.width)
        expected = np.full(gt.shape, len(CLASSES))
        for a in coco["annotations"]:
            if a["image_id"] == by_name[rec.name]:
                expected[mask_utils.decode({**a["segmentation"], "counts": a["segmentation"]["counts"].encode()}) > 0] \
                    = a["category_id"]
                painted += 1
        np.testing.assert_array_equal(gt, expected)
    assert painted >= len(records)


def test_a_polygon_under_6_numbers_is_skipped_with_a_warning(tmp_path, caplog):
    in_dir = generate_training(tmp_path)
    path = in_dir / "annotations" / "coco-annotations.json"
    coco = json.loads(path.read_text())
    first = coco["annotations"][0]
    coco["annotations"].append({**first, "id": 999, "segmentation": [[1, 2, 3, 4]]})
    path.write_text(json.dumps(coco))
    mapper = PathMapper(in_dir, tmp_path / "out")
    with caplog.at_level(logging.WARNING):
        records = load_split("/in/train-index.tsv", mapper, CLASSES, "seg-coco:raw") + \
            load_split("/in/val-index.tsv", mapper, CLASSES, "seg-coco:raw")
    assert "fewer than 6 coordinates" in caplog.text and "999" in caplog.text
    out = tmp_path / "labels.json"
    labels.write_split(records, CLASSES, out, ignore_blank=False)  # the rest converts
    assert len(json.loads(out.read_text())["data_list"]) == len(records)


# ---- bad input through the executor: the code, the message, no result -------------------------------
def _fails(in_dir, out_dir, code, *patterns, overrides=None):
    assert run_task(IMAGE, in_dir, out_dir, overrides) == 1
    state, got, text = read_monitor(out_dir)
    assert (state, got) == (4, code), text
    for pattern in patterns:
        assert pattern in text, text
    assert not (out_dir / "models" / "result.yaml").exists()


def test_a_category_not_in_class_names_is_an_error_naming_the_file(tmp_path):
    in_dir = generate_training(tmp_path, class_names=["circle", "square"])
    (tmp_path / "out").mkdir()
    _fails(in_dir, tmp_path / "out", ErrorCode.DATASET, "coco-annotations.json", "triangle", "not in class_names")


def test_an_rle_of_the_wrong_size_is_an_error_naming_the_file_and_annotation(tmp_path):
    in_dir = generate_training(tmp_path)
    path = in_dir / "annotations" / "coco-annotations.json"
    coco = json.loads(path.read_text())
    coco["annotations"][0]["segmentation"] = rle_of(np.ones((7, 9)))
    path.write_text(json.dumps(coco))
    (tmp_path / "out").mkdir()
    _fails(in_dir, tmp_path / "out", ErrorCode.DATASET, "coco-annotations.json",
           f"annotation id {coco['annotations'][0]['id']}", "RLE size [7, 9]")


def test_an_rle_matching_a_wrong_image_entry_is_caught_against_the_real_image(tmp_path):
    """The json's own sizes agree with the mask, the image file does not: caught at conversion."""
    in_dir = generate_training(tmp_path)
    path = in_dir / "annotations" / "coco-annotations.json"
    coco = json.loads(path.read_text())
    ann = coco["annotations"][0]
    image = next(i for i in coco["images"] if i["id"] == ann["image_id"])
    image["height"], image["width"] = 7, 9
    for other in coco["annotations"]:
        if other["image_id"] == image["id"]:
            other["segmentation"], other["bbox"] = rle_of(np.ones((7, 9))), [0, 0, 9, 7]
    path.write_text(json.dumps(coco))
    (tmp_path / "out").mkdir()
    _fails(in_dir, tmp_path / "out", ErrorCode.DATASET, "coco-annotations.json", image["file_name"].split(".")[0],
           "size [h, w] [7, 9]", overrides={"max_iters": 1, "img_size": 64, "workers_per_gpu": 0})


@pytest.mark.parametrize(("task", "overrides", "code", "message"), [
    ("training", {"export_format": "ark:raw"}, ErrorCode.CONFIG, "export_format"),
    ("training", {"config_file": "configs/fastscnn/fast_scnn_lr0.12_4x8_80k_cityscapes.py"}, ErrorCode.CONFIG,
     "config_file"),
    ("training", {"cfg_options": "optim_wrapper.optimizer.lr"}, ErrorCode.CONFIG, "cfg_options"),
    ("training", {"save_least_file": False, "max_keep_ckpts": 0}, ErrorCode.CONFIG, "max_keep_ckpts"),
    ("mining", {"superpixel_algorithm": "felzenszwalb"}, ErrorCode.CONFIG, "superpixel_algorithm"),
    ("mining", {"mining_algorithm": "cald"}, ErrorCode.CONFIG, "mining_algorithm"),
])
def test_bad_options_fail_with_their_code(sample, task, overrides, code, message):
    in_dir, out_dir = sample(task, "coco", object_type="semantic")
    _fails(in_dir, out_dir, code, message, overrides={"max_iters": 1, "workers_per_gpu": 0, **overrides}
           if task == "training" else overrides)


# ---- options ------------------------------------------------------------------------------------
def test_every_config_name_selects_a_seed_model_with_an_upstream_config():
    assert len(MODELS) == 10 and set(MODELS) == set(LEGACY_NAMES)
    assert all((config_dir() / path).is_file() for path in MODELS.values())
    for key in MODELS:
        assert model_of(f"configs/{MODELS[key]}") == key == model_of(f"configs/{LEGACY_NAMES[key]}")
    schema = yaml.safe_load(SemanticBackend.params_file.read_text())
    assert schema["training"]["config_file"]["choices"] == config_choices()
    assert model_of(schema["training"]["config_file"]["default"]) == "fast_scnn"


@pytest.mark.parametrize(("config", "expected"), [
    ({}, False), ({"ignore_blank_area": True}, True), ({"ignore_blank_area": "false"}, False),
    ({"ignore_blank_area": False, "ignore_black_area": "true"}, True), ({"ignore_black_area": 1}, True),
])
def test_ignore_blank_area_accepts_the_seeds_spelling(config, expected):
    assert ignore_blank(config) is expected
    with pytest.raises(ConfigError, match="ignore_black_area"):
        ignore_blank({"ignore_black_area": "maybe"})


def _context(tmp_path, **config):
    in_dir = generate_training(tmp_path, **config)
    return build_context(image_spec(IMAGE), PathMapper(in_dir, tmp_path / "out"))


@pytest.mark.parametrize(("config", "keep"), [
    ({}, 1), ({"save_least_file": False}, -1), ({"save_least_file": False, "max_keep_ckpts": 3}, 3),
    ({"save_least_file": True, "max_keep_ckpts": 3}, 1),
])
def test_save_least_file_and_max_keep_ckpts(tmp_path, config, keep):
    assert SemanticBackend().checkpoints_to_keep(_context(tmp_path, **config)) == keep


def test_the_run_config_trains_by_iterations_on_our_label_maps(tmp_path, caplog):
    ctx = _context(tmp_path, max_iters=300, interval=50, img_size=256, samples_per_gpu=3,
                   config_file=f"configs/{LEGACY_NAMES['fcn_hr18s_40k']}")
    backend = SemanticBackend()
    work = tmp_path / "work"
    with caplog.at_level(logging.WARNING):
        cfg = build_train_config(backend, ctx, work / "train.json", work / "val.json", work, train_images=6)
    assert cfg.train_cfg.type == "IterBasedTrainLoop"
    assert (cfg.train_cfg.max_iters, cfg.train_cfg.val_interval) == (300, 50)
    assert cfg.param_scheduler[0].type == "PolyLR" and cfg.param_scheduler[0].end == 300  # 40k stretched
    assert cfg.default_hooks.checkpoint.by_epoch is False and cfg.default_hooks.checkpoint.interval == 50
    assert cfg.train_dataloader.batch_size == 3
    assert cfg.model.decode_head.num_classes == len(CLASSES) + 1  # the blank class
    assert cfg.train_dataloader.dataset.type == "YmirSegDataset"
    assert cfg.val_evaluator.type == "ProjectIoUMetric" and cfg.val_evaluator.project_classes == len(CLASSES)
    assert cfg.ymir_semantic == {"classes": CLASSES, "blank_index": len(CLASSES)}
    # sizes: the test scale's long side is img_size; the crop and the preprocessor's pad size follow
    assert mmcfg.test_size(cfg) == 256
    crop = next(t for t in cfg.train_dataloader.dataset.pipeline if t.type == "RandomCrop").crop_size
    assert tuple(crop) == (64, 128) and tuple(cfg.model.data_preprocessor.size) == (64, 128)
    # one CPU process: SyncBN becomes BN, and the log says so
    assert "SyncBN" not in str(cfg.model) and "plain BN" in caplog.text
    assert cfg.load_from is None  # no baked weights outside the image: random initialisation


def test_slide_inference_sizes_follow_the_crop(tmp_path):
    ctx = _context(tmp_path, img_size=512, cfg_options="model.test_cfg.mode=slide")
    cfg = mmcfg.load_config(config_dir() / MODELS["fast_scnn"])
    cfg.model.test_cfg = dict(mode="slide", crop_size=(512, 1024), stride=(256, 512))
    mmcfg.resize(cfg, 512)
    SemanticBackend().adapt_config(cfg, ctx, 100)
    assert tuple(cfg.model.test_cfg.crop_size) == (128, 256) and tuple(cfg.model.test_cfg.stride) == (64, 128)


def test_templates_are_read_from_the_semantic_folder(tmp_path):
    spec = image_spec(IMAGE)
    assert spec.object_types == [2, 3, 4] and spec.per_type_templates
    assert spec.template_dir(3).name == "semantic-seg"
    assert spec.template("training", 3)["config_file"] == "configs/fastscnn/fast_scnn_lr0.12_8x4_160k_cityscapes.py"
