"""A step function proving an upper bound for Erdős's minimum overlap problem.

construct() returns M heights in [0, 1] of a step function f on M equal steps of [-1, 1]
(the harness rescales them exactly so that f integrates to 1); the bound is the largest
overlap of f with its complement 1 - f over all shifts, certified exactly, smaller is better.
Only the EVOLVE block may change.
"""

import numpy as np

# EVOLVE-BLOCK-START
STEPS = 200  # knob: [20, 4000] int log
HALF = 0.5  # knob: [0.3, 0.7]
SOFT = 0.02  # knob: [0.001, 0.3] log
DIP = 0.0  # knob: [0.0, 0.5]


def shape() -> np.ndarray:
    """A plateau of half-width HALF with logistic edges of width SOFT and a central dip."""
    t = (np.arange(STEPS) + 0.5) / STEPS * 2 - 1
    plateau = 1 / (1 + np.exp((np.abs(t) - HALF) / SOFT))
    return plateau * (1 - DIP * np.exp(-((t / (HALF / 2)) ** 2)))


def bound(h: np.ndarray) -> float:
    h = h * (len(h) / 2) / h.sum()
    return 2 / len(h) * np.correlate(h, 1 - h, mode="full").max()


# EVOLVE-BLOCK-END


def construct():
    return np.clip(shape(), 0.0, 1.0)


if __name__ == "__main__":
    print(f"bound: {bound(construct()):.6f}")
