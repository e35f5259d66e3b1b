"""Circle packings: n circles in the unit square (n = 26, 32) and in a rectangle of perimeter
4 (n = 21), maximising the sum of the radii.

Feasibility is decided in exact rational arithmetic, with squares instead of square roots:
circles i and j are disjoint iff ``(xi-xj)^2 + (yi-yj)^2 >= (ri+rj)^2``; a circle is inside
the square iff ``r <= x <= 1-r`` and ``r <= y <= 1-r``; for the rectangle, the circles'
bounding box must have ``width + height <= 2``. The certified value is the exact sum.
"""

from __future__ import annotations

import math
from fractions import Fraction
from typing import Any, ClassVar

from progressbench import Feature

from .base import Certificate, OpenMathEnvironment, Problem, Record
from .exact import Infeasible, matrix, vector
from .sources import BEFORE, FRIEDMAN, NOTEBOOK, SHINKA


def _circles(raw: Any, n: int) -> tuple[list[list[Fraction]], list[Fraction]]:
    if not isinstance(raw, list) or len(raw) != 2:
        raise Infeasible("construct() must return (centers, radii)")
    centers = matrix(raw[0], n, 2, "centers", n)
    radii = [Fraction(r) for r in vector(raw[1], n, "radii", n)]
    for i, r in enumerate(radii):
        if r < 0:
            raise Infeasible(f"radius {i} is negative ({float(r):.3g})")
    return centers, radii


def _disjoint(centers: list[list[Fraction]], radii: list[Fraction]) -> None:
    for i in range(len(radii)):
        (xi, yi), ri = centers[i], radii[i]
        for j in range(i + 1, len(radii)):
            (xj, yj), rj = centers[j], radii[j]
            gap2 = (xi - xj) ** 2 + (yi - yj) ** 2 - (ri + rj) ** 2
            if gap2 < 0:
                depth = (ri + rj) - math.sqrt(float((xi - xj) ** 2 + (yi - yj) ** 2))
                raise Infeasible(f"circles {i} and {j} overlap (by about {depth:.3g})")


def _features(centers: list[list[Fraction]], radii: list[Fraction], edge: Any) -> dict[str, float]:
    r = [float(v) for v in radii]
    mean = sum(r) / len(r)
    cv = math.sqrt(sum((v - mean) ** 2 for v in r) / len(r)) / mean if mean else 0.0
    touching = sum(1 for c, v in zip(centers, radii, strict=True) if edge(c, v) < 1e-6)
    return {"radius_cv": min(cv, 1.0), "edge_share": touching / len(r)}


def certify_square(raw: Any, n: int) -> Certificate:
    centers, radii = _circles(raw, n)
    for i, ((x, y), r) in enumerate(zip(centers, radii, strict=True)):
        if x - r < 0 or y - r < 0 or x + r > 1 or y + r > 1:
            raise Infeasible(
                f"circle {i} (x={float(x):.6g}, y={float(y):.6g}, r={float(r):.6g}) is not inside the unit square"
            )
    _disjoint(centers, radii)
    total = sum(radii, Fraction(0))

    def edge(c: list[Fraction], r: Fraction) -> float:
        return float(min(c[0] - r, c[1] - r, 1 - c[0] - r, 1 - c[1] - r))

    return Certificate(
        value=total,
        metrics={"min_radius": float(min(radii)), "max_radius": float(max(radii))},
        features=_features(centers, radii, edge),
    )


def certify_rectangle(raw: Any, n: int) -> Certificate:
    centers, radii = _circles(raw, n)
    left = min(c[0] - r for c, r in zip(centers, radii, strict=True))
    right = max(c[0] + r for c, r in zip(centers, radii, strict=True))
    low = min(c[1] - r for c, r in zip(centers, radii, strict=True))
    high = max(c[1] + r for c, r in zip(centers, radii, strict=True))
    width, height = right - left, high - low
    if width + height > 2:
        raise Infeasible(
            f"the circles' bounding box is {float(width):.9g} x {float(height):.9g}: its "
            f"perimeter {float(2 * (width + height)):.12g} exceeds 4"
        )
    _disjoint(centers, radii)

    def edge(c: list[Fraction], r: Fraction) -> float:
        return float(min(c[0] - r - left, c[1] - r - low, right - c[0] - r, high - c[1] - r))

    features = _features(centers, radii, edge)
    features["aspect"] = float(width / (width + height)) if width + height else 0.0
    return Certificate(
        value=sum(radii, Fraction(0)),
        metrics={"width": float(width), "height": float(height)},
        features=features,
    )


