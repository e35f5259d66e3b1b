"""The first autocorrelation inequality: an upper bound on the constant C with
``max_t (f*f)(t) >= C (int f)^2`` for every non-negative f supported on [-1/4, 1/4].

A candidate returns the heights a_0..a_{m-1} >= 0 of a step function on m equal steps of
[-1/4, 1/4]. Then f*f is piecewise linear with breakpoints on the grid, so its maximum is at
a breakpoint, and the bound it proves is exactly ``2m max_k (a*a)_k / (sum a)^2``.

What is certified: the heights rounded *down* to integers ``floor(a_i 2^52 / max a)`` (a
relative change below 2^-52, so the bound moves by far less than any published digit). That
step function is itself non-negative, so its exact bound, computed with integer arithmetic
(one big-integer product for the convolution), is a proven upper bound on C; it is rounded up
into the stored float.
"""

from __future__ import annotations

from fractions import Fraction
from typing import Any, ClassVar

from progressbench import Feature

from .base import Certificate, OpenMathEnvironment, Problem, Record
from .exact import Infeasible, convolve, quantize, vector
from .sources import GGTW, NOTEBOOK, THETA, TTT

MAX_STEPS = 20_000
BITS = 52


def certify_autocorrelation(raw: Any) -> Certificate:
    heights = vector(raw, None, "heights", MAX_STEPS)
    for i, h in enumerate(heights):
        if h < 0:
            raise Infeasible(f"height {i} is negative ({h:.3g}): f must be non-negative")
    q = quantize(heights, BITS, relative=True)
    total = sum(q)
    if total == 0:
        raise Infeasible("every height is zero")
    conv = convolve(q, q)
    peak = max(conv)
    m = len(q)
    flat = sum(1 for c in conv if 100 * c >= 99 * peak)
    return Certificate(
        value=Fraction(2 * m * peak, total * total),
        metrics={"steps": m},
        features={
            "support": sum(1 for v in q if v) / m,
            "plateau": flat / len(conv),
        },
    )


class Autocorrelation(OpenMathEnvironment):
    name: ClassVar[str] = "autocorrelation"
    description: ClassVar[str] = (
        "AlphaEvolve B.1: a step function proving an upper bound on the first "
        "autocorrelation constant, verified exactly"
    )
    problems: ClassVar[dict[str, Problem]] = {
        "first": Problem(
            variant="first",
            title="First autocorrelation inequality (upper bound on C)",
            statement=(
                "Let C be the largest constant with max_{-1/2<=t<=1/2} (f*f)(t) >= C "
                "(int_{-1/4}^{1/4} f)^2 for all non-negative f. Find a non-negative step "
                "function on [-1/4, 1/4] with m equal steps whose ratio max(f*f)/(int f)^2 "
                "= 2m max_k (a*a)_k / (sum a)^2 is as small as possible: it is an upper bound "
                f"on C. At most {MAX_STEPS} steps."
            ),
            returns="the list of m non-negative step heights",
            metric="upper_bound",
            direction="minimize",
            unit="upper bound on C",
            records=(
                Record("Matolcsi-Vinuesa", 1.50992, GGTW, 2010),
                Record("AlphaEvolve", 1.5053, NOTEBOOK, 2025),
                Record("AlphaEvolve, preprint", 1.503164, GGTW, 2025),
                Record("ThetaEvolve", 1.503133, THETA, 2025),
                Record("TTT-Discover", 1.5029, TTT, 2026),
            ),
            features=(
                Feature(name="support", low=0.0, high=1.0, bins=8),
                Feature(name="plateau", low=0.0, high=0.5, bins=8),
            ),
            baseline="baseline_autocorrelation",
            certify=certify_autocorrelation,
            verifier=(
                "The harness rounds the heights down to 52-bit integers relative to the "
                "largest, convolves them exactly and certifies the exact bound, rounded up."
            ),
        ),
    }
