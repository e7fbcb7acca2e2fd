"""Mining (active-learning) algorithms. Importing this package registers all of them."""

from ymir_base.mining import aldd, cald, entropy, random, ripu, rsal, semantic_entropy  # noqa: F401  (they register)
from ymir_base.mining.base import (
    ALGORITHMS,
    AugmentPredictor,
    MiningAlgorithm,
    Scored,
    algorithm_class,
    algorithm_names,
    get_algorithm,
)

__all__ = ["ALGORITHMS", "AugmentPredictor", "MiningAlgorithm", "Scored", "algorithm_class", "algorithm_names",
           "get_algorithm"]
