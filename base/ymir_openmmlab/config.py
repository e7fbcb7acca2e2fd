"""Build MMEngine run configs from an upstream config file and the task's hyper-parameters.

Every OpenMMLab image trains from the upstream package's own config file. This module points its
dataset sections at our COCO files and ``class_names``, applies the YMIR hyper-parameters
(batch size, workers, epochs, evaluation interval, input size) and the user's ``cfg_options``,
and removes what would reach the network (``Pretrained`` initialisers with URLs).
"""

from __future__ import annotations

import argparse
import logging
import shlex
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from mmengine.config import Config, DictAction

from ymir_base.errors import ConfigError, ModelError

LOG = logging.getLogger(__name__)

# keys of pipeline transforms and batch augments that hold pixel sizes
SIZE_KEYS = frozenset({"img_scale", "scale", "crop_size", "size", "img_size", "random_size_range", "border"})
# sections of a config where those keys are sizes (the model's own ``size`` keys are not)
SIZE_SECTIONS = ("train_dataloader", "val_dataloader", "test_dataloader", "custom_hooks", "train_pipeline",
                 "test_pipeline")
STRIDE = 32
# multi-scale training never goes below 3x3 cells at stride 32: ATSS assigners (YOLOv6, PPYOLOE+)
# pick 9 candidates per level
MIN_CELLS = 3


def load_config(path: Path) -> Config:
    try:
        return Config.fromfile(str(path))
    except Exception as exc:
        raise ConfigError(f"cannot read the OpenMMLab config {path}: {type(exc).__name__}: {exc}") from exc


def walk(node: Any) -> Iterator[dict]:
    """Every dict inside ``node`` (itself included), depth first."""
    if isinstance(node, dict):
        yield node
        for value in node.values():
            yield from walk(value)
    elif isinstance(node, (list, tuple)):
        for value in node:
            yield from walk(value)


# ---- classes and datasets -------------------------------------------------------------------
def set_num_classes(model_cfg: dict, num_classes: int) -> None:
    """Every ``num_classes`` of the model (heads, head modules, assigners) becomes ours."""
    for d in walk(model_cfg):
        if "num_classes" in d:
            d["num_classes"] = num_classes


def models_registry(scope: str) -> Any:
    """The MODELS registry of an OpenMMLab package (``mmdet``, ``mmyolo``, ...)."""
    import importlib

    try:
        return importlib.import_module(f"{scope}.registry").MODELS
    except ImportError as exc:
        raise ModelError(f"the model's config is for {scope}, which this image does not have") from exc


def strip_pretrained(model_cfg: dict) -> int:
    """Remove initialisers that download weights (``init_cfg=Pretrained`` with a URL, and
    ``pretrained=`` URLs); YMIR runs offline. Returns how many were removed."""
    removed = 0
    for d in walk(model_cfg):
        init = d.get("init_cfg")
        if isinstance(init, dict) and init.get("type") == "Pretrained" and _is_remote(init.get("checkpoint")):
            d.pop("init_cfg")
            removed += 1
        if _is_remote(d.get("pretrained")):
            d["pretrained"] = None
            removed += 1
    return removed


def _is_remote(value: Any) -> bool:
    return isinstance(value, str) and "://" in value


def dataset_leaves(dataset_cfg: dict) -> list[dict]:
    """The innermost datasets (those with an ``ann_file``) under wrappers like MultiImageMixDataset."""
    return [d for d in walk(dataset_cfg) if "ann_file" in d and "type" in d]


def point_dataset(dataset_cfg: dict, ann_file: Path, class_names: list[str]) -> None:
    leaves = dataset_leaves(dataset_cfg)
    if not leaves:
        raise ConfigError("the OpenMMLab config has no dataset with an ann_file to point at the YMIR data")
    for leaf in leaves:
        leaf.update(data_root="", ann_file=str(ann_file), data_prefix={"img": ""},
                    metainfo={"classes": tuple(class_names)})
        leaf.pop("indices", None)


def set_evaluator(evaluator: dict | list, ann_file: Path, metric: str) -> None:
    """Our validation file; ``classwise``: the per-class AP for the stage's metrics attachment."""
    for ev in evaluator if isinstance(evaluator, list) else [evaluator]:
        ev.update(ann_file=str(ann_file), metric=metric, format_only=False, classwise=True)
        ev.pop("outfile_prefix", None)


