"""Verified records: the t distribution against known values, the tests' decisions, and
``progressbench verify`` end to end (circle-packing through the CLI; a noisy environment with a
target; nanogpt tiny on request)."""

from __future__ import annotations

import json
import math

import pytest
import verify_env
from conftest import pb, query

from progressbench.analysis.stats import betainc, one_sample, t_cdf, welch
from progressbench.analysis.verify import verify_program
from progressbench.errors import UserError
from progressbench.run.config import RunConfig
from progressbench.store import Evaluation, Program, Store, code_hash


# --- the distribution -----------------------------------------------------------------------
@pytest.mark.parametrize("t", [-40.0, -3.0, -0.5, 0.0, 0.7, 2.5, 100.0])
def test_t_cdf_matches_the_closed_forms(t):
    assert t_cdf(t, 1) == pytest.approx(0.5 + math.atan(t) / math.pi, abs=1e-12)
    assert t_cdf(t, 2) == pytest.approx(0.5 + t / (2 * math.sqrt(2 + t * t)), abs=1e-12)


@pytest.mark.parametrize(
    ("t", "df", "cdf"),
    [
        # Quantiles from standard t tables.
        (2.015048373, 5, 0.95),
        (3.364929997, 5, 0.99),
        (2.228138852, 10, 0.975),
        (2.749995652, 30, 0.995),
        (-1.812461123, 10, 0.05),
        (2.0, 5, 0.9490302605850709),
    ],
)
def test_t_cdf_matches_tables(t, df, cdf):
    assert t_cdf(t, df) == pytest.approx(cdf, abs=1e-8)


def test_t_cdf_tends_to_the_normal():
    normal = 0.5 * (1 + math.erf(1.959963985 / math.sqrt(2)))
    assert t_cdf(1.959963985, 1e5) == pytest.approx(normal, abs=1e-5)


@pytest.mark.parametrize(("t", "df"), [(1.5, 2.5), (0.3, 7.3), (-2.2, 3.7)])
def test_t_cdf_with_fractional_df_matches_integration(t, df):
    """Welch's test has fractional degrees of freedom: check against Simpson's rule."""

    def pdf(x: float) -> float:
        scale = math.exp(math.lgamma((df + 1) / 2) - math.lgamma(df / 2)) / math.sqrt(df * math.pi)
        return scale * (1 + x * x / df) ** (-(df + 1) / 2)

    n, h = 20_000, t / 20_000
    inner = sum((4 if i % 2 else 2) * pdf(i * h) for i in range(1, n))
    integral = h / 3 * (pdf(0.0) + pdf(t) + inner)
    assert t_cdf(t, df) == pytest.approx(0.5 + integral, abs=1e-10)


def test_incomplete_beta_known_values():
    assert betainc(2, 3, 0.5) == pytest.approx(11 / 16, abs=1e-14)  # binomial sum
    assert betainc(1, 1, 0.3) == pytest.approx(0.3, abs=1e-14)  # uniform
    assert betainc(0.5, 0.5, 0.25) == pytest.approx(2 / math.pi * math.asin(0.5), abs=1e-12)
    assert betainc(3, 4, 0.0) == 0.0 and betainc(3, 4, 1.0) == 1.0
    with pytest.raises(ValueError):
        betainc(0, 1, 0.5)


def test_one_sample_and_welch_decisions():
    below = one_sample([1.48, 1.47, 1.49, 1.46, 1.48], 1.5, "minimize")
    assert below.df == 4 and below.t < 0 and below.p == pytest.approx(t_cdf(below.t, 4))
    assert below.p < 0.01
    assert one_sample([1.48, 1.47, 1.49, 1.46, 1.48], 1.5, "maximize").p > 0.99
    assert one_sample([2.0, 2.0, 2.0], 1.5, "maximize").p == 0.0  # no spread: certain
    assert one_sample([2.0, 2.0, 2.0], 2.0, "maximize").p == 1.0
    better = welch([2.6, 2.61, 2.59], [2.5, 2.52, 2.49], "maximize")
    assert better.p < 0.01 and 2 < better.df < 4  # Welch-Satterthwaite, not na + nb - 2
    assert welch([2.6, 2.61, 2.59], [2.5, 2.52, 2.49], "minimize").p > 0.99
    with pytest.raises(ValueError):
        welch([1.0], [1.0, 2.0], "maximize")


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


# --- nanogpt tiny ---------------------------------------------------------------------------
def test_verify_nanogpt_tiny_tests_the_validation_loss_against_the_target(tmp_path):
    """The environment's own protocol: best validation loss of each fresh-seed re-run against
    the 1.0 target. Four training steps cannot reach it, so the honest verdict is
    not-verified, with every re-run valid and the p-value far above 0.01."""
    options = {
        "time_budget_s": 60,
        "max_steps": 4,
        "ckpt_every_s": 60,
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
    assert len(seeds) == 2  # fresh seeds, not the run's
    assert v.summary.startswith(f"program {v.program_id} of run {run.id} (nanogpt/tiny)")
    assert "H1: mean best_val_loss < target 1" in v.summary
    assert store.verifications(run.id)[-1].id == v.id
