"""Pack 26 circles into the unit square, maximising the sum of their radii.

The harness calls ``run_packing()`` and certifies the geometry itself, exactly, at tolerance 0:
a circle crossing a wall or another circle is shrunk by the excess and the score is the sum of
the shrunk radii (an excess above 1e-6 makes the program invalid). Only the EVOLVE block may
change; ``fit`` after it keeps whatever the block returns feasible.
"""

import math

import numpy as np

N = 26

# EVOLVE-BLOCK-START
RING1_COUNT = 8  # knob: [5, 11] int
RING1_RADIUS = 0.25  # knob: [0.12, 0.35]
RING2_RADIUS = 0.42  # knob: [0.3, 0.49]
RING2_PHASE = 0.1  # knob: [0.0, 0.8]
SQUASH = 1.0  # knob: [0.8, 1.25]
GROW_ROUNDS = 0  # knob: [0, 6] int


def place_centers() -> np.ndarray:
    """A centre circle, an inner ring and an outer ring pushed toward the square's edges."""
    pts = [(0.5, 0.5)]
    for k in range(RING1_COUNT):
        a = 2 * math.pi * k / RING1_COUNT
        pts.append((0.5 + RING1_RADIUS * math.cos(a), 0.5 + RING1_RADIUS * math.sin(a)))
    outer = N - 1 - RING1_COUNT
    for k in range(outer):
        a = 2 * math.pi * k / outer + RING2_PHASE
        # Stretch the ring toward the square: |cos|^SQUASH style superellipse.
        c, s = math.cos(a), math.sin(a)
        x = math.copysign(abs(c) ** (1 / SQUASH), c)
        y = math.copysign(abs(s) ** (1 / SQUASH), s)
        pts.append((0.5 + RING2_RADIUS * x, 0.5 + RING2_RADIUS * y))
    return np.clip(np.array(pts), 0.01, 0.99)


def max_radii(centers: np.ndarray) -> np.ndarray:
    """Large radii for fixed centres: as large as the walls allow, pairwise shrunk to fit."""
    wall = np.minimum.reduce([centers[:, 0], centers[:, 1], 1 - centers[:, 0], 1 - centers[:, 1]])
    r = fit(centers, wall)
    dist = np.hypot(*(centers[:, None, :] - centers[None, :, :]).transpose(2, 0, 1))
    # Shrinking leaves slack; let each circle grow into it, one at a time.
    for _ in range(GROW_ROUNDS):
        for i in range(len(r)):
            gaps = dist[i] - r
            gaps[i] = np.inf
            r[i] = max(0.0, min(wall[i], gaps.min()))
    return r


# EVOLVE-BLOCK-END

# A relative margin far above float rounding (~1e-16), so that the rounding of the steps
# below never leaves an overlap for the verifier to shrink.
MARGIN = 1e-12


def fit(centers, radii) -> np.ndarray:
    """Radii made feasible for these centres: clipped to the walls, each overlapping pair
    scaled down to touch, then shrunk by ``MARGIN``."""
    c = np.asarray(centers, dtype=float)
    wall = np.minimum.reduce([c[:, 0], c[:, 1], 1 - c[:, 0], 1 - c[:, 1]])
    r = np.clip(np.minimum(np.asarray(radii, dtype=float), wall), 0.0, None)
    dist = np.hypot(*(c[:, None, :] - c[None, :, :]).transpose(2, 0, 1))
    for i in range(len(r)):
        for j in range(i + 1, len(r)):
            if r[i] + r[j] > dist[i, j]:
                scale = dist[i, j] / (r[i] + r[j])
                r[i] *= scale
                r[j] *= scale
    return r * (1 - MARGIN)


def run_packing():
    centers = np.clip(np.asarray(place_centers(), dtype=float), 0.0, 1.0)
    radii = fit(centers, max_radii(centers))
    return centers.tolist(), radii.tolist()


if __name__ == "__main__":
    c, r = run_packing()
    print(f"sum of radii: {sum(r):.6f}")