# ---- sizes and schedule ---------------------------------------------------------------------
def test_size(cfg: Config) -> int:
    """The longest input side of the config's test pipeline (what inference runs at)."""
    loader = cfg.get("test_dataloader") or cfg.get("val_dataloader") or {}
    sizes = [max(abs(int(v)) for v in _as_pair(d[k]))
             for d in walk(loader.get("dataset", {}).get("pipeline", []))
             for k in ("scale", "img_scale") if k in d and _as_pair(d[k])]
    return max(sizes) if sizes else 640


def _as_pair(value: Any) -> tuple[int, ...]:
    if isinstance(value, int) and not isinstance(value, bool):
        return (value,)
    if isinstance(value, (list, tuple)) and value and all(isinstance(v, int) and not isinstance(v, bool)
                                                          for v in value):
        return tuple(value)
    return ()


def resize(cfg: Config, img_size: int) -> None:
    """Scale every pixel size of the pipelines, batch augments and pipeline-switch hooks so
    that inference runs at ``img_size``; training sizes keep their ratio to the test size."""
    if img_size <= 0:
        return
    factor = img_size / test_size(cfg)

    def scaled(v: int) -> int:
        if abs(v) < STRIDE:
            return max(1, round(v * factor)) if v > 0 else round(v * factor)
        return int(round(v * factor / STRIDE) * STRIDE) or (STRIDE if v > 0 else -STRIDE)

    def scale_dict(d: dict) -> None:
        for key in SIZE_KEYS & d.keys():
            value = _as_pair(d[key])
            if not value:
                continue
            if key == "random_size_range" and max(value) < STRIDE:  # in units of 32 px (YOLOX style)
                new = tuple(max(MIN_CELLS, round(v * factor)) for v in value)
            elif key == "random_size_range":
                new = tuple(max(MIN_CELLS * STRIDE, scaled(v)) for v in value)
            else:
                new = tuple(scaled(v) for v in value)
            d[key] = new[0] if isinstance(d[key], int) else type(d[key])(new)

    for section in SIZE_SECTIONS:
        for d in walk(cfg.get(section)):
            scale_dict(d)
    preprocessor = cfg.model.get("data_preprocessor", {})
    for d in walk(preprocessor.get("batch_augments") or []):
        scale_dict(d)


def set_max_epochs(cfg: Config, max_epochs: int) -> None:
    """Stretch the config's epoch schedule (LR schedulers, pipeline switches, YOLO LR hooks) to
    ``max_epochs``, keeping its shape."""
    original = int(cfg.train_cfg.get("max_epochs") or max_epochs)
    factor = max_epochs / original

    def at(epoch: int) -> int:
        return max_epochs if epoch >= original else round(epoch * factor)

    _stretch_schedulers(cfg, True, at)
    hooks = list((cfg.get("default_hooks") or {}).values()) + list(cfg.get("custom_hooks") or [])
    for hook in hooks:
        if not isinstance(hook, dict):
            continue
        for key in ("max_epochs", "total_epochs"):
            if key in hook:
                hook[key] = max_epochs
        if "switch_epoch" in hook:
            hook["switch_epoch"] = min(max_epochs - 1, at(int(hook["switch_epoch"])))
        if "num_last_epochs" in hook:
            hook["num_last_epochs"] = max(1, min(max_epochs, round(hook["num_last_epochs"] * factor)))
    cfg.train_cfg["max_epochs"] = max_epochs
    if "max_epochs" in cfg:
        cfg["max_epochs"] = max_epochs


def is_iter_based(cfg: Config) -> bool:
    """Whether the config trains by iterations (``IterBasedTrainLoop``, mmseg's schedules)."""
    loop = cfg.get("train_cfg") or {}
    return str(loop.get("type", "")).endswith("IterBasedTrainLoop") or ("max_iters" in loop
                                                                         and "max_epochs" not in loop)


