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
- start-up: ``yolov5.utils.general`` calls ``inspect.stack()`` twice at import, only to compare two
  frames' file names. ``inspect.stack`` reads the source lines of every frame of the call stack
  and looks up each frozen importlib frame among all loaded modules: 1-2 s on one CPU thread in
  our deep call stack with thousands of modules loaded (measured), about a tenth of a small
  infer task. ``import_yolov5`` imports it with a stack that carries the same file names and no
  source lines.
"""

from __future__ import annotations

import inspect
import os
import sys
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


def import_yolov5() -> None:
    """Import the ``yolov5`` package's utilities (the first import of yolov5 in a process does)
    with ``inspect.stack`` replaced by ``frames_without_source`` while it runs."""
    if "yolov5.utils.general" in sys.modules:
        return
    original = inspect.stack
    inspect.stack = frames_without_source
    try:
        import yolov5.utils.general  # noqa: F401
    finally:
        inspect.stack = original


def frames_without_source(context: int = 1) -> list[inspect.FrameInfo]:
    """``inspect.stack()`` without its costly parts: the caller's frame first, each with its
    code's file name, line and function, and no source lines (``context`` is ignored)."""
    frames = []
    frame = sys._getframe(1)
    while frame is not None:
        code = frame.f_code
        frames.append(inspect.FrameInfo(frame, code.co_filename, frame.f_lineno, code.co_name, None, None))
        frame = frame.f_back
    return frames
