"""The ratio of the largest to the smallest distance among n points: 16 points in the plane,
14 points in space, minimised.

The literature (Friedman's tables, AlphaEvolve) reports the *square* of the ratio, so this
does too: ``max |p-q|^2 / min |p-q|^2``, an exact rational of the points' coordinates. The
points must be distinct; nothing else is required (the ratio ignores scale and position).
"""

from __future__ import annotations

import itertools
from fractions import Fraction
from typing import Any, ClassVar

from progressbench import Feature

from .base import Certificate, OpenMathEnvironment, Problem, Record
from .exact import Infeasible, matrix
from .sources import BEFORE, FRIEDMAN, NOTEBOOK


def certify_ratio(raw: Any, n: int, dim: int) -> Certificate:
    points = matrix(raw, n, dim, "points", n)
    squared = {
        (i, j): sum(((a - b) ** 2 for a, b in zip(points[i], points[j], strict=True)), Fraction(0))
        for i, j in itertools.combinations(range(n), 2)
    }
    closest = min(squared.values())
    if closest == 0:
        i, j = min(squared, key=squared.__getitem__)
        raise Infeasible(f"points {i} and {j} coincide")
    farthest = max(squared.values())
    # How many pairs are (within 1e-6) at the extreme distances: the rigidity of the layout.
    near = sum(1 for d in squared.values() if d <= closest * (1 + Fraction(1, 10**6)))
    far = sum(1 for d in squared.values() if d >= farthest * (1 - Fraction(1, 10**6)))
    return Certificate(
        value=farthest / closest,
        metrics={"min_distance_pairs": near, "max_distance_pairs": far},
        features={"contacts": near / n, "diameters": far / n},
    )


def _problem(n: int, dim: int, before: float, alphaevolve: float) -> Problem:
    space = "the plane" if dim == 2 else f"{dim}-dimensional space"
    return Problem(
        variant=f"{dim}d-n{n}",
        title=f"{n} points in {space}, minimal max/min distance ratio",
        statement=(
            f"Place {n} distinct points in {space} so that the ratio of the largest to the "
            "smallest distance between two of them is as small as possible. The score is "
            "the square of that ratio, as the literature reports it."
        ),
        returns=f"{n} points, each a list of {dim} coordinates",
        metric="ratio_squared",
        direction="minimize",
        unit="(max distance / min distance)^2",
        records=(
            Record(BEFORE, before, FRIEDMAN),
            Record("AlphaEvolve", alphaevolve, NOTEBOOK, 2025),
        ),
        features=(
            Feature(name="contacts", low=0.0, high=3.0, bins=8),
            Feature(name="diameters", low=0.0, high=1.0, bins=6),
        ),
        baseline="baseline_distances",
        certify=lambda raw: certify_ratio(raw, n, dim),
        verifier=(
            "The harness computes every squared distance exactly and certifies the exact "
            "ratio (an upper bound is what is stored)."
        ),
        substitutions=(("N, DIM = 16, 2", f"N, DIM = {n}, {dim}"),),
    )


class DistanceRatio(OpenMathEnvironment):
    name: ClassVar[str] = "distance-ratio"
    description: ClassVar[str] = (
        "AlphaEvolve B.8: points minimising the ratio of the largest to the smallest distance "
        "(16 in the plane, 14 in space), verified exactly"
    )
    problems: ClassVar[dict[str, Problem]] = {
        "2d-n16": _problem(16, 2, 12.890, 12.88926611203463),
        "3d-n14": _problem(14, 3, 4.168, 4.1658497672256525),
    }