def set_max_iters(cfg: Config, max_iters: int) -> None:
    """Stretch the config's iteration schedule (``by_epoch=False`` LR schedulers, e.g. mmseg's
    PolyLR over 160k iterations) to ``max_iters``, keeping its shape."""
    original = int(cfg.train_cfg.get("max_iters") or max_iters)
    factor = max_iters / original

    def at(iteration: int) -> int:
        return max_iters if iteration >= original else round(iteration * factor)

    _stretch_schedulers(cfg, False, at)
    cfg.train_cfg["max_iters"] = max_iters


def _stretch_schedulers(cfg: Config, by_epoch: bool, at: Callable[[int], int]) -> None:
    """Move the begin/end/T_max of the LR schedulers counted in epochs (``by_epoch``) or in
    iterations to ``at(old)``; a scheduler keeps at least one step."""
    schedulers = cfg.get("param_scheduler") or []
    for sch in schedulers if isinstance(schedulers, list) else [schedulers]:
        if bool(sch.get("by_epoch", True)) != by_epoch:
            continue
        begin = at(int(sch.get("begin", 0)))
        if "end" in sch:
            sch["end"] = max(begin + 1, at(int(sch["end"])))
        sch["begin"] = begin
        if "T_max" in sch:
            sch["T_max"] = max(1, at(int(sch["T_max"])))


# the YOLO LR hooks' minimum warm-up (iterations), and its default in the hooks' signatures
WARMUP_KEYS = {"YOLOv5ParamSchedulerHook": "warmup_mim_iter", "PPYOLOEParamSchedulerHook": "warmup_min_iter"}
WARMUP_DEFAULT = 1000
# yolov5's train.py warms up for at least this many iterations; a pretrained model needs it
FINE_TUNE_WARMUP = 100


