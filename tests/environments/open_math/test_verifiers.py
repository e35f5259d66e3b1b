"""Each open-math verifier accepts a known-good construction at its exact value and refuses
near-misses at tolerance 0 (an overlap of 1e-12, a point outside by 1e-15, two vectors just
under 60 degrees apart), and ``assess`` stores the certified value, rounded outward.

The constructions are exact ones whose values are known in closed form; the published
AlphaEvolve constructions themselves are not copied here (docs/open-math.md lists what the
verifiers certify for them)."""

from __future__ import annotations

import itertools
import math
from fractions import Fraction

import numpy as np
import pytest

from progressbench_environments.open_math.autocorrelation import certify_autocorrelation
from progressbench_environments.open_math.circles import (
    CirclesInSquare,
    certify_rectangle,
    certify_square,
)
from progressbench_environments.open_math.distances import DistanceRatio, certify_ratio
from progressbench_environments.open_math.exact import Infeasible
from progressbench_environments.open_math.heilbronn import certify_convex, certify_triangle
from progressbench_environments.open_math.kissing import certify_kissing
from progressbench_environments.open_math.overlap import certify_overlap

SQRT3_2 = math.sqrt(3) / 2


# --- circles ------------------------------------------------------------------------------
def grid_packing() -> tuple[list[list[float]], list[float]]:
    """25 circles of radius 3/32 in a 5x5 grid of pitch 3/16 (touching), and one of radius
    1/32 in the corner strip: sum 76/32, every number dyadic, so exactly representable."""
    r = 3 / 32
    centers = [[r + i * 2 * r, r + j * 2 * r] for i in range(5) for j in range(5)]
    return centers + [[1 - 1 / 32, 1 / 32]], [r] * 25 + [1 / 32]


def test_an_exact_square_packing_is_certified_at_its_exact_sum():
    cert = certify_square(list(grid_packing()), 26)
    assert cert.value == Fraction(76, 32)


def test_circles_overlapping_by_1e_12_are_refused():
    centers, radii = grid_packing()
    centers[1][1] -= 1e-12  # circle 1 moves into circle 0, which it touched
    with pytest.raises(Infeasible, match="circles 0 and 1 overlap"):
        certify_square([centers, radii], 26)


def test_decimal_radii_that_look_touching_overlap_in_exact_arithmetic():
    """0.1 is not 1/10 in binary: circles at 0.1 and 0.3 of radius 0.1 overlap by ~3e-17."""
    centers, radii = grid_packing()
    centers[0], centers[1], radii[0], radii[1] = [0.1, 0.5], [0.3, 0.5], 0.1, 0.1
    centers[2:25] = [[0.7 + 0.01 * k, 0.9] for k in range(23)]
    radii[2:25] = [0.0] * 23
    with pytest.raises(Infeasible, match="circles 0 and 1 overlap"):
        certify_square([centers, radii], 26)


def test_a_circle_outside_the_square_by_1e_15_is_refused():
    centers, radii = grid_packing()
    centers[0][0] = radii[0] - 2.0**-50  # about 9e-16 past the wall
    with pytest.raises(Infeasible, match="circle 0 .* is not inside the unit square"):
        certify_square([centers, radii], 26)


def row_of_circles() -> tuple[list[list[float]], list[float]]:
    """21 circles of radius 3/32 in a 7 x 3 grid: bounding box 42/32 x 18/32 (sum 60/32)."""
    r = 3 / 32
    return [[r + 2 * r * i, r + 2 * r * j] for i in range(7) for j in range(3)], [r] * 21


def test_the_rectangle_perimeter_is_exact_at_4_and_refused_just_above():
    centers, radii = row_of_circles()
    assert certify_rectangle([centers, radii], 21).value == Fraction(63, 32)
    last = centers[-1]
    last[0] += 2 - 60 / 32  # width + height = 2 exactly: allowed
    assert certify_rectangle([centers, radii], 21).metrics["width"] == 1.4375
    last[0] += 2.0**-48
    with pytest.raises(Infeasible, match="perimeter .* exceeds 4"):
        certify_rectangle([centers, radii], 21)


def test_a_negative_radius_and_a_wrong_count_are_refused():
    centers, radii = grid_packing()
    with pytest.raises(Infeasible, match="radius 3 is negative"):
        certify_square([centers, radii[:3] + [-1e-300] + radii[4:]], 26)
    with pytest.raises(Infeasible, match="26 rows, got 25"):
        certify_square([centers[:25], radii[:25]], 26)
    with pytest.raises(Infeasible, match=r"must return \(centers, radii\)"):
        certify_square({"centers": centers}, 26)


