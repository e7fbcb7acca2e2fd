"""A yolov5 model folder (a stage of the yolov5 image) as a pretrained start for mmyolo's YOLOv5.

mmyolo's curves need a model that already detects, as yolov5's did; pretraining one needs a GPU,
but mmyolo's YOLOv5 is the same network, so the yolov5 start can be converted instead. The key
mapping is mmyolo's own (``tools/model_converters/yolov5_to_mmyolo.py``, shipped in its wheel);
this module checks what that converter assumes and writes a float32 state dict, which the mmyolo
image loads as ``pretrained_model_params`` with ``model_name: yolov5_<size>``.
"""

from __future__ import annotations

import contextlib
import io
import os
import runpy
import tempfile
from pathlib import Path
from unittest import mock

import torch

# (depth_multiple, width_multiple) of yolov5's model yamls -> the size letter of mmyolo's model names
SIZES = {(0.33, 0.25): "n", (0.33, 0.5): "s", (0.67, 0.75): "m", (1.0, 1.0): "l", (1.33, 1.25): "x"}
# mmyolo's YOLOv5 configs fix these priors (pixels per level); the converter drops the checkpoint's
COCO_ANCHORS = [[10, 13, 16, 30, 33, 23], [30, 61, 62, 45, 59, 119], [116, 90, 156, 198, 373, 326]]


def converter_script() -> Path:
    import mmyolo

    path = Path(mmyolo.__file__).parent / ".mim" / "tools" / "model_converters" / "yolov5_to_mmyolo.py"
    if not path.is_file():
        raise FileNotFoundError(f"mmyolo {mmyolo.__version__} ships no {path.name} (looked in {path.parent})")
    return path


def yolov5_to_mmyolo(model_dir: Path, out_dir: Path) -> Path:
    """Write ``out_dir/yolov5_<size>.pth`` from the one ``.pt`` in ``model_dir``; returns its path.

    Raises ValueError for what mmyolo's YOLOv5 configs cannot take: a P6 model, or anchors that
    autoanchor changed (the converted model would decode its boxes with the wrong priors)."""
    weights = sorted(Path(model_dir).glob("*.pt"))
    if len(weights) != 1:
        raise ValueError(f"{model_dir}: expected one yolov5 .pt file, found {[w.name for w in weights]}")
    # a yolov5 checkpoint pickles its model object: our own file, so a full load is safe
    model = torch.load(weights[0], map_location="cpu", weights_only=False)["model"]
    detect = model.model[-1]
    if len(detect.stride) != 3:
        raise ValueError(f"{weights[0]}: a P6 model ({len(detect.stride)} output levels); only P5 models convert")
    anchors = (detect.anchors.float() * detect.stride.float().view(-1, 1, 1)).flatten(1).round().tolist()
    if anchors != COCO_ANCHORS:
        raise ValueError(f"{weights[0]}: anchors {anchors} differ from mmyolo's YOLOv5 priors {COCO_ANCHORS} "
                         "(trained with autoanchor?); the converted model would decode boxes wrongly")
    multiples = (round(float(model.yaml["depth_multiple"]), 2), round(float(model.yaml["width_multiple"]), 2))
    if multiples not in SIZES:
        raise ValueError(f"{weights[0]}: depth/width multiples {multiples} match no yolov5 n/s/m/l/x")
    target = Path(out_dir) / f"yolov5_{SIZES[multiples]}.pth"
    convert = runpy.run_path(str(converter_script()))["convert"]
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "model.pt"  # the converter reads a name ending in 6.pt as a P6 model
        os.symlink(weights[0].resolve(), src)
        raw = Path(tmp) / "converted.pth"
        # it calls torch.load(src) without weights_only, which torch now refuses for a pickled model
        with mock.patch.dict(os.environ, {"TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD": "1"}), \
                contextlib.redirect_stdout(io.StringIO()):  # it prints a line per key
            convert(str(src), str(raw))
        state = torch.load(raw, map_location="cpu", weights_only=True)["state_dict"]
    # yolov5 stores half precision; training starts from float32 weights
    target.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"state_dict": {k: v.float() if v.is_floating_point() else v for k, v in state.items()}}, target)
    return target

