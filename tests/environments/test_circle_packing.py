"""circle-packing's certified rule: tolerance 0, each circle shrunk by the largest violation it
takes part in (its whole excess over a wall, half of an overlap), the score the exact sum of
the shrunk radii rounded down, never the sum the program reports; a violation above
``REPAIR_LIMIT`` is refused.

The packing here is exact: 16 circles of radius 1/8 on a 4x4 grid (neighbours touching) and
10 of radius 1/32 in the gaps, one of them touching two grid circles at exactly 5/32 (a 3-4-5
triangle). Every number is dyadic, so the floats are the exact values: sum 2 + 10/32."""

from __future__ import annotations

import importlib.util
from fractions import Fraction
from pathlib import Path

import pytest

from progressbench import Objective
from progressbench_environments.circle_packing.plugin import CirclePacking, certified_radii

ENV = CirclePacking()
EXACT_SUM = Fraction(2) + Fraction(10, 32)


def exact_packing() -> tuple[list[list[float]], list[float]]:
    grid = [[1 / 8 + i / 4, 1 / 8 + j / 4] for i in range(4) for j in range(4)]
    gaps = [[k / 4, m / 4] for k in range(1, 4) for m in range(1, 4)]
    # (1/4, 1/32) is 3/32 above and 1/8 beside the centre (1/8, 1/8): 5/32 = 1/8 + 1/32.
    return grid + gaps + [[1 / 4, 1 / 32]], [1 / 8] * 16 + [1 / 32] * 10


def assess(centers: list[list[float]], radii: list[float]):
    return ENV.assess({"centers": centers, "radii": radii}, None, "n26")


def exactly_feasible(centers: list[list[float]], radii: list[Fraction]) -> bool:
    c = [(Fraction(x), Fraction(y)) for x, y in centers]
    inside = all(r <= x <= 1 - r and r <= y <= 1 - r for (x, y), r in zip(c, radii, strict=True))
    disjoint = all(
        (c[i][0] - c[j][0]) ** 2 + (c[i][1] - c[j][1]) ** 2 >= (radii[i] + radii[j]) ** 2
        for i in range(len(c))
        for j in range(i + 1, len(c))
    )
    return inside and disjoint


def test_an_exact_packing_scores_its_exact_sum():
    centers, radii = exact_packing()
    result = assess(centers, radii)
    assert result.valid, result.reason
    assert Fraction(result.metrics["sum_radii"]) == EXACT_SUM and result.score == 2.3125
    assert result.metrics["repair"] == 0.0


def test_an_overlap_of_1e_12_is_repaired_and_scored_down():
    """The rule is repair, not rejection: the packing stays valid, its circles are shrunk
    into an exactly feasible packing, and the score is that packing's sum, below the one the
    program reports (and below the exact packing it was made from)."""
    centers, radii = exact_packing()
    radii[5] += 1e-12  # the grid circle at (3/8, 3/8) now overlaps its four neighbours
    claimed = sum(map(Fraction, radii), Fraction(0))
    shrunk = certified_radii([tuple(map(Fraction, c)) for c in centers], list(map(Fraction, radii)))
    assert not isinstance(shrunk, str) and exactly_feasible(centers, shrunk)
    result = assess(centers, radii)
    assert result.valid, result.reason
    certified = Fraction(result.metrics["sum_radii"])
    assert certified <= sum(shrunk, Fraction(0)) < EXACT_SUM < claimed
    # Circle 5 and its four neighbours give up half the overlap each: 1e-12 * (1 + 4) / 2 (the
    # overlap is 1e-12 to the float rounding of 1/8 + 1e-12, about 6e-6 of it).
    assert result.metrics["repair"] == pytest.approx(2.5e-12, rel=1e-5, abs=0)


def test_a_circle_outside_the_square_by_1e_15_is_shrunk_by_its_excess():
    centers, radii = exact_packing()
    centers[0][0] -= 1e-15  # the corner circle at (1/8, 1/8) crosses the left wall
    result = assess(centers, radii)
    excess = Fraction(1, 8) - Fraction(centers[0][0])  # 1e-15 to the float's rounding
    assert result.valid and Fraction(result.metrics["repair"]) == excess
    assert Fraction(result.metrics["sum_radii"]) < EXACT_SUM


def test_a_published_style_packing_with_9e_10_overlaps_is_not_a_record():
    """What public "records" have been: radii a little too large, every touching pair
    overlapping by 9e-10, which the old tolerance of 1e-9 accepted at the reported sum.
    Certified, the touching circles give the excess back (the ten gap circles, touching
    nothing, keep theirs), so against a record between the two sums it is no new record,
    though the reported sum would have been one."""
    centers, radii = exact_packing()
    inflated = [r + 4.5e-10 for r in radii]
    claimed = float(sum(map(Fraction, inflated), Fraction(0)))
    result = assess(centers, inflated)
    assert result.valid, result.reason
    certified = result.metrics["sum_radii"]
    # 9 gap circles keep their 4.5e-10; the 3-4-5 one touches the grid and gives it back.
    assert certified == pytest.approx(2.3125 + 9 * 4.5e-10, abs=1e-15)
    record = 2.3125 + 5e-9
    assert certified < record < claimed
    published = Objective(
        metric="sum_radii",
        direction="maximize",
        records=[{"holder": "published", "value": record, "source": "this test"}],
    )
    assert published.standing(claimed) == "new record"
    assert published.standing(certified) == "behind record"
    assert ENV.objective("n26").standing(certified) == "behind record"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda c, r: r.__setitem__(5, r[5] + 2e-6), "circles 1 and 5 overlap by 2e-06"),
        (lambda c, r: c[0].__setitem__(0, 0.0), "circle 0 (x=0, y=0.125, r=0.125) is not inside"),
        (lambda c, r: r.__setitem__(16, -1e-300), "circle 16 has a negative radius"),
        (lambda c, r: c[3].__setitem__(1, float("nan")), "circle 3 has a non-finite"),
        (lambda c, r: c[3].__setitem__(1, True), "circle 3 has a non-finite or non-numeric"),
    ],
)
def test_more_than_the_repair_limit_or_malformed_data_is_refused(change, message):
    centers, radii = exact_packing()
    change(centers, radii)
    result = assess(centers, radii)
    assert not result.valid and result.score is None
    assert message in result.reason


def test_a_tiny_circle_cannot_be_shrunk_below_zero():
    centers, radii = exact_packing()
    # A circle of radius 1e-9 moved 1e-8 into the corner circle: it would need a negative
    # radius to leave it (half the overlap is more than its radius).
    centers[16], radii[16] = [0.25 - 1e-8, 0.125], 1e-9
    result = assess(centers, radii)
    assert not result.valid and "more than the radius" in result.reason


def test_the_baseline_is_feasible_as_it_stands_and_after_any_grow_rounds(tmp_path: Path):
    path = tmp_path / "baseline.py"
    path.write_text(ENV.baseline("n26"))
    spec = importlib.util.spec_from_file_location("circle_baseline", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    for rounds in (0, 6):
        module.GROW_ROUNDS = rounds
        centers, radii = module.run_packing()
        result = assess(centers, radii)
        assert result.valid and result.metrics["repair"] == 0.0, result.reason
    assert 2.0 < result.score < ENV.objective("n26").leader().value
