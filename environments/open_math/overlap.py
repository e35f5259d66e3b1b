"""Erdős's minimum overlap problem: an upper bound on the constant M with
``sup_x int f(t) g(x+t) dt >= M`` for all f: [-1, 1] -> [0, 1] with int f = 1 and
g = 1 - f on [-1, 1] (both zero outside).

A candidate returns the heights h_0..h_{m-1} in [0, 1] of a step function on m equal steps
of [-1, 1]. The overlap of two step functions on one grid is piecewise linear in the shift
with breakpoints on the grid, so its supremum is the largest of the 2m - 1 grid shifts:
``(2/m) max_k sum_i f_i g_{i+k}``.

What is certified: the heights rounded down to multiples of 2^-52 (still in [0, 1]) and then
moved, exactly, onto the constraint int f = 1: scaled down by ``(m/2)/sum`` when they sum to
more than m/2, or raised toward 1 by ``f = q + lam (1 - q)`` when they sum to less (both keep
f in [0, 1]). The overlap of that function is computed with integer arithmetic and rounded up.
"""

from __future__ import annotations

from fractions import Fraction
from itertools import accumulate
from typing import Any, ClassVar

from progressbench import Feature

from .base import Certificate, OpenMathEnvironment, Problem, Record
from .exact import Infeasible, convolve, quantize, vector
from .sources import GGTW, TTT

MAX_STEPS = 20_000
BITS = 52


def _max_overlap(q: list[int], a: int, b: int, d: int) -> tuple[int, int]:
    """The largest ``d^2 D^2 sum_i f_i g_{i+k}`` over shifts k (f = (a q / D + b) / d, in units
    D = 2^BITS) and how many shifts reach it."""
    m, unit = len(q), 1 << BITS
    # corr[k + m - 1] = sum_i q_i q_{i+k}: convolving with the reversed sequence.
    corr = convolve(q, q[::-1])[::-1]
    prefix = [0, *accumulate(q)]
    best, count = None, 0
    for k in range(-(m - 1), m):
        lo, hi = max(0, -k), min(m, m - k)  # i runs over [lo, hi); i + k stays on the grid
        f_sum = prefix[hi] - prefix[lo]
        g_sum = prefix[hi + k] - prefix[lo + k]
        value = (
            a * (d - b) * unit * f_sum
            + b * (d - b) * unit * unit * (hi - lo)
            - a * a * corr[k + m - 1]
            - a * b * unit * g_sum
        )
        if best is None or value > best:
            best, count = value, 1
        elif value == best:
            count += 1
    assert best is not None  # m >= 1: there is at least the zero shift
    return best, count


def certify_overlap(raw: Any) -> Certificate:
    heights = vector(raw, None, "heights", MAX_STEPS)
    for i, h in enumerate(heights):
        if not 0 <= h <= 1:
            raise Infeasible(f"height {i} is {h!r}, outside [0, 1]")
    q = quantize(heights, BITS, relative=False)
    m, unit = len(q), 1 << BITS
    total = sum(q)
    if total == 0 or total == m * unit:
        raise Infeasible("f is 0 or 1 everywhere: it cannot have integral 1 with g = 1 - f")
    # f = alpha q + beta with alpha = a / (d D) and beta = b / d (exact), sum f = m/2.
    if 2 * total >= m * unit:
        a, b, d = m * unit, 0, 2 * total
    else:
        a, b, d = m * unit, m * unit - 2 * total, 2 * (m * unit - total)
    best, peaks = _max_overlap(q, a, b, d)
    value = Fraction(2 * best, m * d * d * unit * unit)
    binary = sum(1 for v in q if v in (0, unit))
    return Certificate(
        value=value,
        metrics={"steps": m, "mass_repair": float(Fraction(2 * total, m * unit) - 1)},
        features={"binary_share": binary / m, "peak_shifts": peaks / (2 * m - 1)},
    )


class MinimumOverlap(OpenMathEnvironment):
    name: ClassVar[str] = "minimum-overlap"
    description: ClassVar[str] = (
        "AlphaEvolve B.5: a step function proving an upper bound for Erdős's minimum overlap "
        "problem, verified exactly"
    )
    problems: ClassVar[dict[str, Problem]] = {
        "erdos": Problem(
            variant="erdos",
            title="Erdős minimum overlap problem (upper bound on M)",
            statement=(
                "Find a step function f on [-1, 1] with m equal steps, values in [0, 1] and "
                "integral 1, minimising the largest overlap sup_x int f(t) g(x+t) dt with its "
                "complement g = 1 - f on [-1, 1] (zero outside): that maximum is an upper "
                "bound on Erdős's constant M. Heights that do not integrate to exactly 1 are "
                f"moved onto that constraint by the verifier. At most {MAX_STEPS} steps."
            ),
            returns="the list of m heights in [0, 1]",
            metric="upper_bound",
            direction="minimize",
            unit="upper bound on M",
            records=(
                Record("Haugland", 0.380927, GGTW, 2016),
                Record("AlphaEvolve", 0.380924, GGTW, 2025),
                Record("TTT-Discover", 0.380876, TTT, 2026),
            ),
            features=(
                Feature(name="binary_share", low=0.0, high=1.0, bins=8),
                Feature(name="peak_shifts", low=0.0, high=0.2, bins=8),
            ),
            baseline="baseline_overlap",
            certify=certify_overlap,
            verifier=(
                "The harness rounds the heights down to multiples of 2^-52, normalises the "
                "integral exactly, evaluates every grid shift in integer arithmetic and "
                "certifies the largest overlap, rounded up."
            ),
        ),
    }
