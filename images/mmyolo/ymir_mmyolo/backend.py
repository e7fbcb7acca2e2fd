"""The mmyolo image's backend: ``model_name`` shorthands mapped to mmyolo's own configs."""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

from ymir_base.protocol.context import TaskContext
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
