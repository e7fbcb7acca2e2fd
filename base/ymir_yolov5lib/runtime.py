"""Process settings the ``yolov5`` package needs to run offline and under torch ≥ 2.6.

- fonts: yolov5 downloads Arial.ttf / Arial.Unicode.ttf into YOLOV5_CONFIG_DIR when missing
  (even with plots off, from check_dataset); any TrueType file with that name satisfies it, so
  matplotlib's bundled DejaVuSans is linked there.
- weights: yolov5 ``.pt`` files pickle whole model objects, which torch ≥ 2.6 refuses by default.
  They come only from the user's own model package or from the image, so the yolov5 process
  allows full unpickling (TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD).
- ultralytics (imported by yolov5): offline, no auto-install.
- yolov5 imports the deprecated ``pkg_resources``: its warning on every task's stderr says nothing
  to a YMIR user, so it is filtered.
"""

from __future__ import annotations

import os
import tempfile
import warnings
from pathlib import Path

from ymir_base.results.atomic import link_or_copy_atomic


def prepare(config_dir: Path | None = None) -> Path:
    warnings.filterwarnings("ignore", message="pkg_resources is deprecated", category=UserWarning)
    os.environ.setdefault("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD", "1")
    os.environ.setdefault("YOLO_OFFLINE", "1")
    os.environ.setdefault("YOLO_AUTOINSTALL", "0")
    os.environ.setdefault("YOLO_VERBOSE", "False")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    base = Path(config_dir or os.environ.get("YOLOV5_CONFIG_DIR") or Path(tempfile.gettempdir()) / "ymir-yolov5")
    base.mkdir(parents=True, exist_ok=True)
    os.environ["YOLOV5_CONFIG_DIR"] = str(base)
    os.environ.setdefault("YOLO_CONFIG_DIR", str(base / "ultralytics"))
    Path(os.environ["YOLO_CONFIG_DIR"]).mkdir(parents=True, exist_ok=True)
    _fonts(base)
    return base


def _fonts(folder: Path) -> None:
    import matplotlib

    source = Path(matplotlib.get_data_path()) / "fonts" / "ttf" / "DejaVuSans.ttf"
    for name in ("Arial.ttf", "Arial.Unicode.ttf"):
        if not (folder / name).exists():
            link_or_copy_atomic(source, folder / name, symlink=True)
