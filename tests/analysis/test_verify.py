"""Verified records: ``progressbench verify`` end to end (circle-packing through the CLI; a
noisy environment with a target; the paired "faster" verdict on planted speedups and the
reference-vs-itself control; nanogpt tiny). The statistics themselves: test_stats.py."""

from __future__ import annotations

import itertools
import json

import paired_env
import pytest
import verify_env
from conftest import pb, query

from progressbench.analysis import leaderboard
from progressbench.analysis import verify as verify_module
from progressbench.analysis.verify import verify_program
from progressbench.errors import UserError
from progressbench.run.config import RunConfig
from progressbench.store import Evaluation, Program, Store, code_hash

# --- circle-packing, through the CLI ----------------------------------------------------------
IMPROVE = (
    "More rounds of growth.\n<<<<<<< SEARCH\nGROW_ROUNDS = 0  # knob: [0, 6] int\n=======\n"
    "GROW_ROUNDS = 3  # knob: [0, 6] int\n>>>>>>> REPLACE\n"
)


def test_verify_circle_packing_and_the_leaderboard(db, tmp_path):
    cfg = tmp_path / "run.toml"
    cfg.write_text(
        'agents = ["openai/gpt-4o-mini"]\nstrategy = "best-of-n"\nbudget = 1\nn_fast = 0\n'
        f"[agent_options.extra]\nmock_response = {json.dumps(IMPROVE)}\n"
    )
    assert pb("run", "--config", str(cfg), "--db", str(db)).returncode == 0
    ((run_id, best, reference),) = query(db, "select id, best_program_id, reference_id from run")
    assert best != reference
    assert "verified" not in pb("leaderboard", "--db", str(db), "--verified-only").stdout
    res = pb("verify", run_id, "--repeats", "3", "--db", str(db))
    assert res.returncode == 0, res.stderr
    summary = res.stdout
    assert f"program {best} of run {run_id}" in summary and summary.rstrip().endswith("verified")
    assert "Welch's t-test" in summary and "3/3 re-runs valid and measured" in summary
    assert "reference program re-run" in summary
    assert "re-run 6/6" in res.stderr  # the program's 3 and the reference's 3, reported live
    ((verdict, n, mean, p, ref_mean, details),) = query(
        db, "select verdict, n_valid, mean, p_value, reference_mean, details_json from verification"
    )
    assert (verdict, n, p) == ("verified", 3, 0.0)  # deterministic: no spread, a clear gain
    (best_metric,) = query(db, "select metric from program where id = ?", best)[0]
    assert mean == pytest.approx(best_metric) and ref_mean < mean
    seeds = {r["seed"] for r in json.loads(details)["repeats"]}
    assert len(seeds) == 6  # fresh seeds, each re-run its own
    board = json.loads(pb("leaderboard", "--db", str(db), "--format", "json").stdout)
    (row,) = next(iter(board.values())) if isinstance(board, dict) else board
    assert row["verified"] == "verified" and row["verified_repeats"] == 3
    only = pb("leaderboard", "--db", str(db), "--verified-only").stdout
    assert run_id in only
    # The reference has nothing to beat: verifying it records a failure, it does not crash.
    res = pb("verify", run_id, "--program", str(reference), "--repeats", "2", "--db", str(db))
    assert res.returncode == 0 and res.stdout.rstrip().endswith("failed")


# --- a noisy environment with a target ----------------------------------------------------------
@pytest.fixture
def noisy(tmp_path, plugin):
    plugin(verify_env)
    store = Store(str(tmp_path / "pb.db"))
    config = RunConfig(env="noisy-test", evaluator_options={"plugin_modules": ["verify_env"]})
    run = store.create_run(env="noisy-test", variant="default", strategy="greedy", agent="t",
                           budget=1, config_json=config.model_dump_json())  # fmt: skip
    reference = store.add(Program(run_id=run.id, is_reference=True, code=verify_env.BASELINE,
                                  code_hash=code_hash(verify_env.BASELINE), status="valid"))  # fmt: skip
    store.add(Evaluation(run_id=run.id, program_id=reference.id, status="ok", valid=True,
                         metrics_json=json.dumps({"loss": 1.6, "time": 16.0})))  # fmt: skip
    store.update_run(run.id, reference_id=reference.id)

    def add(mean: float, spread: float, claimed: float | None = None, fail: float = 0.0) -> int:
        code = (
            verify_env.BASELINE.replace("MEAN = 1.6", f"MEAN = {mean}")
            .replace("SPREAD = 0.01", f"SPREAD = {spread}")
            .replace("FAIL_RATE = 0.0", f"FAIL_RATE = {fail}")
        )
        program = store.add(Program(run_id=run.id, code=code, code_hash=code_hash(code),
                                    status="valid", metric=claimed))  # fmt: skip
        if claimed is not None:
            store.add(Evaluation(run_id=run.id, program_id=program.id, status="ok", valid=True,
                                 metrics_json=json.dumps({"loss": claimed})))  # fmt: skip
        return program.id

    return store, run.id, add


