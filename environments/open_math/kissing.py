"""The kissing configuration in 11 dimensions: as many unit spheres as possible touching a
central unit sphere without overlapping.

A candidate returns non-zero vectors (integer or float coordinates: every float is an exact
binary rational). The spheres touching the centre at the directions ``2 v / |v|`` are
pairwise disjoint iff every two directions are at least 60 degrees apart, i.e.
``<u, v> <= |u| |v| / 2``; the verifier decides it exactly with integers: after scaling each
vector to integer coordinates (which changes no angle), a pair passes iff ``<u, v> <= 0`` or
``4 <u, v>^2 <= |u|^2 |v|^2``. The certified value is the number of vectors.
"""

from __future__ import annotations

import math
import operator
from fractions import Fraction
from typing import Any, ClassVar

from progressbench import Feature

from .base import Certificate, OpenMathEnvironment, Problem, Record
from .exact import Infeasible, matrix, to_integers
from .sources import NOTEBOOK

DIM = 11
# The best upper bound known for dimension 11 is below 900; no valid set is larger.
MAX_VECTORS = 1000
EINSTEIN = (
    "EinsteinArena: Harnessing the Collective Intelligence of AI Agents in the Wild for New "
    "Discoveries (arXiv:2606.10402, 2026)"
)
GANZHINOV = "M. Ganzhinov, highly symmetric kissing configurations (Aalto University, 2025)"


def _integer_rows(rows: list[list[Fraction]]) -> list[list[int]]:
    out = []
    for i, row in enumerate(rows):
        ints, _ = to_integers(row)
        g = math.gcd(*ints)
        if g == 0:
            raise Infeasible(f"vector {i} is zero")
        out.append([v // g for v in ints])
    return out


def certify_kissing(raw: Any, dim: int = DIM) -> Certificate:
    rows = _integer_rows(matrix(raw, None, dim, "vectors", MAX_VECTORS))
    norms = [sum(v * v for v in row) for row in rows]
    contacts = [0] * len(rows)
    for i, u in enumerate(rows):
        for j in range(i + 1, len(rows)):
            dot = sum(map(operator.mul, u, rows[j]))
            if dot <= 0:
                continue
            lhs, rhs = 4 * dot * dot, norms[i] * norms[j]
            if lhs > rhs:
                cos = float(Fraction(dot) / math.isqrt(rhs)) if rhs else 1.0
                raise Infeasible(
                    f"vectors {i} and {j} are less than 60 degrees apart (cos = {cos:.12g} "
                    "> 1/2): their spheres overlap"
                )
            if lhs == rhs:
                contacts[i] += 1
                contacts[j] += 1
    return Certificate(
        value=Fraction(len(rows)),
        metrics={"contacts": sum(contacts) / 2},
        features={
            "contact_degree": sum(contacts) / len(rows) / (2 * dim),
            "norm_classes": len(set(norms)) / len(rows),
        },
    )


class Kissing(OpenMathEnvironment):
    name: ClassVar[str] = "kissing"
    description: ClassVar[str] = (
        "AlphaEvolve B.11: a kissing configuration in 11 dimensions, every angle checked in "
        "exact integer arithmetic"
    )
    problems: ClassVar[dict[str, Problem]] = {
        "d11": Problem(
            variant="d11",
            title="Kissing configuration in 11 dimensions",
            statement=(
                "Find as many non-zero vectors in R^11 as possible such that every two of them "
                "are at least 60 degrees apart: unit spheres centred at 2v/|v| then all touch "
                "the central unit sphere and no two overlap. Integer coordinates are exact; "
                "scale a rational vector by its denominators first (angles do not change)."
            ),
            returns=f"a list of vectors, each a list of {DIM} integers (or floats)",
            metric="spheres",
            direction="maximize",
            unit="number of spheres",
            records=(
                Record("Ganzhinov", 592, GANZHINOV, 2025),
                Record("AlphaEvolve", 593, NOTEBOOK, 2025),
                Record("EinsteinArena agents, preprint", 604, EINSTEIN, 2026),
            ),
            features=(
                Feature(name="contact_degree", low=0.0, high=2.0, bins=8),
                Feature(name="norm_classes", low=0.0, high=0.05, bins=6),
            ),
            baseline="baseline_kissing",
            certify=certify_kissing,
            verifier=(
                "The harness scales every vector to integers and checks each pair's angle "
                "exactly (4<u,v>^2 <= |u|^2|v|^2 where <u,v> > 0); the score is the count."
            ),
        ),
    }