def cap_warmup(cfg: Config, total_iters: int, *, fine_tuning: bool = False) -> None:
    """The YOLO LR hooks warm up for at least 1000 iterations, which is a whole short run on a
    small YMIR dataset: cap that minimum at a tenth of the run. Their ``warmup_epochs`` still apply.

    ``fine_tuning`` (training starts from pretrained weights): at least yolov5's own 100. A short
    run at the full learning rate after a few iterations undoes what the model knew: yolov5-n
    fine-tuned on 24 images for 30 iterations fell from test mAP@0.5 0.52 to 0.38 with the cap
    (9 warm-up iterations), and kept 0.53 with 100."""
    hook = (cfg.get("default_hooks") or {}).get("param_scheduler") or {}
    key = WARMUP_KEYS.get(str(hook.get("type", "")).split(".")[-1])
    if key:
        floor = FINE_TUNE_WARMUP if fine_tuning else 1
        hook[key] = min(int(hook.get(key, WARMUP_DEFAULT)), max(floor, total_iters // 10))


def _is_warmup(scheduler: dict) -> bool:
    """A learning-rate warm-up: from the first step, rising (``QuadraticWarmupLR``, or a ``LinearLR``
    whose start factor is below its end factor)."""
    kind = str(scheduler.get("type", "")).split(".")[-1]
    if int(scheduler.get("begin", 0)) != 0 or "end" not in scheduler:
        return False
    if kind == "LinearLR":
        return float(scheduler.get("start_factor", 1 / 3)) < float(scheduler.get("end_factor", 1.0))
    return "Warmup" in kind


def fit_warmup_schedulers(cfg: Config, iters_per_epoch: int, total_iters: int, *, fine_tuning: bool = False) -> None:
    """Size the warm-up schedulers of ``param_scheduler`` for a YMIR run, as ``cap_warmup`` does for
    the YOLO hooks: at most a tenth of the run (mmrotate's LinearLR over 1000 iterations would
    otherwise train a small dataset's whole run at a warm-up's tiny learning rate), and from
    pretrained weights at least ``FINE_TUNE_WARMUP`` iterations, even past the run's end as in
    yolov5. Epoch warm-ups shrink with a short schedule: YOLOX's 5 of 300 epochs became 1 of 10
    (3 iterations on 24 images), and YOLOX-tiny fine-tuned there fell from test mAP@0.5 0.41 to
    0.29-0.34; with 100 it kept 0.39-0.40. A resized warm-up counts iterations."""
    cap = max(1, total_iters // 10)
    floor = FINE_TUNE_WARMUP if fine_tuning else 1
    schedulers = cfg.get("param_scheduler") or []
    for sch in schedulers if isinstance(schedulers, list) else [schedulers]:
        if not _is_warmup(sch):
            continue
        length = int(sch["end"]) * (iters_per_epoch if sch.get("by_epoch", True) else 1)
        target = max(floor, min(length, cap))
        if target != length:
            sch.update(by_epoch=False, begin=0, end=target)
            sch.pop("convert_to_iter_based", None)


# ---- user options ---------------------------------------------------------------------------
def parse_cfg_options(text: str, key: str = "cfg_options") -> dict[str, Any]:
    """``a.b=1 c=[1,2]`` -> {'a.b': 1, 'c': [1, 2]}, parsed exactly like MMEngine's tools."""
    parser = _ErrorParser(key)
    parser.add_argument("--cfg-options", nargs="+", action=DictAction, default={})
    try:
        tokens = shlex.split(str(text or ""))
    except ValueError as exc:
        raise ConfigError(f"config key '{key}': {exc} in {text!r}") from None
    if not tokens:
        return {}
    if any("=" not in t for t in tokens):
        raise ConfigError(f"config key '{key}': expected KEY=VALUE pairs separated by spaces, got {text!r}")
    return dict(parser.parse_args(["--cfg-options", *tokens]).cfg_options)


def merge_options(cfg: Config, options: dict[str, Any], key: str = "cfg_options") -> None:
    if not options:
        return
    for dotted in options:
        node: Any = cfg
        for part in dotted.split("."):
            if isinstance(node, (dict, Config)) and part in node:  # a Config is not a dict
                node = node[part]
            elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
                node = node[int(part)]
            else:
                LOG.warning("%s: %s is not in the model's config and is added as a new key (a typo?)",
                            key, dotted)
                break
    try:
        cfg.merge_from_dict(options)
    except Exception as exc:
        raise ConfigError(f"config key '{key}': cannot apply {options}: {exc}") from exc
    LOG.info("%s applied: %s", key, options)


def parse_args_options(text: str) -> argparse.Namespace:
    """The options of OpenMMLab's ``tools/train.py`` that make sense inside YMIR; the config,
    work dir and launcher are the image's own."""
    parser = _ErrorParser("args_options")
    parser.add_argument("--amp", action="store_true", help="automatic mixed precision")
    parser.add_argument("--auto-scale-lr", action="store_true", help="scale the LR to the batch size")
    parser.add_argument("--resume", nargs="?", const="auto", default=None, help="resume a checkpoint")
    parser.add_argument("--cfg-options", nargs="+", action=DictAction, default={})
    try:
        tokens = shlex.split(str(text or ""))
    except ValueError as exc:
        raise ConfigError(f"config key 'args_options': {exc} in {text!r}") from None
    return parser.parse_args(tokens)


class _ErrorParser(argparse.ArgumentParser):
    """argparse that raises ConfigError naming the YMIR key instead of exiting."""

    def __init__(self, key: str):
        super().__init__(prog=key, add_help=False)
        self.key = key

    def error(self, message: str) -> None:  # type: ignore[override]
        raise ConfigError(f"config key '{self.key}': {message} (supported: --amp, --auto-scale-lr, "
                          "--resume [CHECKPOINT], --cfg-options KEY=VALUE ...)" if self.key == "args_options"
                          else f"config key '{self.key}': {message}")


# ---- inference ------------------------------------------------------------------------------
def inference_pipeline(cfg: Config, scope: str) -> list[dict]:
    """The test pipeline reading arrays instead of files, without annotation loading."""
    pipeline = [dict(t) for t in cfg.test_dataloader.dataset.pipeline
                if not str(t.get("type", "")).endswith("LoadAnnotations")]
    first = str(pipeline[0].get("type", ""))
    if not first.endswith("LoadImageFromFile"):
        raise ConfigError(f"the test pipeline starts with {first}, expected LoadImageFromFile")
    pipeline[0] = {"type": "LoadImageFromNDArray" if scope == "mmdet" else "mmdet.LoadImageFromNDArray"}
    return pipeline
