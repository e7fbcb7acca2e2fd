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
from ymir_base.prediction import AUGMENTED_PREDICT, BOXES, Prediction


class AugmentPredictor(Protocol):
    """What CALD needs from the model: predictions on arbitrary (augmented) RGB images."""

    def predict(self, images: list[np.ndarray]) -> list[Prediction]: ...


@dataclass(frozen=True)
class Scored:
    """A score with a per-image side output (e.g. RSAL's regions to label) that the algorithm
    writes for the images it ranks first."""

    score: float
    side: Any = None


class MiningAlgorithm(ABC):
    """One acquisition function. ``params`` are the merged hyper-parameters (keys may be absent)."""

    name: ClassVar[str]
    needs: ClassVar[frozenset[str]]  # capabilities from ymir_base.prediction; empty = no model
    # how many of the highest-scored images' side outputs the engine keeps (memory stays bounded
    # by this, not by the pool) and hands to write_side_outputs(); 0: the algorithm has none
    keep_side: int = 0

    def __init__(self, params: Mapping[str, Any], class_names: Sequence[str]):
        self.params = dict(params)
        self.class_names = list(class_names)

    def outputs_wanted(self) -> frozenset[str]:
        """The extra outputs ``predict(want=...)`` must produce for this algorithm: every need but
        the boxes every prediction has and the predictor's own method for augmented images."""
        return self.needs - {BOXES, AUGMENTED_PREDICT}

    @abstractmethod
    def score_batch(self, images: list[np.ndarray], predictions: list[Prediction] | None,
                    predictor: AugmentPredictor | None) -> Sequence[float | Scored]:
        """One score per image (RGB uint8 HxWx3), or a :class:`Scored` carrying a side output;
        ``predictions`` is None when ``needs`` is empty."""

    def write_side_outputs(self, kept: list[tuple[str, float, Any]], out_dir: Path) -> None:
        """Write the side outputs of the ``keep_side`` highest-scored images, ``(candidate path,
        score, side)`` best first, under ``out_dir`` (/out). With several GPUs each rank writes
        those of its own share, so the overall top ones are always among them."""
        raise NotImplementedError(f"mining algorithm {self.name} keeps side outputs (keep_side "
                                  f"{self.keep_side}) but does not write them")


ALGORITHMS: dict[str, type[MiningAlgorithm]] = {}


def register(cls: type[MiningAlgorithm]) -> type[MiningAlgorithm]:
    """Class decorator: make an algorithm selectable by its (case-insensitive) name."""
    key = cls.name.lower()
    if key in ALGORITHMS:
        raise ValueError(f"mining algorithm {cls.name!r} registered twice")
    ALGORITHMS[key] = cls
    return cls


def get_algorithm(name: str, params: Mapping[str, Any], class_names: Sequence[str],
                  supported: Collection[str]) -> MiningAlgorithm:
    """Instantiate the algorithm ``name`` if this image supports it, else raise ConfigError (300001)."""
    available = {s.lower() for s in supported} & ALGORITHMS.keys()
    key = str(name).strip().lower()
    if key not in available:
        choices = ", ".join(sorted(ALGORITHMS[k].name for k in available)) or "(none)"
        raise ConfigError(f"mining_algorithm {name!r} is not supported by this image; "
                          f"choose one of: {choices}")
    return ALGORITHMS[key](params, class_names)
