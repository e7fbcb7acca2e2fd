"""Fit the detection head of an OpenMMLab start checkpoint to the task's classes.

MMEngine loads starting weights by name and drops every tensor whose shape differs from the
model's. Where a head predicts boxes and objectness in the same convolution as the classes (mmyolo's
YOLOv5 and YOLOv7 heads: one row per prior for x, y, w, h, objectness, then the classes), a class
list of another length drops that whole convolution: the fine-tuning starts with a random box
regressor and objectness (the same defect yolov5's own head had, see ``ymir_yolov5lib/head_fit.py``).
Here every head tensor whose shape differs in one dimension is refitted
(:func:`ymir_base.class_rows.refit_class_rows`): the rows before the classes
(:attr:`HeadAdapter.rows_before_classes`) and those after them (mask coefficients) are kept, a
class of the same name (by the checkpoint's ``meta.dataset_meta.classes``) keeps its rows, any
other class keeps the row the model's own ``init_weights`` gave it. Heads whose class convolutions
are separate (YOLOX, RTMDet, YOLOv6/v8, PPYOLOE) lose nothing but gain the named rows.

Only shape changes are seen: a checkpoint with as many classes as the task keeps its rows in order,
as MMEngine would load them.
"""

from __future__ import annotations

import copy
import logging
from pathlib import Path
from typing import Any

import torch
from mmengine.config import Config

from ymir_base.class_rows import refit_class_rows
from ymir_base.errors import ModelError
from ymir_base.results.atomic import open_atomic
from ymir_openmmlab import config as mmcfg
from ymir_openmmlab.heads import adapter_for

LOG = logging.getLogger(__name__)
HEAD = "bbox_head."  # the detectors' head module; segmentors' decode heads are not fitted


def fit_head(cfg: Config, weights: Path, ckpt: dict[str, Any], class_names: list[str],
             out: Path) -> tuple[Path, str | None]:
    """The checkpoint to start from, and what was changed (None: ``weights`` itself, nothing to fit).
    ``ckpt``: ``weights`` loaded by :func:`ymir_openmmlab.checkpoint.load`. The fitted one is
    written to ``out`` atomically (DDP ranks may race)."""
    old_names = [str(c) for c in ((ckpt.get("meta") or {}).get("dataset_meta") or {}).get("classes") or []]
    if "bbox_head" not in cfg.model or old_names == list(class_names):
        return weights, None  # no detection head, or one for the task's classes
    state = ckpt.get("state_dict", ckpt)
    state = {k.removeprefix("module."): v for k, v in state.items()}  # as MMEngine's load_from reads it
    model = initialised_model(cfg)
    head = model.bbox_head
    priors, before = int(getattr(head, "num_base_priors", 1) or 1), adapter_for(head).rows_before_classes
    fitted, unfit = [], []
    for key, init in model.state_dict().items():
        old = state.get(key)
        if not key.startswith(HEAD) or not isinstance(old, torch.Tensor) or old.shape == init.shape:
            continue
        rows = refit_class_rows(old, init, priors=priors, before=before, names=class_names, old_names=old_names)
        if rows is None:
            unfit.append(key)
            continue
        state[key] = rows
        fitted.append(key)
    if unfit:
        LOG.warning("%s: head tensors %s do not fit the task's %d classes; they start from the model's "
                    "own initialisation", weights, ", ".join(unfit), len(class_names))
    if not fitted:
        return weights, None
    meta = copy.deepcopy(ckpt.get("meta") or {})
    meta.setdefault("dataset_meta", {})["classes"] = tuple(class_names)
    with open_atomic(out, binary=True) as fh:
        torch.save({"state_dict": state, "meta": meta}, fh)
    kept = [n for n in class_names if n in old_names]
    rows = f", the {before} rows per prior before the classes kept" if before else ""
    return out, (f"head fitted to the task's {len(class_names)} classes: {len(fitted)} tensor(s){rows}, "
                 f"{len(kept)} class(es) kept by name ({', '.join(kept) or 'none'})")


def initialised_model(cfg: Config) -> torch.nn.Module:
    """The task's model as its config builds and initialises it (seeded: every rank and run fits
    the same rows; the global random state is left as it was)."""
    from mmengine.logging import MMLogger
    from mmengine.registry import init_default_scope

    scope = str(cfg.get("default_scope") or "mmdet")
    init_default_scope(scope)
    model_cfg = copy.deepcopy(cfg.model)
    mmcfg.strip_pretrained(model_cfg)
    logger = MMLogger.get_current_instance()
    level = logger.level
    logger.setLevel(logging.WARNING)  # init_weights lists every parameter; the Runner lists them again
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        try:
            model = mmcfg.models_registry(scope).build(model_cfg)
            model.init_weights()
        except Exception as exc:
            raise ModelError(f"cannot build the {scope} model to fit its start's head: "
                             f"{type(exc).__name__}: {exc}") from exc
        finally:
            logger.setLevel(level)
    return model
