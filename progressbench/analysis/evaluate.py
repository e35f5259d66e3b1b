"""``progressbench eval``: one program through exactly the pipeline a child goes through (the
edit scope against the environment's reference, the static guards, the smoke check, the full
evaluation in the sandbox, the environment's assessment and the result guards), optionally
stored as a run of agent ``human`` so it ranks on the leaderboard beside agent runs, and
optionally re-run with the environment's verification protocol (``analysis/verify.py``).
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from progressbench import __version__, plugins
from progressbench.contracts.environment import Assessment, Environment, format_score
from progressbench.contracts.evaluator import Evaluator
from progressbench.contracts.program import is_multi_file
from progressbench.contracts.strategy import Task
from progressbench.errors import EnvironmentFault, UserError
from progressbench.run import packages, rows
from progressbench.run.config import RunConfig
from progressbench.run.regions import has_marker
from progressbench.run.source import read_program
from progressbench.run.stages import (
    check_variant,
    describe_outcome,
    describe_verdicts,
    make_evaluator,
    pick_guards,
)
from progressbench.store.database import Store
from progressbench.store.tables import Run, stored_id
from progressbench.testing import Checked, check_with

STRATEGY = "eval"  # the strategy column of a run stored by `eval --save`


def status_of(checked: Checked) -> str:
    """valid | invalid (ran, refused by the environment or a result guard) | failed
    (crashed, timed out, failed the smoke check) | rejected (by a static guard)."""
    if not all(v.passed for v in checked.static):
        return "rejected"
    if checked.assessment is None:
        return "failed"
    return "valid" if checked.assessment.valid else "invalid"


@dataclass
class Evaluated:
    """One program's way through the pipeline, and what became of it."""

    path: str
    env: Environment
    variant: str
    scope: str
    checked: Checked
    reference: Checked | None = None
    run_id: str | None = None
    verification: dict[str, Any] = field(default_factory=dict)

    @property
    def status(self) -> str:
        return status_of(self.checked)

    @property
    def error(self) -> str:
        """Why the program is not valid, prefixed with the stage (as a child's is stored)."""
        c = self.checked
        refused = [v for v in c.static if not v.passed]
        if refused:
            return f"guard: {describe_verdicts(refused)}"
        if c.smoke is not None and not c.smoke.ok:
            return f"smoke: {describe_outcome(c.smoke)}"
        if c.full is not None and not c.full.ok:
            return describe_outcome(c.full)
        return c.assessment.reason if c.assessment and not c.assessment.valid else ""


def edit_scope(code: str) -> str:
    """What the edit-scope guard holds the program to: a program that keeps the reference's
    EVOLVE markers may change only what is inside them, as an agent may; one without markers,
    or of several files, is a program of its own, judged by the other guards and the harness
    alone."""
    if is_multi_file(code):
        return "the whole program (its files are a program of its own)"
    if has_marker(code):
        return "inside the reference's EVOLVE blocks"
    return "the whole program (it has no EVOLVE markers)"


def evaluate_program(
    path: str,
    config: RunConfig,
    save: str | None = None,
    name: str = "human",
    repeats: int | None = None,
    say: Callable[[str], None] = print,
) -> Evaluated:
    """Check the program at ``path`` for ``config.env``; store it in the database ``save``
    names (opened only once the program is judged: bad input writes nothing), and verify it
    with ``repeats`` re-runs."""
    started = time.monotonic()
    code = read_program(path)
    env: Environment = plugins.get_environment(config.env)
    variant = check_variant(env, config)
    env.check_options(config.env_options)
    guards = pick_guards(env, variant, config.guards)
    if is_multi_file(code):
        # A program of several files is never an edit of the reference: no scope to keep.
        guards = [g for g in guards if g.name != "edit-scope"]
    reference_code = env.baseline(variant)
    evaluator = make_evaluator(env, variant, 1, config)
    packages.start_checked(evaluator, env)
    try:
        say(f"evaluating {path} on {env.name} ({variant})")
        checked = _checked(evaluator, env, variant, config, guards, code)
        result = Evaluated(path, env, variant, edit_scope(code), checked)
        if save is not None or repeats:
            say("evaluating the reference program, to compare against")
            result.reference = _checked(evaluator, env, variant, config, guards, reference_code)
    finally:
        evaluator.close()
    store = Store(save, create=True) if save is not None else None
    if store is not None:
        wall = time.monotonic() - started
        result.run_id = _store(store, result, config, name, code, reference_code, wall)
    if repeats and result.status == "valid":
        result.verification = _verify(store, result, config, name, code, repeats, say)
    return result


