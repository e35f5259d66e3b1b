"""Heilbronn problems: n points in a region of unit area, maximising the smallest area of a
triangle they form.

* Triangles (n = 11): the points lie in the equilateral triangle with vertices (0, 0),
  (1, 0), (1/2, sqrt(3)/2). Containment is decided exactly without ever forming sqrt(3):
  since y >= 0, ``y <= sqrt(3) x`` iff ``x >= 0`` and ``y^2 <= 3 x^2`` (likewise for the
  other slanted side). The normalised score ``min area / (sqrt(3)/4)`` is irrational; the
  verifier certifies a lower bound of it through a rational lower bound of 1/sqrt(3).
* Convex regions (n = 13, 14): the region is the points' convex hull, computed exactly; the
  score ``min area / hull area`` is an exact rational.
"""

from __future__ import annotations

import itertools
from fractions import Fraction
from typing import Any, ClassVar

from progressbench import Feature

from .base import Certificate, OpenMathEnvironment, Problem, Record
from .exact import Infeasible, cross, hull_area2, isqrt_bounds, matrix
from .sources import BEFORE, FRIEDMAN, NOTEBOOK


def _smallest(points: list[list[Fraction]]) -> tuple[Fraction, Fraction]:
    """Twice the smallest and twice the second smallest triangle area."""
    areas = sorted(abs(cross(a, b, c)) for a, b, c in itertools.combinations(points, 3))
    return areas[0], areas[1]


def _spread(points: list[list[Fraction]]) -> float:
    """Mean distance to the centroid over the largest one (0: clustered, 1: all on a circle)."""
    cx = sum(float(p[0]) for p in points) / len(points)
    cy = sum(float(p[1]) for p in points) / len(points)
    radii = [((float(p[0]) - cx) ** 2 + (float(p[1]) - cy) ** 2) ** 0.5 for p in points]
    return sum(radii) / len(radii) / max(radii) if max(radii) else 0.0


def certify_triangle(raw: Any, n: int) -> Certificate:
    points = matrix(raw, n, 2, "points", n)
    for i, (x, y) in enumerate(points):
        inside = y >= 0 and x >= 0 and x <= 1 and y * y <= 3 * x * x and y * y <= 3 * (1 - x) ** 2
        if not inside:
            raise Infeasible(
                f"point {i} ({float(x):.17g}, {float(y):.17g}) is outside the triangle "
                "(0,0), (1,0), (1/2, sqrt(3)/2)"
            )
    smallest, second = _smallest(points)
    # min area / (sqrt(3)/4) = (2 * min area) * 2 / sqrt(3) = smallest * 2 * sqrt(3) / 3.
    sqrt3_lo, _ = isqrt_bounds(Fraction(3))
    on_edge = sum(1 for x, y in points if y == 0 or y * y == 3 * x * x or y * y == 3 * (1 - x) ** 2)
    return Certificate(
        value=smallest * 2 * sqrt3_lo / 3,
        metrics={"min_area_raw": float(smallest / 2)},
        features={
            "boundary_share": on_edge / n,
            "tightness": float(smallest / second) if second else 1.0,
        },
    )


def certify_convex(raw: Any, n: int) -> Certificate:
    points = matrix(raw, n, 2, "points", n)
    hull2 = hull_area2(points)
    if hull2 == 0:
        raise Infeasible("the points are collinear (their convex hull has no area)")
    smallest, second = _smallest(points)
    return Certificate(
        value=smallest / hull2,
        metrics={"hull_area": float(hull2 / 2)},
        features={
            "spread": _spread(points),
            "tightness": float(smallest / second) if second else 1.0,
        },
    )


_TIGHTNESS = Feature(name="tightness", low=0.5, high=1.0, bins=8)


class HeilbronnTriangle(OpenMathEnvironment):
    name: ClassVar[str] = "heilbronn-triangle"
    description: ClassVar[str] = (
        "AlphaEvolve B.9: 11 points in a unit-area triangle maximising the smallest triangle "
        "area, verified exactly"
    )
    problems: ClassVar[dict[str, Problem]] = {
        "n11": Problem(
            variant="n11",
            title="Heilbronn problem for triangles, 11 points",
            statement=(
                "Place 11 points on or inside the equilateral triangle with vertices (0, 0), "
                "(1, 0), (1/2, sqrt(3)/2) so that the smallest area of a triangle formed by "
                "three of them, divided by the area sqrt(3)/4 of the container, is as large "
                "as possible."
            ),
            returns="11 [x, y] points",
            metric="min_area",
            direction="maximize",
            unit="smallest triangle area, unit-area container",
            records=(
                Record(BEFORE, 0.036, FRIEDMAN),
                Record("AlphaEvolve", 0.036529889880030135, NOTEBOOK, 2025),
            ),
            features=(Feature(name="boundary_share", low=0.0, high=1.0, bins=6), _TIGHTNESS),
            baseline="baseline_heilbronn",
            certify=lambda raw: certify_triangle(raw, 11),
            verifier=(
                "The harness checks containment exactly (squares instead of sqrt(3)) and "
                "certifies a rational lower bound of the normalised smallest area."
            ),
            substitutions=(('REGION = "convex"', 'REGION = "triangle"'),),
        ),
    }


def _convex(n: int, before: float, alphaevolve: float) -> Problem:
    return Problem(
        variant=f"n{n}",
        title=f"Heilbronn problem for convex regions, {n} points",
        statement=(
            f"Place {n} points in the plane so that the smallest area of a triangle formed "
            "by three of them, divided by the area of their convex hull (the unit-area "
            "convex region), is as large as possible."
        ),
        returns=f"{n} [x, y] points",
        metric="min_area",
        direction="maximize",
        unit="smallest triangle area, unit-area convex hull",
        records=(
            Record(BEFORE, before, FRIEDMAN),
            Record("AlphaEvolve", alphaevolve, NOTEBOOK, 2025),
        ),
        features=(Feature(name="spread", low=0.5, high=1.0, bins=8), _TIGHTNESS),
        baseline="baseline_heilbronn",
        certify=lambda raw: certify_convex(raw, n),
        verifier=(
            "The harness computes the convex hull and every triangle area exactly and "
            "certifies the exact ratio."
        ),
        substitutions=(("N = 11", f"N = {n}"),),
    )


class HeilbronnConvex(OpenMathEnvironment):
    # The baseline measures the convex hull with scipy.
    preload: ClassVar[tuple[str, ...]] = ("numpy", "scipy.spatial")
    name: ClassVar[str] = "heilbronn-convex"
    description: ClassVar[str] = (
        "AlphaEvolve B.10: 13 or 14 points in a unit-area convex region maximising the "
        "smallest triangle area, verified exactly"
    )
    problems: ClassVar[dict[str, Problem]] = {
        "n13": _convex(13, 0.0306, 0.03093688903489562),
        "n14": _convex(14, 0.0277, 0.027835571458482124),
    }
