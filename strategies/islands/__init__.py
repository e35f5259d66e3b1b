"""The ``islands`` strategy: island-based quality-diversity search with meta-prompting."""

from .strategy import Islands, IslandsOptions

__all__ = ["Islands", "IslandsOptions"]
