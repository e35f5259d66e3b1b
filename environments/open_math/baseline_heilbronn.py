"""Heilbronn problem: N points whose smallest triangle is as large as possible.

construct() returns N [x, y] points. For REGION "triangle" they must lie in the equilateral
triangle (0, 0), (1, 0), (1/2, sqrt(3)/2) and the score is the smallest triangle area over
sqrt(3)/4; for REGION "convex" the region is the points' convex hull and the score is the
smallest triangle area over the hull's area. The harness verifies exactly. Only the EVOLVE
block may change; the code after it keeps triangle points safely inside.
"""

import itertools
import math

import numpy as np

N = 11
REGION = "convex"
CORNERS = np.array([[0.0, 0.0], [1.0, 0.0], [0.5, math.sqrt(3) / 2]])
TRIPLES = np.array(list(itertools.combinations(range(N), 3)))

# EVOLVE-BLOCK-START
START = "ring"  # knob: {"ring", "random"}
SEED = 7  # knob: [0, 1000] int
STEPS = 50  # knob: [0, 4000] int
STEP_SIZE = 0.05  # knob: [0.001, 0.3] log
COOLING = 0.999  # knob: [0.99, 0.99999]


def initial(rng: np.random.Generator) -> np.ndarray:
    """Points on a circle (the regular N-gon), or uniformly random ones."""
    if START == "ring":
        a = 2 * math.pi * np.arange(N) / N
        pts = np.stack([0.5 + 0.3 * np.cos(a), 0.3 + 0.3 * np.sin(a)], axis=1)
    else:
        pts = rng.random((N, 2))
    return to_region(pts)


def min_area(pts: np.ndarray) -> float:
    a, b, c = pts[TRIPLES[:, 0]], pts[TRIPLES[:, 1]], pts[TRIPLES[:, 2]]
    cross = (b[:, 0] - a[:, 0]) * (c[:, 1] - a[:, 1]) - (b[:, 1] - a[:, 1]) * (c[:, 0] - a[:, 0])
    return float(np.abs(cross).min()) / 2


def score(pts: np.ndarray) -> float:
    if REGION == "triangle":
        return min_area(pts) / (math.sqrt(3) / 4)
    from scipy.spatial import ConvexHull

    return min_area(pts) / ConvexHull(pts).volume


def improve(pts: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Move one point at a time; keep moves that do not shrink the smallest triangle."""
    best, size = score(pts), STEP_SIZE
    for _ in range(STEPS):
        trial = pts.copy()
        k = rng.integers(N)
        trial[k] += rng.normal(0.0, size, 2)
        trial = to_region(trial)
        value = score(trial)
        if value >= best:
            pts, best = trial, value
        size *= COOLING
    return pts


# EVOLVE-BLOCK-END


def to_region(pts: np.ndarray) -> np.ndarray:
    """For the triangle: each point pulled inside with barycentric margin 1e-9 (far more
    than float rounding), so the exact containment check passes."""
    if REGION != "triangle":
        return pts
    w = pts[:, 1] / CORNERS[2, 1]
    v = pts[:, 0] - w / 2
    u = 1 - v - w
    bary = np.clip(np.stack([u, v, w], axis=1), 1e-9, None)
    bary /= bary.sum(axis=1, keepdims=True)
    return bary @ CORNERS


def construct():
    rng = np.random.default_rng(SEED)
    return to_region(improve(initial(rng), rng))


if __name__ == "__main__":
    print(f"score: {score(construct()):.6f}")
