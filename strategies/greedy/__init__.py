"""greedy: hill-climb from the best valid program found so far (a baseline for comparisons)."""

from .strategy import Greedy

__all__ = ["Greedy"]