_SQUARE_FEATURES = (
    Feature(name="radius_cv", low=0.0, high=0.6, bins=8),
    Feature(name="edge_share", low=0.0, high=1.0, bins=8),
)
_VERIFIER = (
    "The harness re-checks containment and pairwise disjointness exactly (rational "
    "arithmetic, squared distances) and certifies the exact sum of the radii."
)


def _square(n: int, records: tuple[Record, ...]) -> Problem:
    return Problem(
        variant=f"n{n}",
        title=f"{n} circles in the unit square",
        statement=(
            f"Place {n} disjoint circles (touching allowed) inside the unit square "
            "[0,1]x[0,1] so that the sum of their radii is as large as possible."
        ),
        returns=f"(centers, radii): {n} [x, y] pairs and {n} radii",
        metric="sum_radii",
        direction="maximize",
        unit="sum of radii",
        records=records,
        features=_SQUARE_FEATURES,
        baseline="baseline_circles",
        certify=lambda raw: certify_square(raw, n),
        verifier=_VERIFIER,
        substitutions=(("N = 26", f"N = {n}"),),
    )


class CirclesInSquare(OpenMathEnvironment):
    # The baselines solve a linear programme for the radii.
    preload: ClassVar[tuple[str, ...]] = ("numpy", "scipy.optimize")
    name: ClassVar[str] = "circles-square"
    description: ClassVar[str] = (
        "AlphaEvolve B.12: n disjoint circles in the unit square maximising the sum of radii "
        "(n = 26, 32), verified exactly"
    )
    problems: ClassVar[dict[str, Problem]] = {
        "n26": _square(
            26,
            (
                Record(BEFORE, 2.634, FRIEDMAN),
                Record("AlphaEvolve", 2.6358627564136983, NOTEBOOK, 2025),
                Record("ShinkaEvolve", 2.63598325, SHINKA, 2025),
            ),
        ),
        "n32": _square(
            32,
            (
                Record(BEFORE, 2.936, FRIEDMAN),
                Record("AlphaEvolve", 2.937944526205518, NOTEBOOK, 2025),
            ),
        ),
    }


class CirclesInRectangle(OpenMathEnvironment):
    # The baselines solve a linear programme for the radii.
    preload: ClassVar[tuple[str, ...]] = ("numpy", "scipy.optimize")
    name: ClassVar[str] = "circles-rectangle"
    description: ClassVar[str] = (
        "AlphaEvolve B.13: 21 disjoint circles in a rectangle of perimeter 4 maximising the "
        "sum of radii, verified exactly"
    )
    problems: ClassVar[dict[str, Problem]] = {
        "n21": Problem(
            variant="n21",
            title="21 circles in a rectangle of perimeter 4",
            statement=(
                "Place 21 disjoint circles (touching allowed) inside some rectangle of "
                "perimeter 4 so that the sum of their radii is as large as possible. The "
                "rectangle is the circles' axis-parallel bounding box: width + height <= 2."
            ),
            returns="(centers, radii): 21 [x, y] pairs and 21 radii (any position)",
            metric="sum_radii",
            direction="maximize",
            unit="sum of radii",
            records=(
                Record(BEFORE, 2.364, FRIEDMAN),
                Record("AlphaEvolve", 2.365832133416763, NOTEBOOK, 2025),
            ),
            features=(
                Feature(name="aspect", low=0.25, high=0.75, bins=8),
                Feature(name="radius_cv", low=0.0, high=0.6, bins=8),
            ),
            baseline="baseline_rectangle",
            certify=lambda raw: certify_rectangle(raw, 21),
            verifier=(
                "The harness recomputes the bounding box and checks width + height <= 2 and "
                "pairwise disjointness exactly, and certifies the exact sum of the radii."
            ),
        ),
    }
