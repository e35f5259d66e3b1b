"""`progressbench compare`: contenders on the same seeds and budget, reused and resumed runs."""

from __future__ import annotations

import json

from conftest import pb, query

from progressbench.analysis.compare import compare
from progressbench.run.config import RunConfig
from progressbench.store import Store


def test_compare_runs_each_contender_on_each_seed_and_reuses_finished_runs(db):
    args = ["compare", "--strategy", "islands", "--strategy", "greedy", "--seeds", "2"]
    args += ["--budget", "5", "--db", str(db)]
    first = pb(*args)
    assert first.returncode == 0, first.stderr
    assert first.stderr.count(": new run") == 4
    lines = first.stdout.splitlines()
    assert lines[0].startswith("circle-packing (n26) - best sum_radii (maximized), budget 5")
    assert any(line.split()[:2] == ["offline", "islands"] for line in lines)
    assert any(line.split()[:2] == ["offline", "greedy"] for line in lines)
    runs = query(db, "select strategy, seed, budget, status from run order by created_at")
    assert sorted(runs) == sorted(
        [(s, seed, 5, "finished") for s in ("islands", "greedy") for seed in (0, 1)]
    )
    again = pb(*args, "--format", "json")
    assert again.returncode == 0, again.stderr
    assert again.stderr.count("reusing finished run") == 4
    assert query(db, "select count(*) from run")[0][0] == 4
    data = json.loads(again.stdout)
    islands, greedy = data["summary"]
    assert (islands["strategy"], greedy["strategy"]) == ("islands", "greedy")
    assert islands["runs"] == greedy["runs"] == 2 and islands["p (better than first)"] is None
    assert 0.0 <= greedy["p (better than first)"] <= 1.0
    bests = [b for c in data["contenders"] for b in c["best"]]
    stored = [b for (b,) in query(db, "select best_metric from run order by created_at")]
    assert sorted(bests) == sorted(stored)
    assert islands["mean best"] > data["reference"]


def test_unfinished_runs_resume_and_settings_decide_what_matches(tmp_path):
    store = Store(str(tmp_path / "pb.db"))
    base = RunConfig(strategy="greedy", budget=3, workers=1, variant="n26")
    calls = []

    def execute(config, existing):
        calls.append((config.seed, existing.id if existing else None))
        if existing is None:
            run = store.create_run(
                env=config.env, variant=config.variant, strategy=config.strategy,
                agent="offline", budget=config.budget, seed=config.seed,
                config_json=config.model_dump_json(), objective_json="{}",
            )  # fmt: skip
            # Seed 1 stops half-way, as if interrupted.
            status = "interrupted" if config.seed == 1 else "finished"
            return store.update_run(run.id, status=status, best_metric=1.0 + config.seed)
        return store.update_run(existing.id, status="finished")

    compare(store, base, ["offline"], ["greedy"], 2, execute, say=lambda _: None)
    assert calls == [(0, None), (1, None)]
    [interrupted] = [r for r in store.runs() if r.status == "interrupted"]
    calls.clear()
    # Other workers: same computation, so the same runs; the interrupted one resumes.
    result = compare(
        store, base.model_copy(update={"workers": 2}), ["offline"], ["greedy"], 2, execute,
        say=lambda _: None,
    )  # fmt: skip
    assert calls == [(1, interrupted.id)]
    assert result.contenders[0].best == [1.0, 2.0]
    assert result.contenders[0].runs == [r.id for r in store.runs()]
    # Another budget is another experiment: new runs.
    calls.clear()
    compare(
        store, base.model_copy(update={"budget": 4}), ["offline"], ["greedy"], 1, execute,
        say=lambda _: None,
    )  # fmt: skip
    assert calls == [(0, None)]


def test_bad_compare_arguments_are_one_line_errors(db):
    res = pb("compare", "--strategy", "greedy", "--strategy", "greedy", "--db", str(db))
    assert res.returncode == 2 and "each agent and strategy may be named once" in res.stderr
    assert "Traceback" not in res.stderr
    res = pb("compare", "--seeds", "0", "--db", str(db))
    assert res.returncode == 2 and "--seeds" in res.stderr
    res = pb("compare", "--env", "nope", "--db", str(db))
    assert res.returncode == 2 and "Traceback" not in res.stderr


def test_compare_reuses_the_run_that_progressbench_run_made(db):
    """Field trial: `run` stored agents [] and variant None, `compare` asked for ['offline']
    and 'n26', so the identical run was made again."""
    made = pb("run", "--strategy", "greedy", "--budget", "3", "--db", str(db))
    assert made.returncode == 0, made.stderr
    ((rid,),) = query(db, "select id from run")
    res = pb("compare", "--strategy", "greedy", "--seeds", "1", "--budget", "3", "--db", str(db))
    assert res.returncode == 0, res.stderr
    assert f"reusing finished run {rid}" in res.stderr
    assert query(db, "select count(*) from run") == [(1,)]
