"""The batched YOLOv5-seg predictor: parity with yolov5's own segment prediction, the instance
infer-result.json through the engine, bounded mask memory and wrong-kind weights."""

from __future__ import annotations

import functools
import json
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from pycocotools import mask as mask_utils
from seglayer import CLASSES, run_infer, seg_checkpoint, seg_task

from ymir_base.data.images import read_image
from ymir_base.errors import ModelError
from ymir_base.prediction import DENSE_CLASS_PROBS
from ymir_base.sample.generator import generate
from ymir_base.verify.checks import check_infer_result


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> Path:
    return seg_checkpoint(tmp_path_factory.mktemp("seg-weights") / "best")


def predictor(weights: Path, **kwargs):
    from ymir_yolov5lib.segment_predictor import Yolov5SegPredictor

    settings = {"device": torch.device("cpu"), "img_size": 96, "conf_thres": 0.25, "iou_thres": 0.45,
                "batch_size": 4, "class_names": CLASSES} | kwargs
    return Yolov5SegPredictor(weights, **settings)


@functools.cache
def upstream_model(weights: Path):
    from yolov5.models.common import DetectMultiBackend

    return DetectMultiBackend(str(weights), device=torch.device("cpu"), fp16=False)


def upstream_prediction(weights: Path, image_file: Path, img_size: int, conf: float, iou: float):
    """yolov5's segment/predict.py with --retina-masks, step by step, one image at a time:
    (rounded boxes, scores, classes, masks [n, H, W])."""
    from yolov5.utils.dataloaders import LoadImages
    from yolov5.utils.general import non_max_suppression, scale_boxes
    from yolov5.utils.segment.general import process_mask_native

    model = upstream_model(weights)
    _, im, im0, _, _ = next(iter(LoadImages(str(image_file), img_size=[img_size, img_size], stride=model.stride,
                                            auto=model.pt)))
    im = torch.from_numpy(im).float()[None] / 255
    with torch.inference_mode():
        pred, proto = model(im)[:2]
        det = non_max_suppression(pred, conf, iou, max_det=300, nm=32)[0]
        det[:, :4] = scale_boxes(im.shape[2:], det[:, :4], im0.shape).round()
        masks = torch.zeros((0, *im0.shape[:2]))  # predict.py makes masks only for an image with detections
        if len(det):
            masks = process_mask_native(proto[0], det[:, 6:], det[:, :4], im0.shape[:2])
    return det[:, :4].numpy(), det[:, 4].numpy(), det[:, 5].numpy().astype(int), masks.numpy().astype(np.uint8)


# (images, their size, img_size, our batch, conf, detections at least): the sample's small
# images, and camera-sized ones whose letterbox pads (640x480 at 320 runs at 320x256) with their
# masks made at 640x480 (a higher conf keeps that to some 75 masks)
EDGE = np.ones((3, 3), np.uint8)  # the one-pixel band on each side of a mask's boundary
PARITY_CASES = [(6, (160, 128), 96, 4, 0.3, 20), (4, (640, 480), 320, 2, 0.4, 50)]


