"""Find the x in [-5, 5] where a bumpy function is lowest; the evaluator scores how low."""

import math

# EVOLVE-BLOCK-START
START = 3.0
STEP = 0.5
ROUNDS = 12
SHRINK = 0.7


def search() -> float:
    """Pattern search: step left or right while that helps, shrink the step when not."""
    x, step = START, STEP
    for _ in range(ROUNDS):
        best = min((x - step, x, x + step), key=bumpy)
        if best == x:
            step *= SHRINK
        x = best
    return x


# EVOLVE-BLOCK-END


def bumpy(x: float) -> float:
    return (x - 1.3) ** 2 + 0.5 * math.sin(5 * x)


def run_search() -> float:
    return float(search())
