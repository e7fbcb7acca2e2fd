"""YOLOv5 model names -> architecture files of the ``yolov5`` package."""

from __future__ import annotations

from importlib.util import find_spec
from pathlib import Path

from ymir_base.errors import ConfigError

# found without importing yolov5: its first import belongs to runtime.import_yolov5 (a quick one)
PACKAGE_DIR = Path(find_spec("yolov5").origin).parent
P5 = ("yolov5n", "yolov5s", "yolov5m", "yolov5l", "yolov5x")
P6 = ("yolov5n6", "yolov5s6", "yolov5m6", "yolov5l6", "yolov5x6")
SEG = ("yolov5n-seg", "yolov5s-seg", "yolov5m-seg", "yolov5l-seg", "yolov5x-seg")  # YOLOv5-seg (v7.0)


def model_yaml(name: str) -> Path:
    if name in P5:
        return PACKAGE_DIR / "models" / f"{name}.yaml"
    if name in P6:
        return PACKAGE_DIR / "models" / "hub" / f"{name}.yaml"
    if name in SEG:
        return PACKAGE_DIR / "models" / "segment" / f"{name}.yaml"
    raise KeyError(name)


def check_model_name(name: str, choices: tuple[str, ...]) -> None:
    """ConfigError (300001) naming the config key when ``name`` is not one of ``choices``."""
    if name not in choices:
        raise ConfigError(f"config key 'model': {name!r} is not one of {', '.join(choices)}")
