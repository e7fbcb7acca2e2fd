"""Fit a YOLOv5 checkpoint's head to the task's classes, keeping what does not depend on them.

yolov5's trainer loads starting weights by name and shape. Its head predicts boxes, objectness,
the classes (and, for segmentation, mask coefficients) with one 1x1 convolution per level, so a
class list of another length changes those convolutions' shapes and the trainer drops them whole:
the fine-tuning starts with a random box regressor and objectness. A short fine-tuning does not
repair that (the active-learning bench, fashion start to one-class trees, 16 images, 20 epochs,
seeds 0-2: test mAP@0.5 0.003-0.004 without this, 0.039-0.049 with it; YOLOX, whose box and
objectness branches are separate and carry over, 0.09-0.14). Here the head is rewritten for the task's classes: box,
objectness and mask rows are kept, a class of the same name keeps its row, any other class starts
as yolov5 starts a new one (a fresh convolution's row, its bias raised by the class prior).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import torch

from ymir_base.class_rows import refit_class_rows
from ymir_base.errors import ModelError
from ymir_base.results.atomic import open_atomic

BOX_AND_OBJECTNESS = 5  # x, y, w, h, objectness: the first rows of each anchor's outputs


def checkpoint_classes(model: Any) -> list[str]:
    """A yolov5 model's class names in index order (``names`` is a list or an index dict)."""
    names = getattr(model, "names", None) or []
    return [str(names[i]) for i in sorted(names)] if isinstance(names, dict) else [str(n) for n in names]


def fit_head(weights: Path, class_names: list[str], out: Path,
             ckpt: dict[str, Any] | None = None) -> tuple[Path, str | None]:
    """The checkpoint to start from, and what was changed (None: ``weights`` itself, whose classes
    are the task's). ``ckpt``: ``weights`` already loaded (it is changed in place). The fitted one
    is written to ``out`` atomically (DDP ranks may race)."""
    if ckpt is None:
        ckpt = torch.load(weights, map_location="cpu", weights_only=False)  # trust.py checked it first
    models = [ckpt[key] for key in ("model", "ema") if ckpt.get(key) is not None]
    generator = torch.Generator().manual_seed(0)  # the same fitted head on every run and rank
    try:
        before = checkpoint_classes(models[0])
        if before == list(class_names) or (not before and int(models[0].model[-1].nc) == len(class_names)):
            return weights, None  # the task's classes, or no names to match: the trainer's own transfer
        for model in models:
            _fit(model, list(class_names), generator)
    except (AttributeError, IndexError, TypeError, RuntimeError) as exc:
        raise ModelError(f"cannot fit the head of {weights} to the task's classes: {type(exc).__name__}: "
                         f"{exc}") from exc
    with open_atomic(out, binary=True) as fh:
        torch.save(ckpt, fh)
    kept = [n for n in class_names if n in before]
    return out, (f"head fitted from the checkpoint's {len(before)} classes to the task's {len(class_names)}: "
                 f"box and objectness kept, {len(kept)} class(es) kept by name ({', '.join(kept) or 'none'})")


def _fit(model: Any, class_names: list[str], generator: torch.Generator) -> None:
    head = model.model[-1]
    before = checkpoint_classes(model)
    old_nc, nc = int(head.nc), len(class_names)
    extra = int(head.no) - BOX_AND_OBJECTNESS - old_nc  # mask coefficients of a Segment head, else 0
    prior = math.log(0.6 / (nc - 0.99))  # yolov5's class bias at the start (Model._initialize_biases)
    for level, conv in enumerate(head.m):
        fresh = torch.nn.Conv2d(conv.in_channels, head.na * (BOX_AND_OBJECTNESS + nc + extra), 1)
        bound = 1 / math.sqrt(conv.in_channels)  # torch's default init of a 1x1 conv, drawn seeded
        with torch.no_grad():
            fresh.weight.uniform_(-bound, bound, generator=generator)
            fresh.bias.uniform_(-bound, bound, generator=generator)
            fresh.bias.view(head.na, -1)[:, BOX_AND_OBJECTNESS:BOX_AND_OBJECTNESS + nc] += prior
            for name in ("weight", "bias"):
                rows = refit_class_rows(getattr(conv, name).float(), getattr(fresh, name), priors=head.na,
                                        before=BOX_AND_OBJECTNESS, names=class_names, old_names=before, dim=0)
                if rows is None:
                    raise RuntimeError(f"level {level}'s {name} {tuple(getattr(conv, name).shape)} is not "
                                       f"{head.na} anchors x (5 + {old_nc} classes + {extra})")
                getattr(fresh, name).copy_(rows)
        head.m[level] = fresh.to(dtype=conv.weight.dtype, device=conv.weight.device)
    head.nc, head.no = nc, BOX_AND_OBJECTNESS + nc + extra
    model.yaml["nc"] = nc
    model.names = dict(enumerate(class_names)) if isinstance(model.names, dict) else list(class_names)
