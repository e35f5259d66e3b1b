"""The tests ``verify`` and ``compare`` use, on scipy.stats, with the one case scipy leaves
undefined (a sample without spread) decided, and the paired cost-ratio test of records.

scipy is imported inside the functions: ``progressbench --help`` must not pay for it.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass
from typing import Any, Literal

Direction = Literal["maximize", "minimize"]


@dataclass(frozen=True)
class TTest:
    """A one-sided t-test: ``p`` is the probability, under the null hypothesis, of a result
    at least this favourable to the alternative ("better")."""

    name: str
    t: float
    df: float
    p: float


@dataclass(frozen=True)
class RatioTest:
    """A paired test of "the program costs less than the reference": a one-sample t-test on
    log(program / reference) per pair, H1 mean < 0. ``ratio`` is the geometric mean of the
    ratios and ``low``..``high`` its two-sided ``1 - alpha`` confidence interval."""

    name: str
    pairs: int
    ratio: float
    low: float
    high: float
    t: float
    df: float
    p: float


def _scipy_stats() -> Any:
    from scipy import stats  # type: ignore[import-untyped]

    return stats


def _alternative(direction: Direction) -> Literal["less", "greater"]:
    return "less" if direction == "minimize" else "greater"


def _degenerate(name: str, difference: float, df: float, direction: Direction) -> TTest:
    """Zero spread: the sample is its mean, so "better" is certain or impossible (scipy
    returns nan here)."""
    better = difference < 0 if direction == "minimize" else difference > 0
    t = math.copysign(math.inf, difference) if difference else 0.0
    return TTest(name, t, df, 0.0 if better else 1.0)


def one_sample(values: list[float], target: float, direction: Direction) -> TTest:
    """H1: the population mean is better than ``target`` (below it when minimising)."""
    stats = _scipy_stats()

    if len(values) < 2:
        raise ValueError("a t-test needs at least two values")
    name, df = "one-sample t-test", len(values) - 1
    if statistics.stdev(values) == 0.0:
        return _degenerate(name, statistics.fmean(values) - target, df, direction)
    res = stats.ttest_1samp(values, target, alternative=_alternative(direction))
    return TTest(name, float(res.statistic), float(df), float(res.pvalue))


def welch(values: list[float], others: list[float], direction: Direction) -> TTest:
    """Welch's unequal-variance t-test; H1: the mean of ``values`` is better than that of
    ``others``."""
    stats = _scipy_stats()

    if len(values) < 2 or len(others) < 2:
        raise ValueError("Welch's t-test needs at least two values on each side")
    name = "Welch's t-test"
    if statistics.variance(values) + statistics.variance(others) == 0.0:
        diff = statistics.fmean(values) - statistics.fmean(others)
        return _degenerate(name, diff, len(values) + len(others) - 2, direction)
    res = stats.ttest_ind(values, others, equal_var=False, alternative=_alternative(direction))
    return TTest(name, float(res.statistic), float(res.df), float(res.pvalue))


def paired_ratio(program: list[float], reference: list[float], alpha: float) -> RatioTest:
    """H1: the program's cost is lower than the reference's, pair by pair (positive costs,
    lower is better). On the log scale, so that a 3% saving counts the same on a fast pair
    as on a slow one, and a slowdown of the machine shared by both members of a pair
    cancels."""
    stats = _scipy_stats()

    if len(program) != len(reference) or len(program) < 2:
        raise ValueError("a paired test needs at least two complete pairs")
    if min(program + reference) <= 0:
        raise ValueError("costs must be positive")
    logs = [math.log(a / b) for a, b in zip(program, reference, strict=True)]
    name, n = "paired t-test on log(cost ratio)", len(logs)
    mean, sd = statistics.fmean(logs), statistics.stdev(logs)
    if sd == 0.0:
        d = _degenerate(name, mean, n - 1, "minimize")
        return RatioTest(name, n, math.exp(mean), math.exp(mean), math.exp(mean), d.t, d.df, d.p)
    res = stats.ttest_1samp(logs, 0.0, alternative="less")
    half = float(stats.t.ppf(1 - alpha / 2, n - 1)) * sd / math.sqrt(n)
    return RatioTest(
        name,
        n,
        math.exp(mean),
        math.exp(mean - half),
        math.exp(mean + half),
        float(res.statistic),
        float(n - 1),
        float(res.pvalue),
    )
