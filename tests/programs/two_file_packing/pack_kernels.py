"""Radii for fixed centres: the second file of the two-file circle-packing fixture."""

from __future__ import annotations

import numpy as np

# EVOLVE-BLOCK-START
GROW_ROUNDS = 1  # knob: [0, 6] int
SHRINK = 1.0  # knob: [0.9, 1.0]


def max_radii(centers: np.ndarray) -> np.ndarray:
    """Largest radii by pairwise shrinking, then growing each circle into its slack."""
    wall = np.minimum.reduce([centers[:, 0], centers[:, 1], 1 - centers[:, 0], 1 - centers[:, 1]])
    r = wall.copy() * SHRINK
    dist = np.hypot(*(centers[:, None, :] - centers[None, :, :]).transpose(2, 0, 1))
    for i in range(len(r)):
        for j in range(i + 1, len(r)):
            if r[i] + r[j] > dist[i, j]:
                scale = dist[i, j] / (r[i] + r[j])
                r[i] *= scale
                r[j] *= scale
    for _ in range(GROW_ROUNDS):
        for i in range(len(r)):
            gaps = dist[i] - r
            gaps[i] = np.inf
            r[i] = max(0.0, min(wall[i], gaps.min()))
    return r


# EVOLVE-BLOCK-END
