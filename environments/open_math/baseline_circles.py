"""Pack N disjoint circles into the unit square, maximising the sum of their radii.

construct() returns (centers, radii). The harness re-checks the packing in exact arithmetic
with tolerance 0 and certifies the sum of the radii. Only the EVOLVE block may change; the
code after it makes the radii safely feasible (floating-point contacts can overshoot by an
ulp, and a linear-programming solver by its tolerance).
"""

import math

import numpy as np

N = 26

# EVOLVE-BLOCK-START
RING1_COUNT = 8  # knob: [5, 12] int
RING1_RADIUS = 0.25  # knob: [0.1, 0.35]
RING2_RADIUS = 0.42  # knob: [0.3, 0.49]
RING2_PHASE = 0.1  # knob: [0.0, 0.8]
SQUASH = 1.0  # knob: [0.8, 1.3]
RELAX_STEPS = 0  # knob: [0, 80] int
RELAX_RATE = 0.02  # knob: [0.001, 0.1] log
RADII = "shrink"  # knob: {"shrink", "lp"}


def place_centers() -> np.ndarray:
    """A centre circle, an inner ring, and an outer ring stretched toward the corners."""
    pts = [(0.5, 0.5)]
    for k in range(RING1_COUNT):
        a = 2 * math.pi * k / RING1_COUNT
        pts.append((0.5 + RING1_RADIUS * math.cos(a), 0.5 + RING1_RADIUS * math.sin(a)))
    outer = N - 1 - RING1_COUNT
    for k in range(outer):
        a = 2 * math.pi * k / outer + RING2_PHASE
        c, s = math.cos(a), math.sin(a)
        x = math.copysign(abs(c) ** (1 / SQUASH), c)
        y = math.copysign(abs(s) ** (1 / SQUASH), s)
        pts.append((0.5 + RING2_RADIUS * x, 0.5 + RING2_RADIUS * y))
    return np.clip(np.array(pts), 0.02, 0.98)


def relax(centers: np.ndarray) -> np.ndarray:
    """Push centres apart (and away from the walls) a few times: crowded circles get small."""
    c = centers.copy()
    for _ in range(RELAX_STEPS):
        diff = c[:, None, :] - c[None, :, :]
        dist = np.linalg.norm(diff, axis=2) + np.eye(len(c))
        push = (diff / dist[:, :, None] ** 3).sum(axis=1)
        walls = 1 / c**2 - 1 / (1 - c) ** 2
        step = push + 0.25 * walls
        c = np.clip(c + RELAX_RATE * step / np.abs(step).max(), 0.02, 0.98)
    return c


def shrink_radii(centers: np.ndarray) -> np.ndarray:
    """Largest radii by pairwise shrinking from the wall distances (always feasible)."""
    r = np.minimum.reduce([centers[:, 0], centers[:, 1], 1 - centers[:, 0], 1 - centers[:, 1]])
    dist = np.linalg.norm(centers[:, None, :] - centers[None, :, :], axis=2)
    for i in range(len(r)):
        for j in range(i + 1, len(r)):
            if r[i] + r[j] > dist[i, j]:
                scale = dist[i, j] / (r[i] + r[j])
                r[i] *= scale
                r[j] *= scale
    return r


def lp_radii(centers: np.ndarray) -> np.ndarray:
    """The radii that maximise the sum for fixed centres: a linear programme."""
    from scipy.optimize import linprog

    n = len(centers)
    rows, bounds = [], []
    dist = np.linalg.norm(centers[:, None, :] - centers[None, :, :], axis=2)
    for i in range(n):
        for j in range(i + 1, n):
            row = np.zeros(n)
            row[i] = row[j] = 1.0
            rows.append(row)
            bounds.append(dist[i, j])
    walls = np.minimum.reduce([centers[:, 0], centers[:, 1], 1 - centers[:, 0], 1 - centers[:, 1]])
    res = linprog(
        -np.ones(n),
        A_ub=np.array(rows),
        b_ub=np.array(bounds),
        bounds=[(0, w) for w in walls],
        method="highs",
    )
    return res.x if res.success else shrink_radii(centers)


def radii_for(centers: np.ndarray) -> np.ndarray:
    return lp_radii(centers) if RADII == "lp" else shrink_radii(centers)


# EVOLVE-BLOCK-END


def make_feasible(centers: np.ndarray, radii: np.ndarray) -> np.ndarray:
    """Shrink radii until every constraint holds with a relative margin of 1e-12."""
    margin = 1 - 1e-12
    r = np.maximum(np.nan_to_num(np.asarray(radii, dtype=float)), 0.0)
    walls = np.minimum.reduce([centers[:, 0], centers[:, 1], 1 - centers[:, 0], 1 - centers[:, 1]])
    r = np.minimum(r, np.maximum(walls, 0.0)) * margin
    dist = np.linalg.norm(centers[:, None, :] - centers[None, :, :], axis=2)
    for i in range(len(r)):
        for j in range(i + 1, len(r)):
            room = dist[i, j] * margin
            if r[i] + r[j] > room:
                scale = room / (r[i] + r[j])
                r[i] *= scale
                r[j] *= scale
    return r


def construct():
    centers = np.clip(relax(place_centers()), 0.0, 1.0)
    return centers, make_feasible(centers, radii_for(centers))


if __name__ == "__main__":
    c, r = construct()
    print(f"sum of radii: {r.sum():.6f}")
