"""best-of-n: independent children of the reference; the best one wins (a baseline)."""

from .strategy import BestOfN

__all__ = ["BestOfN"]
