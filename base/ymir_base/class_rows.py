"""Refit a head tensor whose rows follow the classes to another class list.

Detection heads predict, per prior (anchor or point), some rows that do not depend on the classes
(YOLOv5: x, y, w, h, objectness), one row per class, and maybe more rows after them (mask
coefficients). A start for other classes keeps the first and the last, and the rows of the classes
of the same name; the library layers (``ymir_yolov5lib/head_fit.py``,
``ymir_openmmlab/head_fit.py``) say which tensors are laid out so and where the fresh rows come from.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch


def refit_class_rows(old: torch.Tensor, init: torch.Tensor, *, priors: int, before: int,
                     names: Sequence[str], old_names: Sequence[str], dim: int | None = None) -> torch.Tensor | None:
    """``init`` (the task's shape, fresh rows) with ``old``'s kept rows copied in; None where the
    two differ elsewhere than in the rows' dimension or its sizes do not follow the layout.
    ``old_names``: the classes ``old`` was trained for, or empty (unknown: no class keeps its row).
    ``dim``: the rows' dimension; by default the one dimension whose size differs."""
    if old.dim() != init.dim():
        return None
    dims = [d for d in range(init.dim()) if old.shape[d] != init.shape[d]]
    if dim is None and len(dims) == 1:
        dim = dims[0]
    if dim is None or any(d != dim for d in dims) or old.shape[dim] % priors or init.shape[dim] % priors:
        return None
    nc = len(names)
    per_old, per_new = old.shape[dim] // priors, init.shape[dim] // priors
    extra = per_new - before - nc
    old_nc = per_old - before - extra
    if extra < 0 or old_nc < 1:
        return None
    known = list(old_names) if len(old_names) == old_nc else []
    pairs = [(r, r) for r in range(before)]
    pairs += [(before + j, before + known.index(n)) for j, n in enumerate(names) if n in known]
    pairs += [(before + nc + e, before + old_nc + e) for e in range(extra)]
    rows, src = init.detach().clone().movedim(dim, 0), old.detach().to(init.dtype).movedim(dim, 0)
    for prior in range(priors):
        for new_row, old_row in pairs:
            rows[prior * per_new + new_row] = src[prior * per_old + old_row]
    return rows.movedim(0, dim).contiguous()