def test_mean_below_the_target_is_verified(noisy):
    store, run_id, add = noisy
    program = add(1.40, 0.02, claimed=1.39)
    said = []
    v = verify_program(store, run_id, program, 5, 2, say=said.append)
    assert v.verdict == "verified" and v.metric == "loss" and v.n_valid == 5
    assert v.mean == pytest.approx(1.40, abs=0.05) and v.std > 0 and v.p_value < 0.01
    assert "one-sample t-test, H1: mean loss < target 1.5" in v.summary
    assert "the run recorded loss = 1.39 for this program" in v.summary
    assert "time: " in v.summary and "against the reference's 16" in v.summary
    assert len(said) == 6 and "5 re-runs" in said[0]


def test_mean_at_the_target_is_not_verified(noisy):
    store, run_id, add = noisy
    v = verify_program(store, run_id, add(1.50, 0.05), 4, 2, say=lambda _: None)
    assert v.verdict == "not-verified" and v.p_value >= 0.01 and v.n_valid == 4


def test_failing_re_runs(noisy):
    store, run_id, add = noisy
    v = verify_program(store, run_id, add(1.40, 0.01, fail=1.0), 3, 2, say=lambda _: None)
    assert v.verdict == "failed" and v.n_valid == 0 and "fewer than 2 valid re-runs" in v.summary
    v = verify_program(store, run_id, add(1.40, 0.01, fail=0.5), 8, 2, say=lambda _: None)
    assert v.verdict in ("not-verified", "failed") and v.n_valid < 8  # 2^-8 odds of none failing
    assert "did not count" in v.summary and "flaky" in v.summary


def test_static_guards_run_again_before_any_re_run(noisy):
    store, run_id, add = noisy
    hostile = store.get_program(add(1.40, 0.01))
    with store.session() as s:
        row = s.get(Program, hostile.id)
        row.code = row.code.replace(
            "MEAN = 1.4", "import os\nMEAN = float(os.environ.get('M', 1.4))"
        )
        s.add(row)
        s.commit()
    v = verify_program(store, run_id, hostile.id, 2, 1, say=lambda _: None)
    assert (
        v.verdict == "failed"
        and "rejected by the guards" in v.summary
        and "os.environ" in v.summary
    )


def test_verify_refuses_a_program_of_another_run(noisy, tmp_path):
    store, run_id, add = noisy
    other = store.create_run(env="noisy-test", variant="default", strategy="g", agent="t",
                             budget=1, config_json="{}")  # fmt: skip
    with pytest.raises(UserError, match="belongs to run"):
        verify_program(store, other.id, add(1.4, 0.01), 2, 1, say=lambda _: None)


# --- the paired "faster" verdict ----------------------------------------------------------------
@pytest.fixture
def paired(tmp_path, plugin, monkeypatch):
    """A run of the paired test environment, with ``add(step_cost, steps_factor)`` adding a
    program, and verify's fresh seeds made reproducible (the environment's noise follows the
    seed, so each test's outcome is fixed)."""
    plugin(paired_env)
    counter = itertools.count(1)
    monkeypatch.setattr(verify_module.secrets, "randbelow", lambda n: (next(counter) * 7919) % n)
    store = Store(str(tmp_path / "pb.db"))
    config = RunConfig(env="paired-test", evaluator_options={"plugin_modules": ["paired_env"]})
    run = store.create_run(env="paired-test", variant="default", strategy="greedy", agent="t",
                           budget=1, config_json=config.model_dump_json())  # fmt: skip
    reference = store.add(Program(run_id=run.id, is_reference=True, code=paired_env.BASELINE,
                                  code_hash=code_hash(paired_env.BASELINE), status="valid"))  # fmt: skip
    store.update_run(run.id, reference_id=reference.id)

    def add(step_cost: float, steps_factor: float = 1.0, note: str = "") -> int:
        code = (
            paired_env.BASELINE.replace("STEP_COST = 0.1", f"STEP_COST = {step_cost}")
            .replace("STEPS_FACTOR = 1.0", f"STEPS_FACTOR = {steps_factor}")
            .replace("# EVOLVE-BLOCK-END", f"{note}# EVOLVE-BLOCK-END")
        )
        program = store.add(Program(run_id=run.id, code=code, code_hash=code_hash(code),
                                    status="valid"))  # fmt: skip
        return program.id

    return store, run, add


