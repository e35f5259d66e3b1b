"""The exact-arithmetic helpers every open-math verifier stands on."""

from __future__ import annotations

import math
import random
from fractions import Fraction

import pytest

from progressbench_environments.open_math.exact import (
    Infeasible,
    convolve,
    hull_area2,
    isqrt_bounds,
    matrix,
    outward,
    quantize,
    to_integers,
    vector,
)


@pytest.mark.parametrize(
    "value", [Fraction(3), Fraction(2, 7), Fraction(10**40 + 1, 3), Fraction(0)]
)
def test_square_root_bounds_enclose_the_root_tightly(value):
    lo, hi = isqrt_bounds(value, bits=80)
    assert lo * lo <= value <= hi * hi
    assert hi - lo <= Fraction(1, 2**80)


def test_a_perfect_square_has_equal_bounds():
    assert isqrt_bounds(Fraction(9, 4)) == (Fraction(3, 2), Fraction(3, 2))


def test_outward_rounding_never_crosses_the_exact_value():
    third = Fraction(1, 3)
    up, down = outward(third, up=True), outward(third, up=False)
    assert Fraction(down) < third < Fraction(up)
    assert math.nextafter(down, 1.0) == up
    assert outward(Fraction(1, 4), up=True) == outward(Fraction(1, 4), up=False) == 0.25


def test_big_integer_convolution_equals_the_schoolbook_one():
    rng = random.Random(4)
    a = [rng.getrandbits(60) for _ in range(37)]
    b = [rng.getrandbits(53) for _ in range(11)]
    naive = [sum(a[i] * b[k - i] for i in range(len(a)) if 0 <= k - i < len(b)) for k in range(47)]
    assert convolve(a, b) == naive
    assert convolve([0, 0], [0]) == [0, 0]


def test_quantize_rounds_down_exactly():
    assert quantize([1.0, 0.5, 0.0], 52, relative=True) == [2**52, 2**51, 0]
    # Relative to the largest value, and never up: 1/3 of 2^52 is not an integer.
    assert quantize([3.0, 1.0], 52, relative=True) == [2**52, 2**52 // 3]
    assert quantize([0.25, 2.0**-60], 52, relative=False) == [2**50, 0]


def test_rationals_share_one_exact_denominator():
    ints, d = to_integers([Fraction(1, 2), Fraction(1, 3), Fraction(-2)])
    assert d == 6 and ints == [3, 2, -12]


def test_hull_area_of_a_square_with_inner_points():
    pts = [[Fraction(x), Fraction(y)] for x, y in [(0, 0), (2, 0), (2, 2), (0, 2), (1, 1), (1, 0)]]
    assert hull_area2(pts) == 8


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("1,2", "must be a list"),
        ([[1, 2], [3]], "must have 2 entries"),
        ([[1, 2], [True, 3]], "is not a number"),
        ([[1, 2], [float("nan"), 3]], "is not finite"),
        ([[1, 2], [float("inf"), 3]], "is not finite"),
        ([[1, 2], ["3", 3]], "is not a number"),
        ([[1, 2]] * 4, "between 1 and 3 rows"),
        ([], "between 1 and 3 rows"),
    ],
)
def test_hostile_shapes_and_values_are_refused_with_a_reason(raw, message):
    with pytest.raises(Infeasible, match=message):
        matrix(raw, None, 2, "points", 3)


def test_a_vector_of_plain_numbers_passes_unchanged():
    assert vector([1, 2.5], 2, "v", 10) == [1, 2.5]
