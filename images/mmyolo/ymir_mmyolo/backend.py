"""The mmyolo image's backend: ``model_name`` shorthands mapped to mmyolo's own configs."""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

from mmengine.config import Config

from ymir_base.protocol.context import TaskContext
from ymir_openmmlab import config as mmcfg
from ymir_openmmlab.backend import OpenMMLabBackend, model_named, quick_settings_for

HERE = Path(__file__).resolve().parent


# model_name -> config under mmyolo's configs/ (the seed table's models have baked weights)
MODELS: dict[str, str] = {
    **{f"yolov5_{s}": f"yolov5/yolov5_{s}-v61_syncbn_fast_8xb16-300e_coco.py" for s in "n s m l x".split()},
    **{f"yolov5_{s}6": f"yolov5/yolov5_{s}-p6-v62_syncbn_fast_8xb16-300e_coco.py" for s in "n s m l x".split()},
    **{f"yolov6_{s}": f"yolov6/yolov6_{s}_syncbn_fast_8xb32-400e_coco.py" for s in "n t s".split()},
    **{f"yolov6_{s}": f"yolov6/yolov6_{s}_syncbn_fast_8xb32-300e_coco.py" for s in "m l".split()},
    **{f"yolov7_{s}": f"yolov7/yolov7_{s}_syncbn_fast_8x16b-300e_coco.py" for s in "tiny l x".split()},
    **{f"yolov8_{s}": f"yolov8/yolov8_{s}_syncbn_fast_8xb16-500e_coco.py" for s in "n s m l x".split()},
    **{f"yolox_{s}": f"yolox/yolox_{s}_fast_8xb8-300e_coco.py" for s in "nano tiny s m l x".split()},
    **{f"rtmdet_{s}": f"rtmdet/rtmdet_{s}_syncbn_fast_8xb32-300e_coco.py" for s in "tiny s m l x".split()},
    **{f"ppyoloe_plus_{s}": f"ppyoloe/ppyoloe_plus_{s}_fast_8xb8-80e_coco.py" for s in "s m l x".split()},
}


# Heads whose configs weigh the class and objectness losses as yolov5's train.py does, for the
# config's own class count and input side, once, when the config is parsed: class loss x nc/80,
# objectness x (side/640)^2. Neither follows set_num_classes or resize, so they are weighed again.
YOLOV5_STYLE_HEADS = frozenset({"YOLOv5Head", "YOLOv7Head"})


def config_dir() -> Path:
    import mmyolo

    return Path(mmyolo.__file__).resolve().parent / ".mim" / "configs"


class MmyoloBackend(OpenMMLabBackend):
    name = "mmyolo"
    scope = "mmyolo"
    img_man_dir = HERE.parent / "img-man"
    params_file = HERE / "params.yaml"
    quick_settings: ClassVar[dict[str, dict[str, Any]]] = quick_settings_for({"model_name": "yolov8_n"})

    def model_key(self, ctx: TaskContext) -> str:
        return model_named(ctx, MODELS)

    def config_path(self, ctx: TaskContext) -> Path:
        return config_dir() / MODELS[self.model_key(ctx)]

    def adapt_config(self, cfg: Config, ctx: TaskContext, total_iters: int) -> None:
        reweigh_yolov5_losses(cfg, len(ctx.class_names))


def reweigh_yolov5_losses(cfg: Config, num_classes: int) -> None:
    """The class and objectness loss weights of a YOLOv5-style head for ``num_classes`` classes at
    the config's (resized) input side, from those its config computed for its own (COCO: 80, 640).
    Without this, 10 classes at 256 px weighed the class loss 8x and the objectness 6x yolov5's."""
    head = cfg.model.get("bbox_head") or {}
    if str(head.get("type", "")).split(".")[-1] not in YOLOV5_STYLE_HEADS:
        return
    head.loss_cls.loss_weight *= num_classes / int(cfg.num_classes)
    head.loss_obj.loss_weight *= (mmcfg.test_size(cfg) / max(cfg.img_scale)) ** 2