def _checked(
    evaluator: Evaluator,
    env: Environment,
    variant: str,
    config: RunConfig,
    guards: list[Any],
    code: str,
) -> Checked:
    """``check_with``; a result the environment cannot judge is a one-line error (exit 2):
    for ``eval`` that is a broken environment or task evaluator, not the program's failure."""
    try:
        return check_with(evaluator, env, variant, config, guards, code, seed=config.seed)
    except EnvironmentFault as exc:
        raise UserError(str(exc)) from None


def _store(
    store: Store,
    result: Evaluated,
    config: RunConfig,
    name: str,
    code: str,
    reference: str,
    wall: float = 0.0,
) -> str:
    """The evaluation as a run of one child by agent ``name``, the way the run loop stores
    a run: the run, its reference and the program, each result committed in one step."""
    objective = result.env.objective(result.variant)
    run = store.create_run(
        env=result.env.name,
        variant=result.variant,
        strategy=STRATEGY,
        agent=name,
        seed=config.seed,
        budget=1,
        config_json=config.model_dump_json(),
        objective_json=objective.model_dump_json(),
        version=__version__,
    )
    ref = store.add_program(rows.reference_row(run.id, reference), None, [])
    assert result.reference is not None
    ref_fields = _fields(result.reference, status_of(result.reference), "", objective.metric)
    run_fields = {
        "reference_id": stored_id(ref),
        "reference_score": ref_fields["score"],
        "reference_metric": ref_fields["metric"],
    }
    _commit(store, run, stored_id(ref), result.reference, ref_fields, run_fields)
    task = Task(parent_id=stored_id(ref), mode=STRATEGY)
    static = [rows.verdict_row(run.id, 0, v, "static") for v in result.checked.static]
    row = rows.program_row(run.id, task, name, code, "", "", 0, "pending", "")
    program = store.add_program(row, None, static)
    fields = _fields(result.checked, result.status, result.error, objective.metric)
    valid = fields["status"] == "valid"
    run_fields = {
        "status": "finished",
        "wall_time_s": wall,
        "n_children": 1,
        "n_valid": int(valid),
        "n_failed": int(fields["status"] in ("failed", "rejected")),
        "best_program_id": stored_id(program) if valid else None,
        "best_score": fields["score"],
        "best_metric": fields["metric"],
    }
    _commit(store, run, stored_id(program), result.checked, fields, run_fields)
    return run.id


def _fields(checked: Checked, status: str, error: str, metric: str) -> dict[str, Any]:
    """A program's stored fields after ``checked``."""
    a = checked.assessment
    valid = status == "valid" and a is not None
    return {
        "status": status,
        "score": a.score if valid and a else None,
        "metric": a.metrics.get(metric) if valid and a else None,
        "error": error,
    }


def _commit(
    store: Store,
    run: Run,
    program_id: int,
    checked: Checked,
    fields: dict[str, Any],
    run_fields: dict[str, Any],
) -> None:
    """One program's result, its evaluation and verdicts, and the run's fields, committed in
    one transaction (as the run loop commits a child)."""
    evaluation = None
    if checked.full is not None:
        judged = checked.assessment or Assessment(
            valid=False, reason=describe_outcome(checked.full)
        )
        evaluation = rows.evaluation_row(run.id, program_id, checked.full, judged)
    verdicts = [rows.verdict_row(run.id, program_id, v, "result") for v in checked.result_verdicts]
    store.commit_result(program_id, fields, evaluation, verdicts, None, run_fields)


