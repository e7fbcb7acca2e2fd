"""Mining (active-learning) algorithms. Importing this package registers all of them."""

from ymir_base.mining import (  # noqa: F401  (they register)
    aldd,
    apis,
    cald,
    entropy,
    maskal,
    random,
    ripu,
    rsal,
    semantic_entropy,
)
from ymir_base.mining.base import (
    ALGORITHMS,
    AugmentPredictor,
    MiningAlgorithm,
    Scored,
    StochasticPredictor,
    algorithm_class,
    algorithm_names,
    get_algorithm,
)

__all__ = ["ALGORITHMS", "AugmentPredictor", "MiningAlgorithm", "Scored", "StochasticPredictor", "algorithm_class",
           "algorithm_names", "get_algorithm"]
