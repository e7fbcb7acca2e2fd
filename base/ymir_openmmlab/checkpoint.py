"""OpenMMLab checkpoints from ``/in`` (a model package, pretrained weights), loaded with
``weights_only=True`` only.

MMEngine's own loader tries ``weights_only=True`` and, when torch refuses the file, silently
unpickles it in full: exactly the file that must not be. Here a refusal is a ModelError naming the
file. The globals allowed besides tensors and plain containers are those MMEngine lists for its
own checkpoints (numpy arrays, dtypes and scalars, its HistoryBuffer, ``getattr``, which numpy's
pickled dtypes use): torch's restricted unpickler calls only those, never what ``getattr`` returns.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ymir_base.checkpoints import load_weights_only


def safe_globals() -> list[Any]:
    from mmengine.runner.checkpoint import get_torch_safe_globals

    return list(get_torch_safe_globals())


def load(path: Path) -> dict[str, Any]:
    """The checkpoint at ``path`` as a dict (ModelError when it is not one that loads safely)."""
    from ymir_base.errors import ModelError

    ckpt = load_weights_only(Path(path), safe_globals=safe_globals(), what="an OpenMMLab checkpoint")
    if not isinstance(ckpt, dict):
        raise ModelError(f"{path} is not an OpenMMLab checkpoint: it holds a {type(ckpt).__name__}, not a dict")
    return ckpt


def apply(model: Any, ckpt: dict[str, Any], logger: Any = None) -> None:
    """Put the weights of a checkpoint :func:`load` returned into ``model``, strictly (every key
    must match), as ``mmengine.runner.load_checkpoint(strict=True)`` would."""
    from mmengine.runner.checkpoint import _load_checkpoint_to_model

    _load_checkpoint_to_model(model, ckpt, strict=True, logger=logger)
