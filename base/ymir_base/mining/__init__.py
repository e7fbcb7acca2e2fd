"""Mining (active-learning) algorithms. Importing this package registers all of them."""

from ymir_base.mining import aldd, cald, entropy, random  # noqa: F401  (modules register themselves)
from ymir_base.mining.base import ALGORITHMS, AugmentPredictor, MiningAlgorithm, Scored, get_algorithm

__all__ = ["ALGORITHMS", "AugmentPredictor", "MiningAlgorithm", "Scored", "get_algorithm"]
