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

For the instance miners, on request (``want``):

- ``MASK_PROBS``: each detection's ``mask_probs`` = sigmoid(coefficients · prototypes) over the
  whole network input at the prototype resolution (input / 4), not cropped, and its box on that
  grid (``mask_boxes``); float32 tensors left on the model's device, for one batch at a time.
- ``CLASS_PROBS``: each detection's class sigmoids (``class_probs`` [N, C]).

Both come through yolov5's own NMS, which carries the columns after the class scores through to
the kept detections. It multiplies every column after the objectness by the objectness, the carried
ones too, so a column of ones is carried along: it comes back as the objectness, which divides
the class sigmoids and the mask coefficients back out (the binary masks and RLEs keep yolov5's
scaled coefficients: the scaling never changes a sign, i.e. a pixel's side of 0.5).

``predict_stochastic`` runs Monte-Carlo passes with DropBlock (block 7, p 0.1, as the old YMIR
maskAL port) on the outputs of the backbone's stride-2 convolutions (model indices 3, 5, 7), through
forward hooks that exist only during those passes.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
import torch
from torchvision.ops import drop_block2d

from ymir_base.prediction import (
    AUGMENTED_PREDICT,
    BOXES,
    CLASS_PROBS,
    DENSE_CLASS_PROBS,
    FEATURES,
    MASK_PROBS,
    STOCHASTIC_PREDICT,
    Prediction,
)
from ymir_yolov5lib.predictor import MAX_DET, Yolov5Predictor, _dense_maps

MASK_BLOCK_PIXELS = 1 << 25  # 32 Mi float32 mask pixels (128 MiB) per block
DROPBLOCK_LAYERS = (3, 5, 7)  # YOLOv5(-seg) backbone: the stride-2 Conv layers after the stem
DROPBLOCK_SIZE = 7
DROPBLOCK_P = 0.1


class Yolov5SegPredictor(Yolov5Predictor):
    capabilities = frozenset({BOXES, DENSE_CLASS_PROBS, AUGMENTED_PREDICT, MASK_PROBS, CLASS_PROBS,
                              STOCHASTIC_PREDICT, FEATURES})
    segmentation = True

    def _forward(self, chunk: list[np.ndarray], shape: tuple[int, int], want: frozenset[str]) -> list[Prediction]:
        x, _ = self._preprocess(chunk, shape)
        return self._decode(x, chunk, want, rle=True)

    @torch.inference_mode()
    def predict_stochastic(self, images: list[np.ndarray], iterations: int, seed: int,
                           want: frozenset[str] = frozenset()) -> list[list[Prediction]]:
        """``iterations`` passes per image with DropBlock active, each with soft masks and class
        probabilities (no RLE masks). Pass k of image j draws its DropBlock noise from
        ``SeedSequence((seed + j, k))`` alone: the same per image however images are grouped or
        batched, and the global RNG state is left as it was. The passes of the images run in
        forwards of at most ``batch_size`` passes."""
        if iterations < 1 or seed < 0:
            raise ValueError(f"predict_stochastic needs iterations >= 1 and seed >= 0, got {iterations}, {seed}")
        want = frozenset(want) | {MASK_PROBS, CLASS_PROBS}
        out: list[list[Prediction]] = [[] for _ in images]
        for shape, indices in self._by_shape(images).items():
            passes = [(j, k) for j in indices for k in range(iterations)]
            for start in range(0, len(passes), self.batch_size):
                part = passes[start:start + self.batch_size]
                unique = list(dict.fromkeys(j for j, _ in part))
                x, _ = self._preprocess([images[j] for j in unique], shape)
                x = x[[unique.index(j) for j, _ in part]]
                seeds = np.stack([np.random.SeedSequence((seed + j, k)).generate_state(len(DROPBLOCK_LAYERS), np.uint64)
                                  for j, k in part])
                with self._dropblock(seeds):
                    preds = self._decode(x, [images[j] for j, _ in part], want, rle=False)
                for (j, _), pred in zip(part, preds, strict=True):
                    out[j].append(pred)
        return out

    @contextmanager
    def _dropblock(self, seeds: np.ndarray) -> Iterator[None]:
        """DropBlock on the outputs of DROPBLOCK_LAYERS while the block runs; row s of ``seeds``
        ([B, layers]) seeds sample s of the batch at each layer. Each sample is dropped on its own
        (torchvision's drop_block2d rescales by the kept fraction of its whole input), in float32
        (that fraction's sum overflows float16)."""

        def hook_for(layer: int):
            def hook(module: torch.nn.Module, inputs: tuple, output: torch.Tensor) -> torch.Tensor:
                size = min(DROPBLOCK_SIZE, *output.shape[2:])
                size -= 1 - size % 2  # odd: drop_block2d's padding needs it
                dropped = []
                for s in range(len(output)):
                    torch.manual_seed(int(seeds[s, layer]))
                    dropped.append(drop_block2d(output[s:s + 1].float(), DROPBLOCK_P, size, training=True))
                return torch.cat(dropped).to(output.dtype)
            return hook

        devices = [torch.cuda.current_device() if self.device.index is None else self.device.index] \
            if self.device.type == "cuda" else []
        with torch.random.fork_rng(devices=devices):
            handles = []
            try:
                for layer, index in enumerate(DROPBLOCK_LAYERS):
                    handles.append(self.model.model[index].register_forward_hook(hook_for(layer)))
                yield
            finally:
                for handle in handles:
                    handle.remove()

    def _decode(self, x: torch.Tensor, chunk: list[np.ndarray], want: frozenset[str], rle: bool) -> list[Prediction]:
        """One forward of the letterboxed batch ``x`` (of the images ``chunk``) and its predictions."""
        from yolov5.utils.general import non_max_suppression, scale_boxes

        head = self.model.model[-1]
        nc, nm = int(head.nc), int(head.nm)
        with self.pooled_features(FEATURES in want) as features:
            decoded, protos, raw = self.model(x)[:3]
        soft = bool(want & {MASK_PROBS, CLASS_PROBS})
        if soft:  # carried after the mask coefficients: a column of ones and the class sigmoids
            decoded = torch.cat([decoded, torch.ones_like(decoded[..., :1]), decoded[..., 5:5 + nc]], dim=-1)
        dets = non_max_suppression(decoded, self.conf_thres, self.iou_thres, max_det=MAX_DET,
                                   nm=decoded.shape[-1] - 5 - nc)
        maps = _dense_maps(raw, nc) if DENSE_CLASS_PROBS in want else None
        input_size = tuple(x.shape[2:])
        preds = []
        for i, (img, det) in enumerate(zip(chunk, dets, strict=True)):
            h, w = img.shape[:2]
            det = det.float()
            extra = soft_outputs(det, protos[i], nm, input_size, want) if soft else {}
            if len(det):
                det[:, :4] = scale_boxes(x.shape[2:], det[:, :4], (h, w))
            masks = None
            if rle:
                rles = encode_masks(protos[i], det[:, 6:6 + nm], det[:, :4].round(), (h, w)) if len(det) else []
                masks = np.empty(len(rles), dtype=object)
                masks[:] = rles
            det = det[:, :6].cpu().numpy()
            preds.append(Prediction(
                image_size=(h, w), boxes=det[:, :4], scores=det[:, 4], class_ids=det[:, 5].astype(np.int64),
                masks=masks, dense_class_probs=[m[i] for m in maps] if maps is not None else None,
                input_size=input_size if (maps is not None or MASK_PROBS in want) else None,
                features=features[0][i] if features else None, **extra))
        return preds


def soft_outputs(det: torch.Tensor, protos: torch.Tensor, nm: int, input_size: tuple[int, int],
                 want: frozenset[str]) -> dict[str, object]:
    """``class_probs`` and/or ``mask_probs`` + ``mask_boxes`` of one image's detections ``det``
    (NMS rows: box in input pixels, conf, class, nm scaled coefficients, objectness, scaled class
    sigmoids), before their boxes are scaled to the image."""
    objectness = det[:, 6 + nm:7 + nm].clamp(min=torch.finfo(torch.float32).tiny)
    out: dict[str, object] = {}
    if CLASS_PROBS in want:
        out["class_probs"] = (det[:, 7 + nm:] / objectness).clamp(0.0, 1.0).cpu().numpy()
    if MASK_PROBS in want:
        grid_h, grid_w = protos.shape[1:]
        coefficients = det[:, 6:6 + nm] / objectness
        out["mask_probs"] = (coefficients @ protos.float().reshape(nm, -1)).sigmoid().reshape(-1, grid_h, grid_w)
        boxes = det[:, :4] * det.new_tensor([grid_w / input_size[1], grid_h / input_size[0]] * 2)
        boxes[:, 0::2] = boxes[:, 0::2].clamp(0, grid_w)
        boxes[:, 1::2] = boxes[:, 1::2].clamp(0, grid_h)
        out["mask_boxes"] = boxes
    return out


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
