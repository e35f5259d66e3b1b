"""A step function proving an upper bound on the first autocorrelation constant C.

construct() returns M non-negative heights of a step function on M equal steps of
[-1/4, 1/4]; the bound is 2M max(a*a) / (sum a)^2, certified exactly by the harness,
smaller is better. Only the EVOLVE block may change.
"""

import numpy as np

# EVOLVE-BLOCK-START
STEPS = 200  # knob: [20, 4000] int log
ALPHA = 0.0  # knob: [-0.5, 0.5]
ITERS = 0  # knob: [0, 2000] int
RATE = 0.05  # knob: [0.001, 0.5] log
POWER = 10.0  # knob: [2.0, 64.0] log


def shape() -> np.ndarray:
    """(1 - t^2)^-ALPHA on the step midpoints t in (-1, 1); ALPHA = 0 is the constant."""
    t = (np.arange(STEPS) + 0.5) / STEPS * 2 - 1
    return (1 - t * t) ** -ALPHA


def bound(a: np.ndarray) -> float:
    return 2 * len(a) * np.convolve(a, a).max() / a.sum() ** 2


def improve(a: np.ndarray) -> np.ndarray:
    """Projected gradient steps on a smooth maximum (an L^POWER norm) of a*a."""
    a = a / a.sum()
    best, best_a = bound(a), a
    for _ in range(ITERS):
        conv = np.convolve(a, a)
        weight = (conv / conv.max()) ** (POWER - 1)
        grad = np.correlate(weight, a, mode="valid")
        grad -= grad.mean()  # keep the total mass where it is
        a = np.maximum(a - RATE * a.mean() * grad / (np.abs(grad).max() or 1.0), 0.0)
        a /= a.sum()
        value = bound(a)
        if value < best:
            best, best_a = value, a
    return best_a


# EVOLVE-BLOCK-END


def construct():
    return improve(shape())


if __name__ == "__main__":
    print(f"bound: {bound(construct()):.6f}")
