"""The mmdet image's backend: mmdetection's YOLOX configs on the shared OpenMMLab layer."""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

from ymir_base.errors import ConfigError
from ymir_base.protocol.context import TaskContext
from ymir_openmmlab.backend import OpenMMLabBackend, quick_settings_for

HERE = Path(__file__).resolve().parent

# config_file as the seed documents it (mmdetection 2 names) or as mmdetection 3 names it
MODELS = {"yolox_tiny": "yolox_tiny_8xb8-300e_coco.py", "yolox_s": "yolox_s_8xb8-300e_coco.py",
          "yolox_l": "yolox_l_8xb8-300e_coco.py", "yolox_x": "yolox_x_8xb8-300e_coco.py"}


def model_of(config_file: str) -> str:
    stem = Path(str(config_file)).name.removesuffix(".py")
    for key, name in MODELS.items():
        if stem in (name.removesuffix(".py"), f"{key}_8x8_300e_coco"):
            return key
    raise ConfigError(f"config key 'config_file': {config_file!r} is not one of this image's models "
                      f"({', '.join(MODELS)}); e.g. configs/yolox/yolox_s_8x8_300e_coco.py")


def config_dir() -> Path:
    import mmdet

    return Path(mmdet.__file__).resolve().parent / ".mim" / "configs"


class MmdetBackend(OpenMMLabBackend):
    name = "mmdet"
    scope = "mmdet"
    img_man_dir = HERE.parent / "img-man"
    params_file = HERE / "params.yaml"
    quick_settings: ClassVar[dict[str, dict[str, Any]]] = quick_settings_for(
        {"config_file": "configs/yolox/yolox_tiny_8x8_300e_coco.py"})

    def model_key(self, ctx: TaskContext) -> str:
        return model_of(str(ctx.config["config_file"]))

    def config_path(self, ctx: TaskContext) -> Path:
        return config_dir() / "yolox" / MODELS[self.model_key(ctx)]
