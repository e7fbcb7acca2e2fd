"""The mining-algorithm interface and the registry the runner picks algorithms from.

Every algorithm scores a batch of original images; a **higher score means "label first"**,
because YMIR keeps the top lines of ``result.tsv`` (sorted descending).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Protocol

import numpy as np

from ymir_base.errors import ConfigError
from ymir_base.prediction import AUGMENTED_PREDICT, BOXES, STOCHASTIC_PREDICT, Prediction
from ymir_base.tasks.kinds import KINDS

# the object kinds whose predictions carry boxes and scores (instance: those of the masks'
# detections), which the box-based algorithms (entropy, aldd, cald) read
BOX_KINDS: frozenset[str] = frozenset({"detection", "rotated", "instance"})
ALL_KINDS: frozenset[str] = frozenset(KINDS)


class AugmentPredictor(Protocol):
    """What CALD needs from the model: predictions on arbitrary (augmented) RGB images."""

    def predict(self, images: list[np.ndarray]) -> list[Prediction]: ...


class StochasticPredictor(Protocol):
    """What maskAL needs from the model: ``iterations`` Monte-Carlo passes per image with test-time
    noise (YOLOv5-seg: DropBlock), each pass a prediction carrying soft masks and class vectors.

    Image ``j`` of ``images`` draws its noise from ``seed + j`` and the pass index alone, so a
    caller gets the same passes for an image however it groups images into calls.
    ``batch_size`` is how many passes one forward runs at most."""

    batch_size: int

    def predict_stochastic(self, images: list[np.ndarray], iterations: int, seed: int,
                           want: frozenset[str] = frozenset()) -> list[list[Prediction]]: ...


@dataclass(frozen=True)
class Scored:
    """A score with a per-image side output (e.g. RSAL's regions to label) that the algorithm
    writes for the images it ranks first."""

    score: float
    side: Any = None


class MiningAlgorithm(ABC):
    """One acquisition function. ``params`` are the merged hyper-parameters (keys may be absent)."""

    name: ClassVar[str]
    # the object kinds (names of ymir_base.tasks.KINDS) this algorithm serves under its name
    kinds: ClassVar[frozenset[str]]
    needs: ClassVar[frozenset[str]]  # capabilities from ymir_base.prediction; empty = no model
    # False: score_batch ignores the plain predictions (it runs its own passes through the
    # predictor), so the engine skips that forward pass unless the task also infers
    reads_predictions: ClassVar[bool] = True
    # how many of the highest-scored images' side outputs the engine keeps (memory stays bounded
    # by this, not by the pool) and hands to write_side_outputs(); 0: the algorithm has none
    keep_side: int = 0

    def __init__(self, params: Mapping[str, Any], class_names: Sequence[str]):
        self.params = dict(params)
        self.class_names = list(class_names)

    def outputs_wanted(self) -> frozenset[str]:
        """The extra outputs ``predict(want=...)`` must produce for this algorithm: every need but
        the boxes every prediction has and the predictor's own methods (augmented images,
        stochastic passes); nothing when the algorithm does not read the plain predictions."""
        if not self.reads_predictions:
            return frozenset()
        return self.needs - {BOXES, AUGMENTED_PREDICT, STOCHASTIC_PREDICT}

    @abstractmethod
    def score_batch(self, images: list[np.ndarray], predictions: list[Prediction] | None,
                    predictor: AugmentPredictor | StochasticPredictor | None) -> Sequence[float | Scored]:
        """One score per image (RGB uint8 HxWx3), or a :class:`Scored` carrying a side output;
        ``predictions`` is None when ``needs`` is empty (or, without infer, when
        ``reads_predictions`` is False)."""

    def write_side_outputs(self, kept: list[tuple[str, float, Any]], out_dir: Path) -> None:
        """Write the side outputs of the ``keep_side`` highest-scored images, ``(candidate path,
        score, side)`` best first, under ``out_dir`` (/out). With several GPUs each rank writes
        those of its own share, so the overall top ones are always among them."""
        raise NotImplementedError(f"mining algorithm {self.name} keeps side outputs (keep_side "
                                  f"{self.keep_side}) but does not write them")


# (lower-case name, kind name) -> algorithm: one user-facing name may mean a different algorithm
# per object kind (``entropy``: box confidences for detection, pixel probabilities for semantic)
ALGORITHMS: dict[tuple[str, str], type[MiningAlgorithm]] = {}


def register(cls: type[MiningAlgorithm]) -> type[MiningAlgorithm]:
    """Class decorator: make an algorithm selectable by its (case-insensitive) name for each of
    its ``kinds``."""
    kinds = frozenset(getattr(cls, "kinds", frozenset()))
    unknown = sorted(kinds - KINDS.keys())
    if not kinds or unknown:
        raise ValueError(f"mining algorithm {cls.name!r}: kinds must be a non-empty subset of "
                         f"{', '.join(KINDS)}, got {sorted(kinds)}")
    keys = [(cls.name.lower(), kind) for kind in sorted(kinds)]
    for key in keys:
        if key in ALGORITHMS:
            raise ValueError(f"mining algorithm {cls.name!r} registered twice for {key[1]}")
    ALGORITHMS.update(dict.fromkeys(keys, cls))
    return cls


def algorithm_names(kind: str) -> frozenset[str]:
    """The (lower-case) names registered for one object kind."""
    _check_kind(kind)
    return frozenset(name for name, k in ALGORITHMS if k == kind)


def algorithm_class(name: str, kind: str) -> type[MiningAlgorithm] | None:
    """The algorithm a (case-insensitive) name means for one object kind, None if none."""
    _check_kind(kind)
    return ALGORITHMS.get((str(name).strip().lower(), kind))


def get_algorithm(name: str, params: Mapping[str, Any], class_names: Sequence[str],
                  supported: Collection[str], *, kind: str) -> MiningAlgorithm:
    """Instantiate what ``name`` means for the task's object ``kind`` (a name of
    ymir_base.tasks.KINDS) if this image supports it, else raise ConfigError (300001) listing
    the choices for that kind."""
    available = {s.lower() for s in supported} & algorithm_names(kind)
    key = str(name).strip().lower()
    if key not in available:
        choices = ", ".join(sorted((ALGORITHMS[k, kind].name for k in available), key=str.lower)) or "(none)"
        raise ConfigError(f"mining_algorithm {name!r} is not supported by this image for {kind} tasks; "
                          f"choose one of: {choices}")
    return ALGORITHMS[key, kind](params, class_names)


def _check_kind(kind: str) -> None:
    if kind not in KINDS:  # a programming error, not a user's
        raise ValueError(f"unknown object kind {kind!r}; known: {', '.join(KINDS)}")