def test_assess_stores_the_certified_sum_and_the_gap_to_the_record():
    env = CirclesInSquare()
    assessment = env.assess({"construction": list(grid_packing())}, None, "n26")
    assert assessment.valid and assessment.score == assessment.metrics["sum_radii"] == 2.375
    assert assessment.metrics["new_record"] == 0.0
    refused = env.assess({"construction": "nonsense"}, None, "n26")
    assert not refused.valid and refused.reason.startswith("not certified:")
    assert not env.assess({}, None, "n26").valid
    objective = env.objective("n26")
    assert objective.best_record() == ("ShinkaEvolve (2025)", 2.63598325)


# --- Heilbronn ----------------------------------------------------------------------------
def triangle_points() -> list[list[float]]:
    """Eleven points inside the equilateral triangle, two of them on its base."""
    rng = np.random.default_rng(2)
    bary = rng.dirichlet([2.0, 2.0, 2.0], size=9)
    inner = (bary @ np.array([[0.0, 0.0], [1.0, 0.0], [0.5, SQRT3_2]])).tolist()
    return [[0.25, 0.0], [0.75, 0.0], *inner]


def float_min_area(points: list[list[float]]) -> float:
    def area(a, b, c):
        return abs((b[0] - a[0]) * (c[1] - a[1]) - (b[1] - a[1]) * (c[0] - a[0])) / 2

    return min(area(*t) for t in itertools.combinations(points, 3))


def test_triangle_points_are_certified_at_the_normalised_smallest_area():
    points = triangle_points()
    cert = certify_triangle(points, 11)
    expected = float_min_area(points) / (math.sqrt(3) / 4)
    assert float(cert.value) == pytest.approx(expected, rel=1e-12)
    assert cert.features["boundary_share"] == pytest.approx(2 / 11)


@pytest.mark.parametrize(
    "point",
    [
        [0.5, -1e-15],  # below the base
        [0.25, math.sqrt(3) / 4 + 1e-15],  # beyond the left side
        [0.75, math.sqrt(3) / 4 + 1e-15],  # beyond the right side
        [-1e-15, 0.0],
    ],
)
def test_a_point_outside_the_triangle_by_1e_15_is_refused(point):
    points = triangle_points()
    points[0] = point
    with pytest.raises(Infeasible, match="point 0 .* is outside the triangle"):
        certify_triangle(points, 11)


def test_the_convex_hull_ratio_is_exact():
    # The unit square's corners, its centre and 8 more points: an exact rational ratio.
    pts = [
        [0, 0],
        [4, 0],
        [4, 4],
        [0, 4],
        [2, 2],
        [1, 2],
        [3, 2],
        [2, 1],
        [2, 3],
        [1, 1],
        [3, 3],
        [1, 3],
        [3, 1],
    ]
    cert = certify_convex(pts, 13)
    assert cert.value == 0  # (1,1), (2,2), (3,3) are collinear: a valid but worthless set
    rng = np.random.default_rng(3)
    pts = rng.random((13, 2)).tolist()
    from scipy.spatial import ConvexHull

    expected = float_min_area(pts) / ConvexHull(np.array(pts)).volume
    assert float(certify_convex(pts, 13).value) == pytest.approx(expected, rel=1e-9)
    with pytest.raises(Infeasible, match="collinear"):
        certify_convex([[i, 2 * i] for i in range(13)], 13)


# --- distance ratio -----------------------------------------------------------------------
def test_grid_and_cube_ratios_are_exact_and_coinciding_points_are_refused():
    grid = [[i, j] for i in range(4) for j in range(4)]
    assert certify_ratio(grid, 16, 2).value == 18
    cube = [[i, j, k] for i in (0, 1) for j in (0, 1) for k in (0, 1)]
    cube += [
        [0.5, 0.5, 0],
        [0.5, 0.5, 1],
        [0.5, 0, 0.5],
        [0.5, 1, 0.5],
        [0, 0.5, 0.5],
        [1, 0.5, 0.5],
    ]
    assert certify_ratio(cube, 14, 3).value == 6
    grid[5] = list(grid[4])
    with pytest.raises(Infeasible, match="points 4 and 5 coincide"):
        certify_ratio(grid, 16, 2)


def test_a_minimised_ratio_is_stored_rounded_up_and_scored_negated():
    env = DistanceRatio()
    pts = np.random.default_rng(1).random((16, 2)).tolist()
    a = env.assess({"construction": pts}, None, "2d-n16")
    exact = certify_ratio(pts, 16, 2).value
    assert Fraction(a.metrics["ratio_squared"]) >= exact and a.score == -a.metrics["ratio_squared"]
    assert env.objective("2d-n16").direction == "minimize"


