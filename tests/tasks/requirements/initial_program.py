"""Fit a curve to noisy samples; the evaluator scores the fit on points it keeps to itself."""

import numpy as np
from scipy.optimize import least_squares

# EVOLVE-BLOCK-START
DEGREE = 1
RIDGE = 0.5


def fit(xs: np.ndarray, ys: np.ndarray) -> np.ndarray:
    """Polynomial coefficients (highest power first) by ridge-regularised least squares."""

    def residuals(c: np.ndarray) -> np.ndarray:
        return np.concatenate([np.polyval(c, xs) - ys, RIDGE * c])

    return least_squares(residuals, np.zeros(DEGREE + 1)).x


# EVOLVE-BLOCK-END


def predict(xs: np.ndarray, ys: np.ndarray, at: np.ndarray) -> list[float]:
    return [float(v) for v in np.polyval(fit(xs, ys), at)]
