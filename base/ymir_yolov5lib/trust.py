"""YOLOv5 ``.pt`` files pickle whole model objects, so they cannot be loaded with
``weights_only=True``. Before any of them is unpickled (the user's model package, the image's baked
weights, a checkpoint to resume), :func:`check_checkpoint` proves from its opcodes alone that it
only instantiates YOLOv5 v7.0 and ``torch.nn`` modules and only calls torch's tensor rebuilders and
plain containers (ymir_base/checkpoints.py). The trainer also builds a model from the checkpoint's
architecture description (``model.yaml``), whose strings yolov5 passes to ``eval`` (and calls
the layers' modules): :func:`check_architecture` allows there only names of ``torch.nn.Module``
classes, names of plain values, and an ``nn.<Module>(literals)`` activation.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from ymir_base.checkpoints import AllowList, check_pickle_globals
from ymir_base.errors import ModelError

# the module names the yolov5 package pickles its models under, and those of the original
# repository's release weights
_MODEL_MODULES = ("yolov5.models.common.", "yolov5.models.yolo.", "yolov5.models.experimental.",
                  "models.common.", "models.yolo.", "models.experimental.")
ALLOWED = AllowList(
    classes=(*_MODEL_MODULES, "torch.nn.modules."),
    callables=("torch._utils._rebuild_tensor_v2", "torch._utils._rebuild_parameter",
               "torch._utils._rebuild_parameter_with_state", "collections.OrderedDict", "__builtin__.set",
               "builtins.set", "__builtin__.frozenset", "builtins.frozenset", "torch.Size", "torch.device",
               # numbers, arrays, paths and bytes (protocol 2 pickles bytes as _codecs.encode) of the
               # trainer's mid-run checkpoints: fitness, options, optimizer state
               "numpy.core.multiarray.scalar", "numpy._core.multiarray.scalar", "numpy.dtype",
               "numpy.core.multiarray._reconstruct", "numpy._core.multiarray._reconstruct", "numpy.ndarray",
               "pathlib.PosixPath", "_codecs.encode"),
    # the Segment head keeps Detect.forward as its ``detect`` attribute
    attributes=("yolov5.models.yolo.Detect.forward", "models.yolo.Detect.forward"),
    references=("torch.FloatStorage", "torch.HalfStorage", "torch.DoubleStorage", "torch.BFloat16Storage",
                "torch.LongStorage", "torch.IntStorage", "torch.ShortStorage", "torch.CharStorage",
                "torch.ByteStorage", "torch.BoolStorage", "torch.float16", "torch.float32", "torch.bfloat16"),
)

# what yolov5's parse_model evaluates: a layer's module (``Conv``, ``nn.Upsample``), which it then
# calls with the layer's arguments, the arguments (``nc``, ``anchors``, ``None``, ``'nearest'``), and
# the activation (``nn.SiLU()``)
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)?$")
_LITERAL = r"(True|False|None|-?[0-9.]+(e-?[0-9]+)?)"
_ACTIVATION = re.compile(rf"^(nn\.[A-Za-z_][A-Za-z0-9_]*)\(\s*(([A-Za-z_]\w*\s*=\s*)?{_LITERAL}\s*,?\s*)*\)$")
_MISSING = object()


def check_checkpoint(path: Path) -> None:
    """ModelError (300004) naming ``path`` unless it is a zip-format torch file whose pickle names
    only what a YOLOv5 model needs."""
    check_pickle_globals(Path(path), ALLOWED, "a YOLOv5 model")


def check_architecture(spec: Any, path: Path) -> None:
    """ModelError unless what yolov5 evaluates in the architecture description ``spec``
    (``model.yaml``) is harmless: each layer's module a name that resolves (in yolov5's model
    namespace, without evaluating anything) to a ``torch.nn.Module`` class, each string argument a
    name that resolves to nothing callable (or to nothing: it stays a string), the activation a
    ``nn.<Module>(literals)`` call."""
    if not isinstance(spec, dict):
        raise ModelError(f"{path}: the model's architecture description is not a mapping")
    layers = [*(spec.get("backbone") or []), *(spec.get("head") or [])]
    for number, layer in enumerate(layers):
        if not (isinstance(layer, list | tuple) and len(layer) == 4 and isinstance(layer[3], list | tuple)):
            raise ModelError(f"{path}: layer {number} of the architecture is not [from, number, module, args]")
        if isinstance(layer[2], str) and not _is_module_class(layer[2]):
            raise ModelError(f"{path}: layer {number} of the architecture names the module {layer[2]!r}, which is "
                             "not a torch.nn.Module class; yolov5 would evaluate and call it")
        for arg in layer[3]:
            if isinstance(arg, str) and not (_NAME.match(arg) and not callable(_resolve(arg))):
                raise ModelError(f"{path}: layer {number} of the architecture holds the argument {arg!r}, which "
                                 "yolov5 would evaluate as code; only plain names of values are accepted")
    activation = spec.get("activation")
    if activation is None:
        return
    match = _ACTIVATION.match(activation) if isinstance(activation, str) else None
    if not (match and _is_module_class(match.group(1))):
        raise ModelError(f"{path}: the architecture's activation {activation!r} is not a torch.nn activation "
                         "call such as nn.SiLU(); refusing to evaluate it")


def _resolve(name: str) -> Any:
    """What ``name`` (``a`` or ``a.b``) means where yolov5's parse_model evaluates it, found by
    lookups alone; _MISSING when it means nothing there."""
    import builtins

    from yolov5.models import yolo

    first, *rest = name.split(".")
    namespace = vars(yolo)
    value = namespace[first] if first in namespace else getattr(builtins, first, _MISSING)
    for part in rest:
        value = getattr(value, part, _MISSING) if value is not _MISSING else _MISSING
    return value


def _is_module_class(name: str) -> bool:
    import torch

    value = _resolve(name) if _NAME.match(name) else _MISSING
    return isinstance(value, type) and issubclass(value, torch.nn.Module)