@pytest.mark.parametrize(("images", "size", "img_size", "batch", "conf", "least"), PARITY_CASES)
def test_batched_masks_and_boxes_match_yolov5s_own_segment_prediction(tmp_path, checkpoint, images, size, img_size,
                                                                       batch, conf, least):
    in_dir = generate(tmp_path / "in", task="infer", object_type="instance", fmt="coco", images=images, size=size)
    files = [in_dir / line.removeprefix("/in/") for line in (in_dir / "candidate-index.tsv").read_text().split()]
    # both orientations: a forward pass per shape, in batches
    ours = predictor(checkpoint, conf_thres=conf, img_size=img_size, batch_size=batch).predict(
        [read_image(f) for f in files])
    compared = 0
    for f, pred in zip(files, ours, strict=True):
        boxes, scores, classes, masks = upstream_prediction(checkpoint, f, img_size, conf, 0.45)
        assert len(pred) == len(boxes)
        np.testing.assert_allclose(pred.scores, scores, atol=1e-4)
        assert (pred.class_ids == classes).all()
        np.testing.assert_allclose(pred.boxes, boxes, atol=0.5 + 1e-3)  # theirs rounded, ours not
        for rle, mask in zip(pred.masks, masks, strict=True):
            assert rle["size"] == list(mask.shape)
            mine = mask_utils.decode({"size": rle["size"], "counts": rle["counts"].encode()})
            # random weights leave the mask logits near 0: float differences between batched and
            # one-image convolutions (which also differ between CPUs' kernels) flip pixels where the
            # probability crosses 0.5, on the mask's edge only; a shift or a wrong crop flips more
            edge = cv2.dilate(mask, EDGE).astype(bool) & ~cv2.erode(mask, EDGE).astype(bool)
            diff = mine != mask
            assert not (diff & ~edge).any() and diff.sum() <= max(2, 0.2 * edge.sum())
            compared += 1
    assert compared >= least


def test_infer_writes_instance_result_through_the_engine(tmp_path, checkpoint):
    ctx, in_dir, out_dir = seg_task(tmp_path, "infer", images=5, models={"best": checkpoint.parent},
                                    overrides={"img_size": 64, "conf_thres": 0.4, "batch_size_per_gpu": 2})
    run_infer(ctx)
    candidates = (in_dir / "candidate-index.tsv").read_text().split()
    result = out_dir / "infer-result.json"
    assert check_infer_result(result, candidates, CLASSES, kind="instance") == []
    data = json.loads(result.read_text())
    sizes = {image["id"]: [image["height"], image["width"]] for image in data["images"]}
    assert data["annotations"]
    for ann in data["annotations"]:
        assert ann["iscrowd"] == 0 and ann["confidence"] >= 0.4
        assert ann["segmentation"]["size"] == sizes[ann["image_id"]]  # original image size


def test_mask_blocks_bound_memory_without_changing_masks(checkpoint):
    from ymir_yolov5lib.segment_predictor import encode_masks

    torch.manual_seed(1)
    protos, coefficients = torch.randn(32, 24, 32), torch.randn(7, 32)
    boxes = torch.tensor([[0, 0, 100, 80], [10, 5, 60, 40]] * 3 + [[50, 50, 128, 96]], dtype=torch.float32)
    whole = encode_masks(protos, coefficients, boxes, (96, 128))
    assert encode_masks(protos, coefficients, boxes, (96, 128), block_pixels=96 * 128 * 2) == whole
    assert len(whole) == 7 and all(r["size"] == [96, 128] for r in whole)


def test_dense_maps_cover_classes_not_mask_coefficients(checkpoint):
    image = np.random.default_rng(0).integers(0, 255, (96, 128, 3), dtype=np.uint8)
    pred = predictor(checkpoint, img_size=64).predict([image], want=frozenset({DENSE_CLASS_PROBS}))[0]
    # a 64 x 64 input: levels of 8, 4 and 2 cells a side, 3 anchors, 3 classes
    assert [tuple(m.shape) for m in pred.dense_class_probs] == [(3, 3, 8, 8), (3, 3, 4, 4), (3, 3, 2, 2)]
    assert all(0 <= float(m.min()) and float(m.max()) <= 1 for m in pred.dense_class_probs)


def test_a_detection_model_is_refused_and_vice_versa(checkpoint, yolov5n_checkpoint):
    from ymir_yolov5lib.predictor import Yolov5Predictor

    with pytest.raises(ModelError, match="holds a detection model; this task needs a YOLOv5-seg model"):
        predictor(yolov5n_checkpoint)
    with pytest.raises(ModelError, match="holds a YOLOv5-seg model; this task needs a YOLOv5 detection model"):
        Yolov5Predictor(checkpoint, device=torch.device("cpu"), img_size=64, conf_thres=0.25, iou_thres=0.45,
                        batch_size=1)
