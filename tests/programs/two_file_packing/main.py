"""A two-file circle-packing program (the fixture of `run --program DIR`): this entry file
places the centres, ``pack_kernels.py`` sizes the circles. Both files have an EVOLVE block."""

import math

import numpy as np
import pack_kernels

N = 26

# EVOLVE-BLOCK-START
RING1_COUNT = 8  # knob: [5, 11] int
RING1_RADIUS = 0.25  # knob: [0.12, 0.35]
RING2_RADIUS = 0.42  # knob: [0.3, 0.49]
RING2_PHASE = 0.1  # knob: [0.0, 0.8]


def place_centers() -> np.ndarray:
    """A centre circle, an inner ring and an outer ring."""
    pts = [(0.5, 0.5)]
    for k in range(RING1_COUNT):
        a = 2 * math.pi * k / RING1_COUNT
        pts.append((0.5 + RING1_RADIUS * math.cos(a), 0.5 + RING1_RADIUS * math.sin(a)))
    outer = N - 1 - RING1_COUNT
    for k in range(outer):
        a = 2 * math.pi * k / outer + RING2_PHASE
        pts.append((0.5 + RING2_RADIUS * math.cos(a), 0.5 + RING2_RADIUS * math.sin(a)))
    return np.clip(np.array(pts), 0.01, 0.99)


# EVOLVE-BLOCK-END


def run_packing():
    centers = place_centers()
    radii = pack_kernels.max_radii(centers)
    return centers.tolist(), radii.tolist()