@pytest.mark.parametrize(
    ("step_cost", "steps_factor", "kind"), [(0.097, 1.0, "systems"), (0.1, 0.9, "ML")]
)
def test_a_planted_speedup_is_verified_faster(paired, step_cost, steps_factor, kind):
    """A 3% cheaper step (systems) or 10% fewer steps (ML), against the reference's re-runs on
    the same seeds, interleaved: found at p < 0.01, the CI holding the planted ratio; the
    leaderboard marks the run "verified faster" (the record criterion)."""
    store, run, add = paired
    program = add(step_cost, steps_factor)
    store.update_run(run.id, best_program_id=program)
    said: list[str] = []
    v = verify_program(store, run.id, program, 6, 1, say=said.append)
    faster = json.loads(v.details_json)["faster"]
    planted = (step_cost / 0.1) * steps_factor
    assert v.verdict == "verified" and faster["verdict"] == "faster", v.summary
    assert faster["p"] < 0.01 and faster["pairs"] == 6
    assert faster["low"] < planted < faster["high"] and faster["high"] < 1
    assert "verified faster" in v.summary and "99% CI" in v.summary
    assert "each paired with a reference re-run on its seed" in said[0]
    roles = [line.split()[0] for line in said[1:]]
    assert roles == ["program", "reference"] * 6  # interleaved, one worker
    ((row,),) = leaderboard.rows(store).values()
    assert row["verified"] == "verified faster"
    assert leaderboard.format_cell("verified", row["verified"]) == "yes, faster"


def test_the_reference_against_itself_is_not_faster(paired):
    """The control: the reference paired with itself on each seed, and a textual copy of it
    (the same program; independent noise) paired with the reference, are never called
    faster; a slower program is not either."""
    store, run, add = paired
    itself = verify_program(store, run.id, run.reference_id, 4, 1, say=lambda _: None)
    faster = json.loads(itself.details_json)["faster"]
    assert faster["verdict"] == "not-faster" and faster["ratio"] == 1.0 and faster["p"] == 1.0
    copy = add(0.1, note="# the reference again\n")
    for repeats in (4, 8):
        v = verify_program(store, run.id, copy, repeats, 1, say=lambda _: None)
        faster = json.loads(v.details_json)["faster"]
        assert faster["verdict"] == "not-faster" and faster["low"] < 1 < faster["high"], v.summary
    store.update_run(run.id, best_program_id=copy)
    ((row,),) = leaderboard.rows(store).values()
    assert row["verified"] == "verified"  # reaches the target, not faster: no record
    slower = verify_program(store, run.id, add(0.103), 6, 1, say=lambda _: None)
    assert json.loads(slower.details_json)["faster"]["verdict"] == "not-faster"


# --- nanogpt tiny ---------------------------------------------------------------------------
def test_verify_nanogpt_tiny_tests_the_validation_loss_against_the_target(tmp_path):
    """The environment's own protocol: best validation loss of each fresh-seed re-run against
    the 1.0 target. Four training steps cannot reach it, so the honest verdict is
    not-verified, with every re-run valid and the p-value far above 0.01."""
    options = {
        "time_budget_s": 60,
        "max_steps": 4,
        "ckpt_every_steps": 100,
        "val_tokens": 2048,
        "probe_tokens": 2048,
        "profile": False,
    }
    store = Store(str(tmp_path / "pb.db"))
    config = RunConfig(
        env="nanogpt", variant="tiny", strategy="greedy", budget=1, workers=1, env_options=options,
        evaluator_options={"plugin_modules": ["progressbench_environments.nanogpt.plugin"]},
    )  # fmt: skip
    from progressbench.run.loop import RunLoop

    run = RunLoop(store, config, say=lambda _: None).execute()
    v = verify_program(store, run.id, run.reference_id, 2, 1, say=lambda _: None)
    assert v.metric == "best_val_loss" and v.repeats == 2 and v.n_valid == 2, v.summary
    assert v.verdict == "not-verified" and v.mean > 1.0 and v.p_value > 0.5, v.summary
    details = json.loads(v.details_json)
    assert details["protocol"]["target"] == 1.0 and details["protocol"]["direction"] == "minimize"
    seeds = {r["seed"] for r in details["repeats"]}
    assert len(seeds) == 2 and run.seed not in seeds  # fresh seeds, not the run's
    assert v.summary.startswith(f"program {v.program_id} of run {run.id} (nanogpt/tiny)")
    assert "H1: mean best_val_loss < target 1" in v.summary
    assert store.verifications(run.id)[-1].id == v.id
    # Paired with itself on each seed (the control); no pair reached the target, so the
    # "faster" test has no cost to compare: untested, and said so.
    roles = [(r["role"], r["seed"]) for r in details["repeats"]]
    assert sorted(roles) == sorted(
        (role, seed) for seed in seeds for role in ("program", "reference")
    )
    assert details["faster"] == {"verdict": "untested", "pairs": 0}
    assert "fewer than 2 complete pairs: untested" in v.summary