# --- autocorrelation and minimum overlap --------------------------------------------------
def test_the_autocorrelation_bound_of_simple_step_functions_is_exact():
    assert certify_autocorrelation([1.0] * 50).value == 2
    # a = (1, 0, 1): a*a = (1, 0, 2, 0, 1), bound 2 * 3 * 2 / 2^2 = 3.
    assert certify_autocorrelation([1, 0, 1]).value == 3
    assert certify_autocorrelation([5.0] * 7).value == 2  # scale does not matter


def test_an_autocorrelation_height_below_zero_by_1e_300_is_refused():
    with pytest.raises(Infeasible, match="height 2 is negative"):
        certify_autocorrelation([1.0, 1.0, -1e-300, 1.0])
    with pytest.raises(Infeasible, match="every height is zero"):
        certify_autocorrelation([0.0, 0.0])
    with pytest.raises(Infeasible, match="between 1 and 20000"):
        certify_autocorrelation([1.0] * 20_001)


def overlap_by_hand(f: list[Fraction]) -> Fraction:
    """max over grid shifts of (2/m) sum_i f_i (1 - f_{i+k}), in plain Fractions."""
    m = len(f)
    return max(
        Fraction(2, m) * sum(f[i] * (1 - f[i + k]) for i in range(m) if 0 <= i + k < m)
        for k in range(-(m - 1), m)
    )


def test_the_minimum_overlap_of_the_half_indicator_is_one_half():
    assert certify_overlap([0, 1, 1, 0]).value == Fraction(1, 2)
    assert certify_overlap(
        [0.0] * 10 + [1.0] * 10 + [0.0] * 10 + [1.0] * 10
    ).value == overlap_by_hand([Fraction(v) for v in [0] * 10 + [1] * 10 + [0] * 10 + [1] * 10])


@pytest.mark.parametrize(
    ("heights", "normalised"),
    [
        # sum 1 < m/2 = 2: raised toward 1 by lam = 1/3.
        ([0, 0.5, 0.5, 0], [Fraction(1, 3), Fraction(2, 3), Fraction(2, 3), Fraction(1, 3)]),
        # sum 3 > 2: scaled down by 2/3.
        ([0.75, 0.75, 0.75, 0.75], [Fraction(1, 2)] * 4),
    ],
)
def test_the_overlap_verifier_moves_heights_onto_integral_one_exactly(heights, normalised):
    assert sum(normalised) == 2
    assert certify_overlap(heights).value == overlap_by_hand(normalised)


def test_overlap_heights_outside_the_unit_interval_are_refused():
    with pytest.raises(Infeasible, match="outside"):
        certify_overlap([0.0, 1.0 + 2.0**-52, 1.0, 0.0])
    with pytest.raises(Infeasible, match="outside"):
        certify_overlap([0.0, -1e-300, 1.0, 1.0])
    with pytest.raises(Infeasible, match="0 or 1 everywhere"):
        certify_overlap([1.0, 1.0])


# --- kissing ------------------------------------------------------------------------------
def d11() -> list[list[int]]:
    out = []
    for i, j in itertools.combinations(range(11), 2):
        for si, sj in itertools.product((1, -1), repeat=2):
            v = [0] * 11
            v[i], v[j] = si, sj
            out.append(v)
    return out


def test_the_d11_root_system_and_a_sign_vector_kiss_at_exactly_60_degrees():
    cert = certify_kissing(d11())
    assert cert.value == 220
    # Every root has 2 * (2 * 9) + ... neighbours at exactly 60 degrees: 36 each.
    assert cert.metrics["contacts"] == 220 * 36 / 2
    assert certify_kissing(d11() + [[1] * 11]).value == 221
    # Floats are exact binary rationals: the same set scaled by 0.5 is the same set.
    assert certify_kissing([[0.5 * x for x in v] for v in d11()]).value == 220


def test_two_vectors_just_under_60_degrees_apart_are_refused():
    k = 10**12
    near = [k + 1, 0, k] + [0] * 8  # cos to (1, 1, 0, ...) is about 1/2 + 1/(4k)
    vectors = [[1, 1] + [0] * 9, near]
    with pytest.raises(Infeasible, match="vectors 0 and 1 are less than 60 degrees apart"):
        certify_kissing(vectors)
    assert certify_kissing([[1, 1] + [0] * 9, [1, 0, 1] + [0] * 8]).value == 2


def test_duplicate_zero_and_malformed_vectors_are_refused():
    with pytest.raises(Infeasible, match="less than 60 degrees"):
        certify_kissing([[1] + [0] * 10, [2] + [0] * 10])
    with pytest.raises(Infeasible, match="vector 1 is zero"):
        certify_kissing([[1] + [0] * 10, [0.0] * 11])
    with pytest.raises(Infeasible, match="must have 11 entries"):
        certify_kissing([[1] * 10])
    with pytest.raises(Infeasible, match="between 1 and 1000 rows"):
        certify_kissing([[1] * 11] * 1001)