def _verify(
    save: Store | None,
    result: Evaluated,
    config: RunConfig,
    name: str,
    code: str,
    repeats: int,
    say: Callable[[str], None],
) -> dict[str, Any]:
    """The environment's verification protocol on the stored program: in the user's store
    with ``--save`` (the leaderboard marks it), else in a throw-away one."""
    from progressbench.analysis.verify import verify_program

    with tempfile.TemporaryDirectory(prefix="progressbench-eval-") as scratch:
        store = save or Store(str(Path(scratch) / "eval.db"))
        try:
            run_id = result.run_id
            if run_id is None:
                reference = result.env.baseline(result.variant)
                run_id = _store(store, result, config, name, code, reference)
            run = store.get_run(run_id)
            found = verify_program(store, run_id, run.best_program_id, repeats, None, say=say)
            return {"verdict": found.verdict, "mean": found.mean, "p_value": found.p_value,
                    "summary": found.summary}  # fmt: skip
        finally:
            if save is None:
                store.close()


# --- output ------------------------------------------------------------------------------
def as_dict(result: Evaluated) -> dict[str, Any]:
    """What ``eval --json`` prints."""
    c = result.checked
    a = c.assessment
    objective = result.env.objective(result.variant)
    reference = result.reference.assessment if result.reference else None
    return {
        "program": result.path,
        "env": result.env.name,
        "variant": result.variant,
        "trust": result.env.trust,
        "status": result.status,
        "valid": result.status == "valid",
        "metric": objective.metric,
        "value": a.metrics.get(objective.metric) if a else None,
        "score": a.score if a and a.valid else None,
        "reference_value": reference.metrics.get(objective.metric) if reference else None,
        "metrics": a.metrics if a else {},
        "features": a.features if a else {},
        "telemetry": a.telemetry if a else {},
        "reason": result.error,
        "edit_scope": result.scope,
        "guards": [
            {
                "guard": v.guard,
                "stage": stage,
                "passed": v.passed,
                "rule": v.rule,
                "reason": v.reason,
            }
            for stage, verdicts in (("static", c.static), ("result", c.result_verdicts))
            for v in verdicts
        ],
        "smoke": _outcome(c.smoke),
        "full": _outcome(c.full),
        "run_id": result.run_id,
        "verification": result.verification or None,
    }


def _outcome(o: Any) -> dict[str, Any] | None:
    if o is None:
        return None
    return {"status": o.status, "error": o.error, "seconds": o.candidate_s}


def render(result: Evaluated) -> str:
    """What ``eval`` prints: the verdict, the objective's value, every metric, the telemetry
    and each guard's verdict with its reason."""
    d = as_dict(result)
    trust = "" if result.env.trust == Environment.trust else f" (trust: {result.env.trust})"
    lines = [f"{d['program']} on {d['env']} ({d['variant']}){trust}"]
    lines.append(f"  edit scope: {d['edit_scope']}")
    for g in d["guards"]:
        state = "passed" if g["passed"] else f"REJECTED [{g['rule']}]: {g['reason']}"
        lines.append(f"  {g['stage']} guard {g['guard']}: {state}")
    for phase in ("smoke", "full"):
        o = d[phase]
        if o is not None:
            lines.append(f"  {phase}: {o['status']} ({o['seconds']:.2f} s)")
    lines.append(f"verdict: {d['status']}" + (f": {d['reason']}" if d["reason"] else ""))
    if d["value"] is not None:
        ref = d["reference_value"]
        versus = f" (reference {format_score(ref)})" if ref is not None else ""
        lines.append(f"{d['metric']}: {format_score(d['value'])}{versus}")
    if d["metrics"]:
        lines.append("metrics:")
        lines += [f"  {k}: {format_score(v)}" for k, v in sorted(d["metrics"].items())]
    telemetry = result.env.format_telemetry(d["telemetry"]) if d["telemetry"] else ""
    if telemetry:
        lines += ["telemetry:", *(f"  {line}" for line in telemetry.splitlines())]
    if result.verification:
        lines.append(result.verification["summary"])
    if result.run_id:
        lines.append(f"saved as run {result.run_id}: progressbench show {result.run_id}")
    return "\n".join(lines)
