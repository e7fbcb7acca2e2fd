"""Batched semantic segmentation through the model's own test pipeline, data preprocessor and
``inference`` (whole-image or sliding-window, as the config's ``test_cfg.mode`` says).

mmseg's preprocessor stacks a test batch without padding, so every forward pass holds images of
one input size: a batch is split into groups of equal size after the pipeline's resize. The label
map of an image is what mmseg's ``postprocess_result`` gives (padding removed, logits resized to
the original size, argmax), with the training-only blank class (labels.BLANK_CLASS) as -1.
``semantic_probs`` (asked for by miners) follow the mining contract: the softmax over all the
model's channels at the logits' resolution without padding, never larger than the original image
nor above MAX_PROBS_SIDE on its longest side, same aspect ratio. ``features`` (asked for by the
diversity re-ranking) are the backbone's last (coarsest) output averaged over its map, caught by a
forward hook during the same pass; in sliding-window mode, the mean of the windows' averages.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from mmengine.config import Config

from ymir_base.data.convert.semantic import BLANK_CLASS
from ymir_base.engine.backend import Predictor, model_class_names
from ymir_base.engine.device import forward_batch, select_device
from ymir_base.errors import ModelError
from ymir_base.prediction import FEATURES, SEMANTIC_PROBS, Prediction
from ymir_base.protocol.context import TaskContext
from ymir_openmmlab import checkpoint as mmckpt
from ymir_openmmlab import config as mmcfg
from ymir_openmmlab.predictor import model_config

LOG = logging.getLogger(__name__)
MAX_PROBS_SIDE = 1024
SEMANTIC_KEY = "ymir_semantic"  # the run config's note of the project classes and the blank class


class SemanticPredictor(Predictor):
    capabilities = frozenset({SEMANTIC_PROBS, FEATURES})

    def __init__(self, cfg: Config, checkpoint: Path, *, device: torch.device, batch_size: int,
                 class_names: list[str] | None = None, fp16: bool = False):
        from mmengine.dataset import Compose
        from mmengine.registry import init_default_scope
        from mmseg.registry import MODELS

        init_default_scope("mmseg")
        mmcfg.strip_pretrained(cfg.model)
        cfg.model.train_cfg = None
        ckpt = mmckpt.load(checkpoint)  # weights_only: before anything else reads the file
        try:
            self.model = MODELS.build(cfg.model)
            mmckpt.apply(self.model, ckpt, logger="silent")
        except Exception as exc:
            raise ModelError(f"cannot load the mmseg model {checkpoint} with its config: "
                             f"{type(exc).__name__}: {exc}") from exc
        self.device = device
        self.model.to(device).eval()
        self.fp16 = fp16 and device.type == "cuda"
        self.pipeline = Compose(test_pipeline(cfg))
        self.batch_size = batch_size
        self.num_channels = int(self.model.decode_head.out_channels)
        meta_classes = [str(c) for c in (ckpt.get("meta") or {}).get("dataset_meta", {}).get("classes") or []]
        self.blank_index = blank_index(cfg, meta_classes, self.num_channels)
        project = self.num_channels - (self.blank_index is not None)
        noted = list((cfg.get(SEMANTIC_KEY) or {}).get("classes") or meta_classes[:project])
        self.class_names = model_class_names(class_names, noted, project)
        LOG.info("loaded %s (%s, test mode %s) on %s, classes %s%s", checkpoint, type(self.model).__name__,
                 self.model.test_cfg.get("mode", "whole"), device, self.class_names,
                 ", plus the training-only blank class" if self.blank_index is not None else "")

    @classmethod
    def from_context(cls, ctx: TaskContext) -> SemanticPredictor:
        weights = ctx.require_model_files((".pth",))[0]
        cfg = model_config(weights, ctx.model_files((".py",)))
        mmcfg.merge_options(cfg, mmcfg.parse_cfg_options(str(ctx.config.get("cfg_options") or "")))
        device = select_device(ctx)
        batch = forward_batch(int(ctx.config.get("samples_per_gpu", 2)), device)
        return cls(cfg, weights, device=device, batch_size=batch,
                   class_names=ctx.class_names, fp16=bool(ctx.config.get("fp16", False)))

    @torch.inference_mode()
    def predict(self, images: list[np.ndarray], *, want: frozenset[str] = frozenset()) -> list[Prediction]:
        out: list[Prediction | None] = [None] * len(images)
        for start in range(0, len(images), self.batch_size):
            for index, pred in self._forward(images[start:start + self.batch_size], want):
                out[start + index] = pred
        return [p for p in out if p is not None]

    def seg_logits(self, chunk: list[np.ndarray], features: bool = False
                   ) -> Iterator[tuple[list[int], torch.Tensor, list[dict], np.ndarray | None]]:
        """Per group of images of one input size: their indices in ``chunk``, the model's logits
        [B, K, h, w] (input size, padding included), their meta info and, if ``features``, their
        pooled features [B, D]."""
        from mmengine.dataset import pseudo_collate
        from mmengine.registry import DefaultScope

        with DefaultScope.overwrite_default_scope("mmseg"):
            # OpenMMLab pipelines read BGR, as cv2 does; the preprocessor turns it to RGB
            data = [self.pipeline({"img": np.ascontiguousarray(img[..., ::-1])}) for img in chunk]
        groups: dict[tuple[int, ...], list[int]] = {}
        for i, item in enumerate(data):
            groups.setdefault(tuple(item["inputs"].shape), []).append(i)
        for indices in groups.values():
            batch = self.model.data_preprocessor(pseudo_collate([data[i] for i in indices]), False)
            metas = [s.metainfo for s in batch["data_samples"]]
            autocast = torch.autocast("cuda", dtype=torch.float16) if self.fp16 else contextlib.nullcontext()
            with autocast, self._pooled_backbone(features) as caught:
                logits = self.model.inference(batch["inputs"], metas)
            yield indices, logits.float(), metas, np.mean(caught, axis=0) if caught else None

    @contextlib.contextmanager
    def _pooled_backbone(self, wanted: bool) -> Iterator[list[np.ndarray]]:
        """While the block runs (and only if ``wanted``), a forward hook on the backbone: the list
        it yields then holds, per backbone call (one per sliding window), the last output
        averaged over its map, [B, D] float32."""
        caught: list[np.ndarray] = []
        if not wanted:
            yield caught
            return

        def hook(module: torch.nn.Module, inputs: tuple, output: Any) -> None:
            last = output if isinstance(output, torch.Tensor) else output[-1]
            if last.ndim != 4:
                raise ModelError(f"the backbone's last output is {tuple(last.shape)}, not a [B, C, h, w] map")
            caught.append(last.float().mean(dim=(2, 3)).cpu().numpy())

        handle = self.model.backbone.register_forward_hook(hook)
        try:
            yield caught
        finally:
            handle.remove()

    def _forward(self, chunk: list[np.ndarray], want: frozenset[str]) -> Iterator[tuple[int, Prediction]]:
        with_probs = SEMANTIC_PROBS in want
        for indices, logits, metas, features in self.seg_logits(chunk, FEATURES in want):
            for k, (i, meta) in enumerate(zip(indices, metas, strict=True)):
                height, width = chunk[i].shape[:2]
                left, right, top, bottom = meta.get("img_padding_size", meta.get("padding_size", [0] * 4))
                own = logits[k:k + 1, :, top:logits.shape[2] - bottom, left:logits.shape[3] - right]
                full = F.interpolate(own, size=(height, width), mode="bilinear",
                                     align_corners=self.model.align_corners)[0]
                labels = full.argmax(dim=0).to(torch.int32).cpu().numpy()
                if self.blank_index is not None:
                    labels[labels == self.blank_index] = -1
                probs = self._probs(own, height, width) if with_probs else None
                yield i, Prediction(image_size=(height, width), label_map=labels, semantic_probs=probs,
                                    features=features[k] if features is not None else None)

    def _probs(self, logits: torch.Tensor, height: int, width: int) -> np.ndarray:
        """Softmax over every channel at the logits' size, capped at the image's size and at
        MAX_PROBS_SIDE, with the image's aspect ratio (see the module doc)."""
        scale = min(1.0, logits.shape[2] / height, logits.shape[3] / width, MAX_PROBS_SIDE / max(height, width))
        size = (max(1, round(height * scale)), max(1, round(width * scale)))
        if tuple(logits.shape[2:]) != size:
            logits = F.interpolate(logits, size=size, mode="bilinear", align_corners=self.model.align_corners)
        return logits[0].softmax(dim=0).float().cpu().numpy()


def test_pipeline(cfg: Config) -> list[dict]:
    """The config's test pipeline reading arrays, without loading annotations."""
    pipeline = [dict(t) for t in cfg.test_dataloader.dataset.pipeline
                if not str(t.get("type", "")).endswith("LoadAnnotations")]
    first = str(pipeline[0].get("type", "")) if pipeline else ""
    if not first.endswith("LoadImageFromFile"):
        raise ModelError(f"the model's test pipeline starts with {first or 'nothing'}, expected LoadImageFromFile")
    pipeline[0] = {"type": "LoadImageFromNDArray"}
    return pipeline


def blank_index(cfg: Config, meta_classes: list[str], num_channels: int) -> int | None:
    """The channel of the training-only blank class, if the model has one: noted in the run
    config by training, else named in the checkpoint's classes."""
    noted: Any = (cfg.get(SEMANTIC_KEY) or {}).get("blank_index")
    if noted is not None:
        return int(noted)
    if len(meta_classes) == num_channels and BLANK_CLASS in meta_classes:
        return meta_classes.index(BLANK_CLASS)
    return None
