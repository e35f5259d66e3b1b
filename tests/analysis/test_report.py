"""Text reports: how a run's children ended, as ``show`` and the end-of-run summary say it."""

from __future__ import annotations

import json

from progressbench.analysis.report import outcome_counts
from progressbench.store import Run


def test_invalid_children_are_counted_apart_from_valid_and_failed():
    """Field trial: ``show`` said "0 failed" beside an invalid child and did not count it."""
    run = Run(
        id="r", env="e", variant="v", strategy="s", agent="a", budget=5, config_json="{}",
        n_children=5, n_valid=2, n_failed=1,
    )  # fmt: skip
    assert outcome_counts(run) == "2 valid, 2 invalid, 1 failed"


def test_show_prints_the_metrics_the_environment_names_beside_the_objective(tmp_path):
    """nanogpt's ``show_metrics``: steps and cost per step to the target tell a child that took
    fewer steps from one whose steps got cheaper."""
    from progressbench.analysis.report import show_run
    from progressbench.store import Evaluation, Program, Store

    store = Store(str(tmp_path / "pb.db"))
    run = store.create_run(
        env="nanogpt", variant="tiny", strategy="greedy", agent="offline", budget=2,
        config_json="{}",
    )  # fmt: skip
    ids = []
    for i, (steps, per_step) in enumerate([(500, 230.0), (450, 230.0), (500, 180.0)]):
        cost = steps * per_step / 1000
        p = store.add(Program(run_id=run.id, code=f"x = {i}\n", code_hash=str(i), status="valid",
                              is_reference=i == 0, score=200 / cost, metric=cost))  # fmt: skip
        metrics = {"cost_to_target_s": cost, "steps_to_target": steps, "cost_per_step_ms": per_step}
        store.add(Evaluation(run_id=run.id, program_id=p.id, status="ok", valid=True,
                             metrics_json=json.dumps(metrics)))  # fmt: skip
        ids.append(p.id)
    store.update_run(run.id, reference_id=ids[0], best_program_id=ids[2], n_children=2, n_valid=2)
    text = show_run(store, run.id)
    header = next(line for line in text.splitlines() if "steps_to_target" in line)
    assert header.split()[4:7] == ["cost_to_target_s", "steps_to_target", "cost_per_step_ms"]
    rows = {
        line.split()[0]: line.split() for line in text.splitlines() if line[:4].strip().isdigit()
    }
    assert rows[str(ids[1])][5:7] == ["450", "230"]  # fewer steps
    assert rows[str(ids[2])][5:7] == ["500", "180"]  # cheaper steps
    store.close()
