"""A circle packing of one's own, as a person would hand it to `progressbench eval`: centres
on a staggered grid, then the best radii for them from a linear programme (scipy)."""

import numpy as np
from scipy.optimize import linprog

N = 26


def centres() -> np.ndarray:
    rows = [5, 6, 4, 6, 5]
    points = []
    for i, count in enumerate(rows):
        y = (i + 0.5) / len(rows)
        points += [((j + 0.5) / count, y) for j in range(count)]
    return np.array(points)


def best_radii(c: np.ndarray) -> np.ndarray:
    """Maximise the sum of radii for fixed centres: r_i + r_j <= |c_i - c_j|, r_i <= wall."""
    n = len(c)
    pairs = [(i, j) for i in range(n) for j in range(i + 1, n)]
    a = np.zeros((len(pairs), n))
    for k, (i, j) in enumerate(pairs):
        a[k, i] = a[k, j] = 1.0
    gaps = [float(np.hypot(*(c[i] - c[j]))) for i, j in pairs]
    wall = np.minimum.reduce([c[:, 0], c[:, 1], 1 - c[:, 0], 1 - c[:, 1]])
    found = linprog(-np.ones(n), A_ub=a, b_ub=gaps, bounds=[(0.0, w) for w in wall])
    return np.maximum(found.x - 1e-12, 0.0)


def run_packing():
    c = centres()
    return c.tolist(), best_radii(c).tolist()
