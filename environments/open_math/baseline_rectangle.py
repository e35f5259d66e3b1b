"""Pack 21 disjoint circles into a rectangle of perimeter 4, maximising the sum of radii.

construct() returns (centers, radii); the rectangle is their bounding box, which must have
width + height <= 2. The harness re-checks everything in exact arithmetic with tolerance 0.
Only the EVOLVE block may change; the code after it keeps the circles safely inside the
WIDTH x (2 - WIDTH) box and apart.
"""

import numpy as np

N = 21

# EVOLVE-BLOCK-START
WIDTH = 1.3  # knob: [0.6, 1.4]
ROWS = 3  # knob: [2, 6] int
STAGGER = 0.0  # knob: [0.0, 0.5]
RADII = "shrink"  # knob: {"shrink", "lp"}


def place_centers(width: float, height: float) -> np.ndarray:
    """Rows of (almost) equal length, every other row shifted by STAGGER of a cell."""
    counts = [N // ROWS + (1 if k < N % ROWS else 0) for k in range(ROWS)]
    pts = []
    for k, count in enumerate(counts):
        y = (k + 0.5) * height / ROWS
        shift = STAGGER * (k % 2)
        for j in range(count):
            x = (j + 0.5 + shift) * width / (count + shift)
            pts.append((x, y))
    return np.array(pts)


def shrink_radii(centers: np.ndarray, width: float, height: float) -> np.ndarray:
    x, y = centers[:, 0], centers[:, 1]
    r = np.minimum.reduce([x, y, width - x, height - y])
    dist = np.linalg.norm(centers[:, None, :] - centers[None, :, :], axis=2)
    for i in range(len(r)):
        for j in range(i + 1, len(r)):
            if r[i] + r[j] > dist[i, j]:
                scale = dist[i, j] / (r[i] + r[j])
                r[i] *= scale
                r[j] *= scale
    return r


def lp_radii(centers: np.ndarray, width: float, height: float) -> np.ndarray:
    from scipy.optimize import linprog

    n = len(centers)
    dist = np.linalg.norm(centers[:, None, :] - centers[None, :, :], axis=2)
    rows, room = [], []
    for i in range(n):
        for j in range(i + 1, n):
            row = np.zeros(n)
            row[i] = row[j] = 1.0
            rows.append(row)
            room.append(dist[i, j])
    x, y = centers[:, 0], centers[:, 1]
    walls = np.minimum.reduce([x, y, width - x, height - y])
    res = linprog(
        -np.ones(n),
        A_ub=np.array(rows),
        b_ub=np.array(room),
        bounds=[(0, w) for w in walls],
        method="highs",
    )
    return res.x if res.success else shrink_radii(centers, width, height)


def radii_for(centers: np.ndarray, width: float, height: float) -> np.ndarray:
    if RADII == "lp":
        return lp_radii(centers, width, height)
    return shrink_radii(centers, width, height)


# EVOLVE-BLOCK-END


def make_feasible(centers: np.ndarray, radii: np.ndarray, width: float, height: float):
    """Shrink radii until every constraint holds with a relative margin of 1e-12."""
    margin = 1 - 1e-12
    x, y = centers[:, 0], centers[:, 1]
    walls = np.maximum(np.minimum.reduce([x, y, width - x, height - y]), 0.0)
    r = np.maximum(np.nan_to_num(np.asarray(radii, dtype=float)), 0.0)
    r = np.minimum(r, walls) * margin
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
    width = min(max(WIDTH, 0.0), 2.0)
    height = 2.0 - width
    centers = place_centers(width, height)
    return centers, make_feasible(centers, radii_for(centers, width, height), width, height)


if __name__ == "__main__":
    c, r = construct()
    print(f"sum of radii: {r.sum():.6f}")
