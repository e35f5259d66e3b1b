"""circle-packing: 26 circles in the unit square, maximise the sum of radii.

The program's ``run_packing()`` returns centres and radii; the harness never trusts any claim
beyond those numbers: ``assess`` (in the platform process) re-checks containment and
non-overlap itself and computes the sum.
"""

from __future__ import annotations

import math
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

N_CIRCLES = 26
TOLERANCE = 1e-9
RECORDS = {"AlphaEvolve": 2.63586, "ShinkaEvolve": 2.63598, "OpenEvolve": 2.63429}


class CirclePacking(Environment):
    name: ClassVar[str] = "circle-packing"
    description: ClassVar[str] = (
        "Place 26 non-overlapping circles inside the unit square [0,1]x[0,1] so that the sum "
        "of their radii is as large as possible. run_packing() must return (centers, radii): "
        "26 [x, y] pairs and 26 radii. The harness verifies containment and non-overlap "
        f"(tolerance {TOLERANCE:g}); any violation makes the program invalid. Besides the "
        "standard library, the program may import numpy and scipy (e.g. scipy.optimize for "
        "continuous optimisation of centres and radii)."
    )
    variants: ClassVar[dict[str, Variant]] = {
        "n26": Variant(name="n26", description="26 circles, unit square"),
    }
    default_variant: ClassVar[str] = "n26"
    preload: ClassVar[tuple[str, ...]] = ("numpy",)
    packages: ClassVar[tuple[str, ...]] = ("numpy", "scipy")

    def objective(self, variant: str) -> Objective:
        return Objective(metric="sum_radii", direction="maximize", records=RECORDS)

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
        centers, radii = raw["centers"], raw["radii"]
        total = math.fsum(radii)
        mean = total / len(radii)
        cv = (
            math.sqrt(math.fsum((r - mean) ** 2 for r in radii) / len(radii)) / mean
            if mean
            else 0.0
        )
        touching = sum(
            1
            for (x, y), r in zip(centers, radii, strict=True)
            if min(x - r, y - r, 1 - x - r, 1 - y - r) < 1e-6
        )
        return Assessment(
            valid=True,
            score=total,
            metrics={"sum_radii": total, "min_radius": min(radii), "max_radius": max(radii)},
            features={"radius_cv": min(cv, 1.0), "edge_share": touching / len(radii)},
        )


def check_packing(raw: dict[str, Any]) -> str | None:
    """Why the reported packing is not a valid one, or None when it is."""
    centers, radii = raw.get("centers"), raw.get("radii")
    if not isinstance(centers, list) or not isinstance(radii, list):
        return "run_packing() must return (centers, radii) as sequences"
    if len(centers) != N_CIRCLES or len(radii) != N_CIRCLES:
        return f"expected {N_CIRCLES} centres and radii, got {len(centers)} and {len(radii)}"
    for i, (c, r) in enumerate(zip(centers, radii, strict=True)):
        if not (isinstance(c, list) and len(c) == 2):
            return f"centre {i} is not an (x, y) pair"
        values = (c[0], c[1], r)
        if not all(isinstance(v, (int, float)) and math.isfinite(v) for v in values):
            return f"circle {i} has a non-finite or non-numeric value"
        x, y = c
        if r < 0:
            return f"circle {i} has a negative radius {r:g}"
        if (
            x - r < -TOLERANCE
            or y - r < -TOLERANCE
            or x + r > 1 + TOLERANCE
            or y + r > 1 + TOLERANCE
        ):
            return f"circle {i} (x={x:.6g}, y={y:.6g}, r={r:.6g}) is not inside the unit square"
    for i in range(N_CIRCLES):
        xi, yi = centers[i]
        for j in range(i + 1, N_CIRCLES):
            xj, yj = centers[j]
            gap = math.hypot(xi - xj, yi - yj) - (radii[i] + radii[j])
            if gap < -TOLERANCE:
                return f"circles {i} and {j} overlap by {-gap:.3g}"
    return None


# --- registration ------------------------------------------------------------------------
@hookimpl
def register_environments(register):
    register(CirclePacking())
