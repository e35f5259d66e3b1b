"""The tests ``verify`` and ``compare`` use: decisions, directions and the zero-spread cases
scipy leaves undefined, checked against scipy.stats and hand-computed values; the paired
cost-ratio test's error rate under the null and its power on a planted speedup."""

from __future__ import annotations

import math
import random
import statistics

import pytest
from scipy import stats

from progressbench.analysis.stats import one_sample, paired_ratio, welch


def test_one_sample_and_welch_decisions():
    values = [1.48, 1.47, 1.49, 1.46, 1.48]
    below = one_sample(values, 1.5, "minimize")
    t = (statistics.fmean(values) - 1.5) / (statistics.stdev(values) / math.sqrt(5))
    assert below.df == 4 and below.t == pytest.approx(t) and below.t < 0
    assert below.p == pytest.approx(stats.t.cdf(t, 4)) and below.p < 0.01
    assert one_sample(values, 1.5, "maximize").p > 0.99
    assert one_sample([2.0, 2.0, 2.0], 1.5, "maximize").p == 0.0  # no spread: certain
    assert one_sample([2.0, 2.0, 2.0], 2.0, "maximize").p == 1.0
    better = welch([2.6, 2.61, 2.59], [2.5, 2.52, 2.49], "maximize")
    va, vb = statistics.variance([2.6, 2.61, 2.59]) / 3, statistics.variance([2.5, 2.52, 2.49]) / 3
    satterthwaite = (va + vb) ** 2 / (va**2 / 2 + vb**2 / 2)
    assert better.df == pytest.approx(satterthwaite) and 2 < better.df < 4  # not na + nb - 2
    assert better.p == pytest.approx(stats.t.sf(better.t, better.df)) and better.p < 0.01
    assert welch([2.6, 2.61, 2.59], [2.5, 2.52, 2.49], "minimize").p > 0.99
    assert welch([1.0, 1.0], [2.0, 2.0], "minimize").p == 0.0
    with pytest.raises(ValueError):
        welch([1.0], [1.0, 2.0], "maximize")
    with pytest.raises(ValueError):
        one_sample([1.0], 1.0, "maximize")


def test_paired_ratio_against_a_hand_computation():
    program, reference = [9.1, 8.8, 9.3, 9.0], [10.0, 9.9, 10.2, 10.1]
    logs = [math.log(a / b) for a, b in zip(program, reference, strict=True)]
    mean, se = statistics.fmean(logs), statistics.stdev(logs) / 2
    test = paired_ratio(program, reference, 0.01)
    assert test.pairs == 4 and test.df == 3 and test.t == pytest.approx(mean / se)
    assert test.p == pytest.approx(stats.t.cdf(mean / se, 3)) and test.p < 0.01
    half = 5.840909309733 * se  # t(0.995, 3), from tables
    assert test.ratio == pytest.approx(math.exp(mean))
    assert (test.low, test.high) == pytest.approx((math.exp(mean - half), math.exp(mean + half)))
    assert test.low < test.ratio < test.high < 1
    slower = paired_ratio(reference, program, 0.01)
    assert slower.p > 0.99 and slower.ratio > 1
    same = paired_ratio([5.0, 6.0], [5.0, 6.0], 0.01)  # no spread, no difference
    assert same.p == 1.0 and same.ratio == 1.0
    with pytest.raises(ValueError, match="two complete pairs"):
        paired_ratio([1.0], [1.0], 0.01)
    with pytest.raises(ValueError, match="positive"):
        paired_ratio([1.0, 0.0], [1.0, 1.0], 0.01)


def test_paired_ratio_false_positive_rate_and_power():
    """Under the null (the reference against itself) the test says "faster" at p < 0.01 about
    1% of the time; a planted 3% speedup with 1% noise per run is found with 8 pairs nearly
    always (with 2% noise, about half the time); pairing removes the seed's variance that an
    unpaired test would face."""
    rng = random.Random(0)

    def pairs(n: int, speedup: float, noise: float) -> tuple[list[float], list[float]]:
        steps = [rng.uniform(400, 600) for _ in range(n)]  # shared within a pair (the seed)
        a = [s * (1 - speedup) * rng.gauss(1, noise) for s in steps]
        return a, [s * rng.gauss(1, noise) for s in steps]

    null = sum(paired_ratio(*pairs(4, 0.0, 0.02), 0.01).p < 0.01 for _ in range(4000))
    assert 0.004 < null / 4000 < 0.018
    found = sum(paired_ratio(*pairs(8, 0.03, 0.01), 0.01).p < 0.01 for _ in range(200))
    assert found / 200 > 0.95
    found = sum(paired_ratio(*pairs(8, 0.03, 0.02), 0.01).p < 0.01 for _ in range(200))
    assert 0.3 < found / 200 < 0.8
    a, b = pairs(8, 0.03, 0.01)
    assert welch(a, b, "minimize").p > 0.01  # unpaired: lost in the seeds' spread
