"""N points in DIM dimensions with the smallest ratio of largest to smallest distance.

construct() returns N points (DIM coordinates each); the score is (max distance / min
distance)^2, computed exactly by the harness, smaller is better. Only the EVOLVE block may
change.
"""

import itertools

import numpy as np

N, DIM = 16, 2
PAIRS = np.array(list(itertools.combinations(range(N), 2)))

# EVOLVE-BLOCK-START
SEED = 3  # knob: [0, 1000] int
STEPS = 50  # knob: [0, 5000] int
STEP_SIZE = 0.05  # knob: [0.001, 0.3] log
COOLING = 0.999  # knob: [0.99, 0.99999]
JITTER = 0.0  # knob: [0.0, 0.2]


def initial(rng: np.random.Generator) -> np.ndarray:
    """A grid (2-D) or the cube's corners and face centres (3-D), cut to N points."""
    if DIM == 2:
        side = int(np.ceil(np.sqrt(N)))
        pts = np.array([(i, j) for i in range(side) for j in range(side)], dtype=float)
    else:
        corners = [(i, j, k) for i in (0, 1) for j in (0, 1) for k in (0, 1)]
        faces = [
            (0.5, 0.5, 0),
            (0.5, 0.5, 1),
            (0.5, 0, 0.5),
            (0.5, 1, 0.5),
            (0, 0.5, 0.5),
            (1, 0.5, 0.5),
        ]
        pts = np.array(corners + faces, dtype=float)
    return pts[:N] + JITTER * rng.normal(size=(N, DIM))


def ratio_squared(pts: np.ndarray) -> float:
    d = ((pts[PAIRS[:, 0]] - pts[PAIRS[:, 1]]) ** 2).sum(axis=1)
    return float(d.max() / d.min()) if d.min() > 0 else float("inf")


def improve(pts: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Move one point at a time; keep moves that do not increase the ratio."""
    best, size = ratio_squared(pts), STEP_SIZE
    scale = np.sqrt(((pts - pts.mean(axis=0)) ** 2).sum(axis=1).max())
    for _ in range(STEPS):
        trial = pts.copy()
        trial[rng.integers(N)] += rng.normal(0.0, size * scale, DIM)
        value = ratio_squared(trial)
        if value <= best:
            pts, best = trial, value
        size *= COOLING
    return pts


# EVOLVE-BLOCK-END


def construct():
    rng = np.random.default_rng(SEED)
    return improve(initial(rng), rng)


if __name__ == "__main__":
    print(f"ratio^2: {ratio_squared(construct()):.6f}")
