"""Entry point of the open-math environments: one registration per problem family (each
family's variants are its problems; docs/open-math.md describes them all)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from progressbench import hookimpl

from .autocorrelation import Autocorrelation
from .circles import CirclesInRectangle, CirclesInSquare
from .distances import DistanceRatio
from .heilbronn import HeilbronnConvex, HeilbronnTriangle
from .kissing import Kissing
from .overlap import MinimumOverlap

ENVIRONMENTS = (
    CirclesInSquare,
    CirclesInRectangle,
    HeilbronnTriangle,
    HeilbronnConvex,
    DistanceRatio,
    Autocorrelation,
    MinimumOverlap,
    Kissing,
)


# --- registration ------------------------------------------------------------------------
@hookimpl
def register_environments(register: Callable[[Any], None]) -> None:
    for env in ENVIRONMENTS:
        register(env())
