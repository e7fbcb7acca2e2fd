"""The settings each task of the loop runs an image with, at a scale.

``cpu``: the image's smallest model, from random initialisation (or from a model the loop is given
with ``--pretrained``), at a small input size and few epochs, so that a whole run fits a 2-core
machine. ``gpu``: ALBench-like, a small model (YOLOv5s
size) for 10 epochs per round at 640 px on one GPU. Mining keeps the image's own defaults but for
the input size, the batch and the workers (what YMIR users get); the evaluation infer keeps every
box down to 0.001 (the mAP needs the whole precision/recall curve).

The parameter names come from the image's own schema (``epochs`` or ``max_epochs``, ...), so an
image that lands later joins without an entry here unless its smallest model is not its default.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ymir_base.engine.registry import backend_class
from ymir_base.protocol.params import ParamSchema
from ymir_base.tasks.kinds import kind_named

# the model per scale where the image's default is not the wanted size
MODELS: dict[str, dict[str, dict[str, Any]]] = {
    "cpu": {"yolov5": {"model": "yolov5n"}, "seg-in-one": {"model": "yolov5n"},
            "mmdet": {"config_file": "configs/yolox/yolox_tiny_8x8_300e_coco.py"},
            "mmyolo": {"model_name": "yolov8_n"}},
    "gpu": {"yolov5": {"model": "yolov5s"}, "seg-in-one": {"model": "yolov5s"},
            "mmdet": {"config_file": "configs/yolox/yolox_s_8x8_300e_coco.py"},
            "mmyolo": {"model_name": "yolov8_s"}},
}
SCALES: dict[str, dict[str, Any]] = {
    "cpu": {"epochs": 30, "img_size": 320, "batch": 8, "workers": 0, "gpu": {}},
    "gpu": {"epochs": 10, "img_size": 640, "batch": 16, "workers": 4, "gpu": {"gpu_id": "0", "gpu_count": 1}},
}
# the parameter each meaning goes by, in the order the images' schemas are searched
NAMES = {"epochs": ("epochs", "max_epochs"), "batch": ("batch_size_per_gpu", "samples_per_gpu"),
         "workers": ("num_workers_per_gpu", "workers_per_gpu"), "conf": ("conf_thres", "conf_threshold")}
EVAL_CONF = 0.001


@dataclass(frozen=True)
class TaskSettings:
    training: dict[str, Any]
    mining: dict[str, Any]
    infer: dict[str, Any]   # the evaluation infer on the test set


def _name(schema: dict[str, Any], meaning: str) -> str | None:
    return next((n for n in NAMES[meaning] if n in schema), None)


def _has_weights(folder: Path) -> bool:
    return folder.is_dir() and any(p.is_file() for p in folder.iterdir())


def task_settings(image: str, scale: str, work_dir: Path, *, epochs: int | None = None,
                  img_size: int | None = None, pretrained: bool = False, model: str | None = None) -> TaskSettings:
    """What the loop sets for each task of ``image`` (detection) at ``scale``; files the settings
    need (YOLOv5's hyp file) go to ``work_dir``. ``pretrained``: every training starts from a
    pretrained model the loop passes, so the image's own (fine-tuning) defaults apply. ``model``
    replaces the scale's model (the value of the image's model parameter: ``yolov5n``, a config
    file, ...)."""
    if scale not in SCALES:
        raise ValueError(f"scale {scale!r} is not one of {', '.join(SCALES)}")
    backend = backend_class(image)
    kind = kind_named("detection")
    schema = ParamSchema.load(backend.params_file_for(kind)).tasks
    s = {**SCALES[scale], **({"epochs": epochs} if epochs else {}), **({"img_size": img_size} if img_size else {})}
    # from random initialisation (CPU scale, or no weights baked in where the loop runs), the demo's
    # optimiser settings (YOLOv5: AdamW, a gentler hyp): the image's fine-tuning defaults assume weights
    scratch = not pretrained and (scale == "cpu" or not _has_weights(backend.weights_dir()))
    demo = backend.demo_settings(Path(work_dir)).get("training", {}) if scratch else {}
    models = MODELS[scale].get(image, {})
    if model is not None:
        if not models:
            raise ValueError(f"{image}: no model parameter known to replace with {model!r}")
        models = {key: model for key in models}
    training = {**{k: v for k, v in demo.items() if k == "args_options"}, **models}
    sets: dict[str, dict[str, Any]] = {}
    for task in ("training", "mining", "infer"):
        values = {"img_size": s["img_size"]} if "img_size" in schema[task] else {}
        for meaning in ("batch", "workers") + (("epochs",) if task == "training" else ()):
            name = _name(schema[task], meaning)
            if name:
                values[name] = s[meaning]
        sets[task] = {**values, **s["gpu"]}
    conf = _name(schema["infer"], "conf")
    if conf:
        sets["infer"][conf] = EVAL_CONF
    return TaskSettings({**training, **sets["training"]}, sets["mining"], sets["infer"])
