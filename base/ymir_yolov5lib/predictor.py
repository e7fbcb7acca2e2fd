"""Batched YOLOv5 inference: letterbox, one forward pass, NMS, boxes back in image pixels.

The same pass can return ALDD's dense maps: the Detect head's raw per-level outputs
``[B, A, h, w, 5 + C (+ mask coefficients)]`` become ``sigmoid(obj) * sigmoid(cls)`` maps shaped
``[A, C, h, w]``. It can also return each image's pooled features (``want=FEATURES``): the outputs
of the backbone levels the neck reads (P3, P4 and SPPF's P5 in the v6+ architectures), each
averaged over the letterboxed map and scaled to unit length, concatenated; forward hooks that
exist only during that pass catch them. Several levels, because on a briefly trained model the
deepest one alone hardly tells near-duplicates from unrelated images (measured on the derived
Fashion-MNIST pool: a near-copy was the nearest neighbour of 43 % of the images with P5 alone,
64 % with the three levels, cosines centred on the pool as the diversity re-ranking takes them).
The YOLOv5-seg predictor (segment_predictor.py) shares everything but the post-processing.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import torch

from ymir_base.engine.backend import Predictor, model_class_names
from ymir_base.engine.device import forward_batch, select_device
from ymir_base.errors import ModelError
from ymir_base.prediction import AUGMENTED_PREDICT, BOXES, DENSE_CLASS_PROBS, FEATURES, Prediction
from ymir_base.protocol.context import TaskContext
from ymir_yolov5lib import runtime, trust
from ymir_yolov5lib.head_fit import checkpoint_classes

LOG = logging.getLogger(__name__)
MAX_DET = 300


class Yolov5Predictor(Predictor):
    capabilities = frozenset({BOXES, DENSE_CLASS_PROBS, AUGMENTED_PREDICT, FEATURES})
    segmentation = False  # the head this predictor decodes: Detect, or Segment (YOLOv5-seg)

    def __init__(self, weights: Path, *, device: torch.device, img_size: int, conf_thres: float,
                 iou_thres: float, batch_size: int, class_names: list[str] | None = None, half: bool | None = None,
                 pin_memory: bool = False):
        runtime.prepare()
        runtime.import_yolov5()
        from yolov5.models.experimental import attempt_load
        from yolov5.models.yolo import Segment

        trust.check_checkpoint(weights)  # before anything unpickles it
        try:
            self.model = attempt_load(str(weights), device=device, fuse=True)
        except KeyError as exc:  # e.g. an OpenMMLab checkpoint: tensors, but no pickled model
            raise ModelError(f"{weights} holds no YOLOv5 model (its checkpoint has no {exc} entry)") from exc
        except Exception as exc:
            raise ModelError(f"cannot load YOLOv5 weights {weights}: {type(exc).__name__}: {exc}") from exc
        if isinstance(self.model.model[-1], Segment) != self.segmentation:
            want, got = ("YOLOv5-seg", "a detection") if self.segmentation else ("YOLOv5 detection", "a YOLOv5-seg")
            raise ModelError(f"{weights} holds {got} model; this task needs a {want} model")
        self.feature_layers = feature_layers(self.model)
        if not self.feature_layers:
            LOG.warning("%s has no architecture description (model.yaml): no pooled features for diversity", weights)
            self.capabilities = self.capabilities - {FEATURES}
        self.pin_memory = pin_memory and device.type == "cuda"
        self.device = device
        self.half = device.type == "cuda" if half is None else half
        if self.half:
            self.model.half()
        self.model.eval()
        stride = int(max(self.model.stride))
        self.img_size = max(stride, int(np.ceil(img_size / stride) * stride))
        self.conf_thres, self.iou_thres = conf_thres, iou_thres
        self.batch_size = batch_size
        model_names = checkpoint_classes(self.model)
        self.class_names = model_class_names(class_names, model_names, len(model_names))
        LOG.info("loaded %s on %s (fp16 %s), input %d px, classes %s", weights, device, self.half,
                 self.img_size, self.class_names)

    @classmethod
    def from_context(cls, ctx: TaskContext) -> Yolov5Predictor:
        cfg = ctx.config
        weights = ctx.require_model_files((".pt",))[0]
        device = select_device(ctx)
        return cls(weights, device=device, img_size=int(cfg["img_size"]),
                   conf_thres=float(cfg["conf_thres"]), iou_thres=float(cfg["iou_thres"]),
                   batch_size=forward_batch(int(cfg["batch_size_per_gpu"]), device), class_names=ctx.class_names,
                   pin_memory=bool(cfg.get("pin_memory", False)))

    def _shape(self, img: np.ndarray) -> tuple[int, int]:
        """The smallest stride-aligned rectangle holding the image scaled to img_size (detect's
        'rect' inference): a 640x480 image runs at 640x480, not padded to 640x640."""
        stride = int(max(self.model.stride))
        h, w = img.shape[:2]
        r = self.img_size / max(h, w)
        return (int(np.ceil(round(h * r) / stride) * stride), int(np.ceil(round(w * r) / stride) * stride))

    def _preprocess(self, images: list[np.ndarray], shape: tuple[int, int]) -> tuple[torch.Tensor, list[tuple]]:
        from yolov5.utils.augmentations import letterbox

        batch, pads = [], []
        for img in images:
            boxed, ratio, pad = letterbox(img, shape, auto=False, scaleup=True)
            batch.append(np.ascontiguousarray(boxed.transpose(2, 0, 1)))
            pads.append((ratio, pad))
        x = torch.from_numpy(np.stack(batch))
        if self.pin_memory:  # page-locked: the copy to the GPU runs asynchronously
            x = x.pin_memory()
        x = x.to(self.device, non_blocking=True)
        x = (x.half() if self.half else x.float()) / 255.0
        return x, pads

    @torch.inference_mode()
    def predict(self, images: list[np.ndarray], *, want: frozenset[str] = frozenset()) -> list[Prediction]:
        """Images of the same letterboxed shape share a forward pass, at most batch_size at a time."""
        out: list[Prediction | None] = [None] * len(images)
        for shape, indices in self._by_shape(images).items():
            for start in range(0, len(indices), self.batch_size):
                chunk = indices[start:start + self.batch_size]
                for i, pred in zip(chunk, self._forward([images[i] for i in chunk], shape, want), strict=True):
                    out[i] = pred
        return [p for p in out if p is not None]

    def _by_shape(self, images: list[np.ndarray]) -> dict[tuple[int, int], list[int]]:
        """The indices of the images per letterboxed shape (images of one shape share forwards)."""
        groups: dict[tuple[int, int], list[int]] = {}
        for i, img in enumerate(images):
            groups.setdefault(self._shape(img), []).append(i)
        return groups

    def _forward(self, chunk: list[np.ndarray], shape: tuple[int, int], want: frozenset[str]) -> list[Prediction]:
        from yolov5.utils.general import non_max_suppression, scale_boxes

        x, pads = self._preprocess(chunk, shape)
        with self.pooled_features(FEATURES in want) as features:
            decoded, raw = self.model(x)[:2]
        dets = non_max_suppression(decoded, self.conf_thres, self.iou_thres, max_det=MAX_DET)
        maps = _dense_maps(raw, int(self.model.model[-1].nc)) if DENSE_CLASS_PROBS in want else None
        preds = []
        for i, (img, det) in enumerate(zip(chunk, dets, strict=True)):
            h, w = img.shape[:2]
            det = det.float()
            if len(det):
                det[:, :4] = scale_boxes(x.shape[2:], det[:, :4], (h, w), ratio_pad=pads[i])
            det = det.cpu().numpy()
            preds.append(Prediction(
                image_size=(h, w), boxes=det[:, :4], scores=det[:, 4], class_ids=det[:, 5].astype(np.int64),
                dense_class_probs=[m[i] for m in maps] if maps is not None else None,
                input_size=tuple(x.shape[2:]) if maps is not None else None,
                features=features[0][i] if features else None))
        return preds

    @contextmanager
    def pooled_features(self, wanted: bool) -> Iterator[list[np.ndarray]]:
        """While the block runs (and only if ``wanted``), forward hooks on the feature layers; the
        list it yields then holds, per forward, [B, D] float32: each layer's output averaged over
        its map, scaled to unit length per image, the layers concatenated."""
        caught: list[np.ndarray] = []
        if not wanted:
            yield caught
            return
        if not self.feature_layers:
            raise ModelError("this YOLOv5 model has no architecture description (model.yaml) to find its backbone")
        levels: list[torch.Tensor] = []

        def hook(module: torch.nn.Module, inputs: tuple, output: torch.Tensor) -> None:
            pooled = output.float().mean(dim=(2, 3))
            levels.append(pooled / pooled.norm(dim=1, keepdim=True).clamp_min(1e-12))
            if len(levels) == len(self.feature_layers):
                caught.append(torch.cat(levels, dim=1).cpu().numpy())
                levels.clear()

        handles = [layer.register_forward_hook(hook) for layer in self.feature_layers]
        try:
            yield caught
        finally:
            for handle in handles:
                handle.remove()


def feature_layers(model: torch.nn.Module) -> list[torch.nn.Module]:
    """The backbone layers whose outputs a yolov5 model's neck reads (``model.save`` lists every
    layer output kept for a later layer; ``model.yaml`` lists the backbone's layers first), and the
    last backbone layer (SPPF in the v6+ architectures), in forward order. Empty without that
    description."""
    spec = getattr(model, "yaml", None)
    layers = getattr(model, "model", None)
    if not isinstance(spec, dict) or not spec.get("backbone") or not isinstance(layers, torch.nn.Sequential):
        return []
    end = len(spec["backbone"]) - 1
    kept = {int(i) for i in getattr(model, "save", []) if 0 <= int(i) < end}
    return [layers[i] for i in sorted(kept | {end})]


def _dense_maps(raw: list[torch.Tensor], num_classes: int) -> list[torch.Tensor]:
    """Per level ``[B, A, C, h, w]``: objectness x class probability of every anchor (a Segment
    head's mask coefficients follow the classes and are left out)."""
    maps = []
    for level in raw:
        level = level.float()
        probs = level[..., 4:5].sigmoid() * level[..., 5:5 + num_classes].sigmoid()  # [B, A, h, w, C]
        maps.append(probs.permute(0, 1, 4, 2, 3).contiguous())
    return maps
