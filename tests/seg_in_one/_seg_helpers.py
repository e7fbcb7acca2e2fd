"""Model packages for the seg-in-one tests: an upstream config made into the run config training
would write (classes, sizes, BN on CPU, the note of the blank class), with seeded random weights."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import torch

from ymir_base.data.convert import semantic as labels
from ymir_openmmlab import config as mmcfg
from ymir_seginone.models import MODELS, config_dir
from ymir_seginone.predictor import SEMANTIC_KEY
from ymir_seginone.semantic import fit_model_sizes, swap_sync_bn

CLASSES = ["circle", "square", "triangle"]


def random_package(folder: Path, model: str = "fast_scnn", img_size: int = 128, *, ignore_blank: bool = False,
                   seed: int = 0) -> Path:
    """``folder`` with best.pth (random weights) and config.py, as a training stage holds them."""
    from mmengine.registry import init_default_scope
    from mmseg.registry import MODELS as REGISTRY

    folder.mkdir(parents=True, exist_ok=True)
    classes = labels.model_classes(CLASSES, ignore_blank)
    cfg = mmcfg.load_config(config_dir() / MODELS[model])
    mmcfg.set_num_classes(cfg.model, len(classes))
    mmcfg.strip_pretrained(cfg.model)
    mmcfg.resize(cfg, img_size)
    fit_model_sizes(cfg)
    swap_sync_bn(cfg.model)
    cfg[SEMANTIC_KEY] = {"classes": list(CLASSES), "blank_index": None if ignore_blank else len(CLASSES)}
    init_default_scope("mmseg")
    torch.manual_seed(seed)
    net = REGISTRY.build(cfg.model)
    net.init_weights()
    with torch.no_grad():  # a classifier that varies from place to place, so every class gets pixels
        net.decode_head.conv_seg.weight.normal_(0, 1.0)
    torch.save({"state_dict": net.state_dict(), "meta": {"dataset_meta": {"classes": tuple(classes)}}},
               folder / "best.pth")
    cfg.dump(str(folder / "config.py"))
    return folder


@contextmanager
def one_thread() -> Iterator[None]:
    """Torch on one CPU thread (and subprocesses too, through OMP_NUM_THREADS). These tiny models
    run thousands of short parallel regions per iteration; on a 2-core machine that other jobs
    share, two OpenMP threads spin-wait for each other whenever one is descheduled: a measured
    learning run took 28 s at load 1.5 and 700 s at load 4 with two threads, 47 s at load 3 with one."""
    import os

    before, env = torch.get_num_threads(), os.environ.get("OMP_NUM_THREADS")
    torch.set_num_threads(1)
    os.environ["OMP_NUM_THREADS"] = "1"
    try:
        yield
    finally:
        torch.set_num_threads(before)
        if env is None:
            os.environ.pop("OMP_NUM_THREADS", None)
        else:
            os.environ["OMP_NUM_THREADS"] = env
