"""Batched YOLOv5-seg inference: the detection predictor's letterbox and batching, then yolov5's
own segment post-processing as ``segment/predict.py`` does it with ``--retina-masks``: NMS that
carries the 32 mask coefficients, boxes scaled to the original image and rounded for cropping,
``process_mask_native`` (protos x coefficients, padding cut off, upsampled to the original image
size, cropped to the box, threshold 0.5).

Boxes and masks are scaled through the shapes (as predict.py does), not the letterbox's own
padding as the detection predictor does: process_mask_native derives its padding from the shapes
too, and this way boxes and masks agree. Memory stays bounded: the masks of one image are made a
block of detections at a time (at most ``MASK_BLOCK_PIXELS`` mask pixels on the device) and each
leaves as a compressed RLE; no full-size mask outlives its block.
"""

from __future__ import annotations

import numpy as np
import torch

from ymir_base.prediction import AUGMENTED_PREDICT, BOXES, DENSE_CLASS_PROBS, Prediction
from ymir_yolov5lib.predictor import MAX_DET, Yolov5Predictor, _dense_maps

MASK_BLOCK_PIXELS = 1 << 25  # 32 Mi float32 mask pixels (128 MiB) per block


class Yolov5SegPredictor(Yolov5Predictor):
    capabilities = frozenset({BOXES, DENSE_CLASS_PROBS, AUGMENTED_PREDICT})
    segmentation = True

    def _forward(self, chunk: list[np.ndarray], shape: tuple[int, int], dense: bool) -> list[Prediction]:
        from yolov5.utils.general import non_max_suppression, scale_boxes

        x, _ = self._preprocess(chunk, shape)
        head = self.model.model[-1]
        decoded, protos, raw = self.model(x)[:3]
        dets = non_max_suppression(decoded, self.conf_thres, self.iou_thres, max_det=MAX_DET, nm=int(head.nm))
        maps = _dense_maps(raw, int(head.nc)) if dense else None
        preds = []
        for i, (img, det) in enumerate(zip(chunk, dets, strict=True)):
            h, w = img.shape[:2]
            det = det.float()
            rles: list[dict] = []
            if len(det):
                det[:, :4] = scale_boxes(x.shape[2:], det[:, :4], (h, w))
                rles = encode_masks(protos[i], det[:, 6:], det[:, :4].round(), (h, w))
            masks = np.empty(len(rles), dtype=object)
            masks[:] = rles
            det = det.cpu().numpy()
            preds.append(Prediction(
                image_size=(h, w), boxes=det[:, :4], scores=det[:, 4], class_ids=det[:, 5].astype(np.int64),
                masks=masks, dense_class_probs=[m[i] for m in maps] if maps is not None else None,
                input_size=tuple(x.shape[2:]) if maps is not None else None))
        return preds


def encode_masks(protos: torch.Tensor, coefficients: torch.Tensor, boxes: torch.Tensor,
                 image_size: tuple[int, int], block_pixels: int = MASK_BLOCK_PIXELS) -> list[dict]:
    """One compressed RLE (``{"size": [h, w], "counts": str}``) per detection, at image size,
    from yolov5's ``process_mask_native`` run on blocks of detections."""
    from pycocotools import mask as mask_utils
    from yolov5.utils.segment.general import process_mask_native

    h, w = image_size
    step = max(1, block_pixels // max(1, h * w))
    rles: list[dict] = []
    for start in range(0, len(coefficients), step):
        block = process_mask_native(protos, coefficients[start:start + step], boxes[start:start + step], (h, w))
        masks = block.to(torch.uint8).cpu().numpy()  # [n, h, w]
        del block
        for rle in mask_utils.encode(np.asfortranarray(masks.transpose(1, 2, 0))):
            rles.append({"size": [int(v) for v in rle["size"]], "counts": rle["counts"].decode("ascii")})
    return rles
