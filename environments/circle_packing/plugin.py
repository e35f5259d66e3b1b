"""circle-packing: 26 circles in the unit square, maximise the sum of radii.

The program's ``run_packing()`` returns centres and radii; the harness never trusts any claim
beyond those numbers. ``assess`` (in the platform process) certifies a packing in exact
arithmetic (every float is a rational: ``Fraction(x)`` is exact) with tolerance 0: each circle
is shrunk by the largest violation it takes part in, bounded from above (its whole excess
over a wall; half of an overlap, the other circle taking the other half), which makes the
packing exactly feasible, and the score is the exact sum of the shrunk radii, rounded down.
A violation above ``REPAIR_LIMIT`` is a wrong packing, not rounding: it is refused with its
reason. The record table is circles-square's n26 table (the same problem).
"""

from __future__ import annotations

import math
from fractions import Fraction
from importlib import resources
from pathlib import Path
from typing import Any, ClassVar

from progressbench import (
    Assessment,
    Environment,
    Feature,
    Objective,
    Resources,
    SandboxContext,
    Variant,
    hookimpl,
)

from ..open_math.circles import CirclesInSquare
from ..open_math.exact import isqrt_bounds, outward

N_CIRCLES = 26
# The largest shrink of one circle that certification repairs: far above float rounding and
# optimiser slack (1e-16 to 1e-7), far below any real geometric mistake (radii are ~0.1).
REPAIR_LIMIT = Fraction(1, 10**6)


class CirclePacking(Environment):
    name: ClassVar[str] = "circle-packing"
    description: ClassVar[str] = (
        "Place 26 non-overlapping circles inside the unit square [0,1]x[0,1] so that the sum "
        "of their radii is as large as possible. run_packing() must return (centers, radii): "
        "26 [x, y] pairs and 26 radii. The harness certifies the packing in exact arithmetic "
        "at tolerance 0: a circle crossing a wall or overlapping another, by however little, "
        "is shrunk by that amount (bounded from above), and the score is the exact sum of "
        "the shrunk radii, never the sum you report. A violation above 1e-6 makes the program "
        "invalid. Besides the standard library, the program may import numpy and scipy (e.g. "
        "scipy.optimize for continuous optimisation of centres and radii)."
    )
    variants: ClassVar[dict[str, Variant]] = {
        "n26": Variant(name="n26", description="26 circles, unit square"),
    }
    default_variant: ClassVar[str] = "n26"
    preload: ClassVar[tuple[str, ...]] = ("numpy",)
    packages: ClassVar[tuple[str, ...]] = ("numpy", "scipy")

    def objective(self, variant: str) -> Objective:
        records = CirclesInSquare().objective("n26").records
        return Objective(
            metric="sum_radii", direction="maximize", unit="sum of radii", records=records
        )

    def baseline(self, variant: str) -> str:
        return (resources.files(__package__) / "baseline.py").read_text()

    def resources(self, variant: str) -> Resources:
        return Resources(cpus=1, seconds=30, smoke_seconds=10, memory_mb=1024)

    def features(self, variant: str) -> list[Feature]:
        return [
            Feature(name="radius_cv", low=0.0, high=1.0, bins=8),
            Feature(name="edge_share", low=0.0, high=1.0, bins=8),
        ]

    def task_description(self, variant: str) -> str:
        return self.description

    # --- sandbox side: just the numbers the program produces ---------------------------
    def smoke(self, program: Path, ctx: SandboxContext) -> dict[str, Any]:
        return self.run(program, ctx)

    def run(self, program: Path, ctx: SandboxContext) -> dict[str, Any]:
        from progressbench import load_program

        module = load_program(program)
        if not hasattr(module, "run_packing"):
            raise AttributeError("the program defines no run_packing() function")
        centers, radii = module.run_packing()
        return {
            "centers": [[float(x), float(y)] for x, y in centers],
            "radii": [float(r) for r in radii],
        }

    # --- platform side: trusted checks -------------------------------------------------
    def assess(
        self, raw: dict[str, Any], verified: dict[str, Any] | None, variant: str
    ) -> Assessment:
        problem = check_packing(raw)
        if problem:
            return Assessment(valid=False, reason=problem)
        centers = [(Fraction(x), Fraction(y)) for x, y in raw["centers"]]
        claimed = [Fraction(r) for r in raw["radii"]]
        radii = certified_radii(centers, claimed)
        if isinstance(radii, str):
            return Assessment(valid=False, reason=radii)
        total = outward(sum(radii, Fraction(0)), up=False)
        shrunk = sum(claimed, Fraction(0)) - sum(radii, Fraction(0))
        r = [float(v) for v in radii]
        mean = total / len(r)
        cv = math.sqrt(math.fsum((v - mean) ** 2 for v in r) / len(r)) / mean if mean else 0.0
        touching = sum(
            1
            for (x, y), v in zip(centers, radii, strict=True)
            if min(x - v, y - v, 1 - x - v, 1 - y - v) < Fraction(1, 10**6)
        )
        return Assessment(
            valid=True,
            score=total,
            metrics={
                "sum_radii": total,
                "min_radius": min(r),
                "max_radius": max(r),
                # What certification took off the reported radii (0 for a feasible packing).
                "repair": float(shrunk),
            },
            features={"radius_cv": min(cv, 1.0), "edge_share": touching / len(r)},
        )


