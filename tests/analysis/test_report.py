"""Text reports: how a run's children ended, as ``show`` and the end-of-run summary say it."""

from __future__ import annotations

from progressbench.analysis.report import outcome_counts
from progressbench.store import Run


def test_invalid_children_are_counted_apart_from_valid_and_failed():
    """Field trial: ``show`` said "0 failed" beside an invalid child and did not count it."""
    run = Run(
        id="r", env="e", variant="v", strategy="s", agent="a", budget=5, config_json="{}",
        n_children=5, n_valid=2, n_failed=1,
    )  # fmt: skip
    assert outcome_counts(run) == "2 valid, 2 invalid, 1 failed"
