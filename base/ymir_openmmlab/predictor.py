"""Batched inference of an OpenMMLab detector: the model's own test pipeline and data
preprocessor, one forward pass per batch, the head's own box decoding and NMS.

The same pass gives ALDD its dense maps: the head's per-level class logits ``[B, A*C, h, w]``
(times the objectness of the heads that have it, see heads.py) become probability maps
``[A, C, h, w]`` per image, and on request (``want=FEATURES``) each image's pooled features: every
level of ``extract_feat``'s output averaged over its map (padding included), scaled to unit length,
the levels concatenated (the deepest level alone hardly tells near-duplicates apart on a briefly
trained model; see ymir_yolov5lib/predictor.py for the measurement).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import torch
from mmengine.config import Config

from ymir_base.engine.backend import Predictor, model_class_names
from ymir_base.engine.device import forward_batch, select_device
from ymir_base.errors import ConfigError, ModelError
from ymir_base.prediction import AUGMENTED_PREDICT, BOXES, DENSE_CLASS_PROBS, FEATURES, Prediction
from ymir_base.protocol.context import TaskContext
from ymir_openmmlab import checkpoint as mmckpt
from ymir_openmmlab import config as mmcfg
from ymir_openmmlab.heads import adapter_for

LOG = logging.getLogger(__name__)


class OpenMMLabPredictor(Predictor):
    capabilities = frozenset({BOXES, DENSE_CLASS_PROBS, AUGMENTED_PREDICT, FEATURES})

    def __init__(self, cfg: Config, checkpoint: Path, *, device: torch.device, conf_threshold: float,
                 batch_size: int, class_names: list[str] | None = None, img_size: int = 0,
                 iou_threshold: float | None = None):
        from mmengine.dataset import Compose
        from mmengine.registry import init_default_scope

        self.scope = str(cfg.get("default_scope") or "mmdet")
        init_default_scope(self.scope)
        registry = mmcfg.models_registry(self.scope)
        mmcfg.strip_pretrained(cfg.model)
        mmcfg.resize(cfg, img_size)
        cfg.model.test_cfg = dict(cfg.model.get("test_cfg") or {}, score_thr=conf_threshold)
        if iou_threshold is not None:  # the images whose parameters have one (mmrotate)
            nms = cfg.model.test_cfg.get("nms")
            if not isinstance(nms, dict):
                raise ConfigError("config key 'iou_threshold': the model's config has no test_cfg.nms to set it in")
            nms["iou_threshold"] = iou_threshold
        ckpt = mmckpt.load(checkpoint)  # weights_only: before anything else reads the file
        try:
            self.model = registry.build(cfg.model)
            mmckpt.apply(self.model, ckpt)
        except Exception as exc:
            raise ModelError(f"cannot load the {self.scope} model {checkpoint} with its config: "
                             f"{type(exc).__name__}: {exc}") from exc
        self.device = device
        self.model.to(device).eval()
        self.pipeline = Compose(mmcfg.inference_pipeline(cfg, self.scope))
        self.batch_size = batch_size
        self.head = self.model.bbox_head
        self.adapter = adapter_for(self.head)
        self.num_classes = int(self.head.num_classes)
        meta_classes = list((ckpt.get("meta") or {}).get("dataset_meta", {}).get("classes") or [])
        self.class_names = model_class_names(class_names, meta_classes, self.num_classes)
        LOG.info("loaded %s (%s) on %s, classes %s, score threshold %s", checkpoint, type(self.model).__name__,
                 device, self.class_names, conf_threshold)

    @classmethod
    def from_context(cls, ctx: TaskContext) -> OpenMMLabPredictor:
        weights = ctx.require_model_files((".pth",))[0]
        cfg = model_config(weights, ctx.model_files((".py",)))
        mmcfg.merge_options(cfg, mmcfg.parse_cfg_options(str(ctx.config.get("cfg_options") or "")))
        c = ctx.config
        iou = c.get("iou_threshold")
        device = select_device(ctx)
        return cls(cfg, weights, device=device, conf_threshold=float(c.get("conf_threshold", 0.2)),
                   batch_size=forward_batch(int(c.get("samples_per_gpu", 8)), device), class_names=ctx.class_names,
                   img_size=int(c.get("img_size") or 0), iou_threshold=None if iou is None else float(iou))

    @torch.inference_mode()
    def predict(self, images: list[np.ndarray], *, want: frozenset[str] = frozenset()) -> list[Prediction]:
        out: list[Prediction] = []
        for start in range(0, len(images), self.batch_size):
            out += self._forward(images[start:start + self.batch_size], want)
        return out

    def network_outputs(self, chunk: list[np.ndarray]) -> tuple[torch.Tensor, list[dict], tuple[Any, ...]]:
        """One forward pass: the preprocessed batch, each image's meta info (scale, padding) and the
        head's raw outputs, i.e. everything the head's own ``predict_by_feat`` decodes."""
        inputs, metas, _, outs = self._network(chunk)
        return inputs, metas, outs

    def _network(self, chunk: list[np.ndarray]) -> tuple[torch.Tensor, list[dict], tuple[torch.Tensor, ...],
                                                         tuple[Any, ...]]:
        """network_outputs() and, third, the feature levels the head reads."""
        from mmengine.dataset import pseudo_collate
        from mmengine.registry import DefaultScope

        with DefaultScope.overwrite_default_scope(self.scope):
            # OpenMMLab pipelines read BGR, as cv2 does; the preprocessor turns it to RGB
            data = [self.pipeline({"img": np.ascontiguousarray(img[..., ::-1]), "img_id": i})
                    for i, img in enumerate(chunk)]
        batch = self.model.data_preprocessor(pseudo_collate(data), False)
        inputs = batch["inputs"]
        feats = self.model.extract_feat(inputs)
        feats = (feats,) if isinstance(feats, torch.Tensor) else tuple(feats)
        return inputs, [s.metainfo for s in batch["data_samples"]], feats, self.head(feats)

    def _forward(self, chunk: list[np.ndarray], want: frozenset[str]) -> list[Prediction]:
        inputs, metas, feats, outs = self._network(chunk)
        results = self.adapter.decode(self.head, outs, metas)
        maps = self.adapter.class_maps(outs, self.num_classes) if DENSE_CLASS_PROBS in want else None
        pooled = pooled_levels(feats) if FEATURES in want else None
        preds = []
        for i, (img, res) in enumerate(zip(chunk, results, strict=True)):
            h, w = img.shape[:2]
            # mmdet's heads give a tensor [N, 4]; mmrotate's a RotatedBoxes [N, 5] (cx, cy, w, h,
            # angle in radians, the angle turning the w side clockwise on screen, as YMIR reads it)
            bboxes = res.bboxes.tensor if hasattr(res.bboxes, "tensor") else res.bboxes
            extra = {"scores": res.scores.float().cpu().numpy(), "class_ids": res.labels.cpu().numpy().astype(np.int64),
                     "dense_class_probs": [m[i] for m in maps] if maps is not None else None,
                     "input_size": tuple(inputs.shape[2:]) if maps is not None else None,
                     "features": pooled[i] if pooled is not None else None}
            if bboxes.shape[-1] == 5:
                preds.append(Prediction.from_rotated((h, w), bboxes.double().cpu().numpy(), **extra))
                continue
            boxes = bboxes.float().cpu().numpy().reshape(-1, 4)
            boxes[:, 0::2] = boxes[:, 0::2].clip(0, w)
            boxes[:, 1::2] = boxes[:, 1::2].clip(0, h)
            preds.append(Prediction(image_size=(h, w), boxes=boxes, **extra))
        return preds


def model_config(weights: Path, config_files: list[Path]) -> Config:
    """The run config saved next to the weights; else any config of the model package; else
    the one MMEngine stored in the checkpoint's meta."""
    beside = weights.parent / "config.py"
    candidates = ([beside] if beside.is_file() else []) + list(config_files)
    if candidates:
        return mmcfg.load_config(candidates[0])
    meta = mmckpt.load(weights).get("meta") or {}
    if not meta.get("cfg"):
        raise ModelError(f"no config.py in the model package and none stored in {weights}")
    return Config.fromstring(meta["cfg"], file_format=".py")


def pooled_levels(feats: tuple[torch.Tensor, ...]) -> np.ndarray:
    """[B, D] float32: each level [B, C, h, w] averaged over its map and scaled to unit length per
    image, the levels concatenated."""
    levels = [f.float().mean(dim=(2, 3)) for f in feats]
    return torch.cat([v / v.norm(dim=1, keepdim=True).clamp_min(1e-12) for v in levels], dim=1).cpu().numpy()