def check_packing(raw: dict[str, Any]) -> str | None:
    """Why the reported data is not a packing at all (shapes, types, finiteness, signs), or
    None when it is one; geometry is ``certified_radii``'s."""
    centers, radii = raw.get("centers"), raw.get("radii")
    if not isinstance(centers, list) or not isinstance(radii, list):
        return "run_packing() must return (centers, radii) as sequences"
    if len(centers) != N_CIRCLES or len(radii) != N_CIRCLES:
        return f"expected {N_CIRCLES} centres and radii, got {len(centers)} and {len(radii)}"
    for i, (c, r) in enumerate(zip(centers, radii, strict=True)):
        if not (isinstance(c, list) and len(c) == 2):
            return f"centre {i} is not an (x, y) pair"
        values = (c[0], c[1], r)
        if not all(
            isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)
            for v in values
        ):
            return f"circle {i} has a non-finite or non-numeric value"
        if r < 0:
            return f"circle {i} has a negative radius {r:g}"
    return None


def certified_radii(
    centers: list[tuple[Fraction, Fraction]], radii: list[Fraction]
) -> list[Fraction] | str:
    """The radii shrunk into an exactly feasible packing, or why the packing is refused.

    Circle i shrinks by ``s_i``, the largest of its excess over each wall (exact) and half of
    each overlap it is in, where an overlap ``ri + rj - d`` is bounded from above with a lower
    bound of ``d`` (an integer square root, 2^-96 tight). Then every wall holds, and every
    overlapping pair has ``ri' + rj' <= ri + rj - overlap <= d``; pairs that were disjoint
    stay so, since radii only shrink."""
    n = len(radii)
    shrink, cause = [Fraction(0)] * n, [""] * n
    for i, ((x, y), r) in enumerate(zip(centers, radii, strict=True)):
        excess = max(r - x, r - y, x + r - 1, y + r - 1)
        if excess > 0:
            shrink[i] = excess
            cause[i] = (
                f"circle {i} (x={float(x):.6g}, y={float(y):.6g}, r={float(r):.6g}) is "
                f"not inside the unit square (by {float(excess):.3g})"
            )
    # Floats first: a pair apart by far more than float rounding (a relative 1e-15 here) is
    # disjoint in exact arithmetic too; only the (near-)touching pairs are worth fractions,
    # which cost the platform milliseconds per program.
    approx = [(float(x), float(y), float(r)) for (x, y), r in zip(centers, radii, strict=True)]
    for i in range(n):
        (xi, yi), ri = centers[i], radii[i]
        fxi, fyi, fri = approx[i]
        for j in range(i + 1, n):
            fxj, fyj, frj = approx[j]
            fd2 = (fxi - fxj) ** 2 + (fyi - fyj) ** 2
            if fd2 > 1e-200 and (fri + frj) ** 2 < fd2 * (1 - 1e-12):
                continue
            (xj, yj), rj = centers[j], radii[j]
            d2, reach = (xi - xj) ** 2 + (yi - yj) ** 2, ri + rj
            if reach * reach <= d2:
                continue
            overlap = reach - isqrt_bounds(d2)[0]
            for k in (i, j):
                if overlap / 2 > shrink[k]:
                    shrink[k] = overlap / 2
                    cause[k] = f"circles {i} and {j} overlap by {float(overlap):.3g}"
    worst = max(range(n), key=shrink.__getitem__)
    if shrink[worst] > REPAIR_LIMIT:
        return f"{cause[worst]}: more than {float(REPAIR_LIMIT):g} to repair"
    for i in range(n):
        if shrink[i] > radii[i]:
            return f"{cause[i]}: more than the radius {float(radii[i]):.3g} to repair"
    return [r - s for r, s in zip(radii, shrink, strict=True)]


# --- registration ------------------------------------------------------------------------
@hookimpl
def register_environments(register):
    register(CirclePacking())
