"""Small-sample statistics for verified records, without scipy: Student's t distribution
through the regularised incomplete beta function, and the two t-tests ``verify`` uses."""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass
from typing import Literal

Direction = Literal["maximize", "minimize"]

_EPS = 1e-15
_TINY = 1e-300
_MAX_TERMS = 500


def betainc(a: float, b: float, x: float) -> float:
    """The regularised incomplete beta function I_x(a, b), for a, b > 0 and 0 <= x <= 1
    (Lentz's continued fraction, on the side of x where it converges fast)."""
    return _betainc(a, b, x, 1.0 - x)


def _betainc(a: float, b: float, x: float, y: float) -> float:
    """I_x(a, b) given both x and y = 1 - x, so that a caller who knows y more precisely
    than 1 - x (x close to 1) loses no digits."""
    if not (a > 0 and b > 0):
        raise ValueError("betainc needs a > 0 and b > 0")
    if x <= 0.0:
        return 0.0
    if y <= 0.0:
        return 1.0
    log_front = (
        math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log(y)
    )
    front = math.exp(log_front)
    if x < (a + 1.0) / (a + b + 2.0):
        return front * _beta_fraction(a, b, x) / a
    return 1.0 - front * _beta_fraction(b, a, y) / b


def _beta_fraction(a: float, b: float, x: float) -> float:
    def guard(v: float) -> float:
        return _TINY if abs(v) < _TINY else v

    c, d = 1.0, 1.0 / guard(1.0 - (a + b) * x / (a + 1.0))
    h = d
    for m in range(1, _MAX_TERMS):
        # Even step, then odd step, of the continued fraction.
        num = m * (b - m) * x / ((a + 2 * m - 1.0) * (a + 2 * m))
        d = 1.0 / guard(1.0 + num * d)
        c = guard(1.0 + num / c)
        h *= d * c
        num = -(a + m) * (a + b + m) * x / ((a + 2 * m) * (a + 2 * m + 1.0))
        d = 1.0 / guard(1.0 + num * d)
        c = guard(1.0 + num / c)
        step = d * c
        h *= step
        if abs(step - 1.0) < _EPS:
            return h
    raise ArithmeticError(f"betainc({a}, {b}, {x}) did not converge")


def t_cdf(t: float, df: float) -> float:
    """P(T <= t) for Student's t distribution with ``df`` (> 0, not necessarily integer)
    degrees of freedom."""
    if df <= 0:
        raise ValueError("degrees of freedom must be positive")
    if math.isnan(t):
        return math.nan
    if math.isinf(t):
        return 1.0 if t > 0 else 0.0
    # x = df / (df + t^2) nears 1 for large df: pass 1 - x computed directly.
    tail = 0.5 * _betainc(df / 2.0, 0.5, df / (df + t * t), t * t / (df + t * t))
    return 1.0 - tail if t > 0 else tail


@dataclass(frozen=True)
class TTest:
    """A one-sided t-test: ``p`` is the probability, under the null hypothesis, of a result
    at least this favourable to the alternative ("better")."""

    name: str
    t: float
    df: float
    p: float


def _p_better(t: float, df: float, direction: Direction) -> float:
    """One-sided p-value for "the mean is better" (lower when minimising)."""
    return t_cdf(t, df) if direction == "minimize" else t_cdf(-t, df)


def _degenerate(difference: float, direction: Direction) -> float:
    """Zero spread: the sample is its mean, so "better" is certain or impossible."""
    better = difference < 0 if direction == "minimize" else difference > 0
    return 0.0 if better else 1.0


def one_sample(values: list[float], target: float, direction: Direction) -> TTest:
    """H1: the population mean is better than ``target`` (below it when minimising)."""
    n = len(values)
    if n < 2:
        raise ValueError("a t-test needs at least two values")
    mean = statistics.fmean(values)
    se = statistics.stdev(values) / math.sqrt(n)
    name = "one-sample t-test"
    if se == 0.0:
        diff = mean - target
        return TTest(
            name,
            math.copysign(math.inf, diff) if diff else 0.0,
            n - 1,
            _degenerate(diff, direction),
        )
    t = (mean - target) / se
    return TTest(name, t, n - 1, _p_better(t, n - 1, direction))


def welch(values: list[float], others: list[float], direction: Direction) -> TTest:
    """Welch's unequal-variance t-test; H1: the mean of ``values`` is better than that of
    ``others``."""
    na, nb = len(values), len(others)
    if na < 2 or nb < 2:
        raise ValueError("Welch's t-test needs at least two values on each side")
    va = statistics.variance(values) / na
    vb = statistics.variance(others) / nb
    diff = statistics.fmean(values) - statistics.fmean(others)
    name = "Welch's t-test"
    if va + vb == 0.0:
        return TTest(
            name,
            math.copysign(math.inf, diff) if diff else 0.0,
            na + nb - 2,
            _degenerate(diff, direction),
        )
    df = (va + vb) ** 2 / (va**2 / (na - 1) + vb**2 / (nb - 1))
    t = diff / math.sqrt(va + vb)
    return TTest(name, t, df, _p_better(t, df, direction))
