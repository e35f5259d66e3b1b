"""Verified records: re-run one program K times with fresh seeds and test its result.

The program goes through the run's own guards and evaluator again (in parallel, as many at
once as the environment's resources allow), each re-run assessed by the environment like any
evaluation. The protocol:

- with a target (the objective's, or the one an environment declares for verification, e.g.
  nanogpt's validation loss): a one-sample t-test, H1 "the mean is better than the target",
  verified when p < alpha (0.01 unless the environment says otherwise: the speedrun's rule);
- without one: the reference program is re-run K times as well and Welch's t-test asks
  whether the program's mean beats the reference's, at the same alpha;
- where the environment names a cost (``faster``, e.g. nanogpt's estimated training time to
  the target), each re-run is paired with a reference re-run on the same fresh seed, run next
  to it (program, reference, program, ...: load on the machine hits both members of a pair
  alike), and a paired t-test on log(program cost / reference cost) gives a second verdict,
  "faster" at p < alpha, with the ratio's confidence interval: the record criterion. The
  reference verified against itself is the control (it must not come out faster).

Every re-run must be valid; the verdict is "verified", "not-verified" (ran, but the evidence
is missing or against it) or "failed" (fewer than two valid re-runs, or rejected by a guard).
One ``Verification`` row records it all, with a summary a person can read.
"""

from __future__ import annotations

import json
import math
import secrets
import statistics
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, as_completed
from functools import partial
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from progressbench import plugins
from progressbench.analysis.stats import TTest, one_sample, paired_ratio, welch
from progressbench.contracts.environment import Environment
from progressbench.contracts.evaluator import EvalJob, Evaluator, Limits
from progressbench.contracts.guard import Guard
from progressbench.errors import PluginError, UserError
from progressbench.run.config import RunConfig
from progressbench.run.stages import (
    assess_outcome,
    default_workers,
    limits_for,
    make_evaluator,
    pick_guards,
    static_verdicts,
)
from progressbench.store.database import Store
from progressbench.store.tables import Program, Run, Verification, stored_id

ALPHA = 0.01


class Protocol(BaseModel):
    """What ``verify`` tests. Environments may override the defaults (taken from their
    objective) with ``Environment.verification(variant)``: nanogpt tests the validation loss against its target while its
    objective ranks time to reach it."""

    model_config = ConfigDict(extra="forbid")

    metric: str
    direction: Literal["maximize", "minimize"]
    target: float | None = None
    alpha: float = Field(ALPHA, gt=0, lt=1)
    # Metrics reported against the reference program (e.g. training time).
    compare: list[str] = Field(default_factory=list)
    # A cost (positive, lower is better) tested in pairs against the reference: "faster".
    faster: str | None = None


def protocol_for(env: Environment, variant: str) -> Protocol:
    objective = env.objective(variant)
    base = {
        "metric": objective.metric,
        "direction": objective.direction,
        "target": objective.target,
        "compare": [objective.metric],
    }
    try:
        return Protocol.model_validate({**base, **env.verification(variant)})
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err["loc"])
        raise PluginError(
            f"environment {env.name!r} returned an invalid verification({variant!r}): "
            f"{where}: {err['msg']}"
        ) from None


def verify_program(
    store: Store,
    run_id: str,
    program_id: int | None,
    repeats: int,
    workers: int | None,
    say: Callable[[str], None] = print,
) -> Verification:
    """Re-run a program of a run ``repeats`` times with fresh seeds, test the result, and
    store (and return) the ``Verification``."""
    if repeats < 2:
        raise UserError("verification needs at least 2 repeats")
    run = store.get_run(run_id)
    program = store.get_program(program_id or run.best_program_id or run.reference_id or 0)
    if program.run_id != run.id:
        raise UserError(f"program {program.id} belongs to run {program.run_id}, not {run.id}")
    config = RunConfig.model_validate(run.config)
    env: Environment = plugins.get_environment(run.env)
    protocol = protocol_for(env, run.variant)
    reference = store.get_program(run.reference_id) if run.reference_id else program
    against_reference = protocol.target is None and not program.is_reference
    paired = protocol.faster is not None and run.reference_id is not None
    jobs = _jobs(program.code, reference.code, repeats, paired, against_reference)
    resources = env.resources(run.variant)
    workers = workers or default_workers(resources.cpus, most=len(jobs))
    say(
        f"verifying program {program.id} of run {run.id} ({run.env}/{run.variant}): "
        f"{repeats} re-runs with fresh seeds"
        f"{' (and as many of the reference)' if against_reference else ''}"
        f"{', each paired with a reference re-run on its seed' if paired else ''}"
        f" on {workers} worker(s)"
    )
    guards = pick_guards(env, run.variant, config.guards)
    limits = limits_for(resources, config, "full")
    with make_evaluator(env, run.variant, workers, config) as evaluator:
        static = static_verdicts(
            guards, program.code, reference.code, env, run.variant, evaluator.evaluate
        )
        rejected = [v for v in static if not v.passed]
        if rejected:
            why = "; ".join(f"{v.guard} [{v.rule}]: {v.reason}" for v in rejected)
            lines = [f"rejected by the guards before running: {why}"]
            return _store(store, run, program, protocol, repeats, [], None, "failed", lines, {})
        rerun = partial(_rerun, evaluator, env, run.variant, guards, limits, config.env_options)
        results = _rerun_all(rerun, jobs, workers, protocol.metric, say)
    return _conclude(store, run, program, reference, protocol, repeats, results)


def _jobs(
    code: str, reference: str, repeats: int, paired: bool, against_reference: bool
) -> list[tuple[str, str, int]]:
    """(role, code, seed) in the order they start: pairs interleaved on a shared fresh seed,
    or the program's re-runs and then the reference's, each on its own."""
    seeds = [secrets.randbelow(2**31) for _ in range(repeats)]
    if paired:
        return [
            job
            for seed in seeds
            for job in (("program", code, seed), ("reference", reference, seed))
        ]
    jobs = [("program", code, seed) for seed in seeds]
    if against_reference:
        jobs += [("reference", reference, secrets.randbelow(2**31)) for _ in range(repeats)]
    return jobs


def _rerun(
    evaluator: Evaluator,
    env: Environment,
    variant: str,
    guards: list[Guard],
    limits: Limits,
    options: dict[str, Any],
    role: str,
    code: str,
    seed: int,
) -> dict[str, Any]:
    """One re-run: evaluated, then assessed after the result guards like any evaluation."""
    job = EvalJob(program=code, phase="full", seed=seed, limits=limits, options=options)
    outcome = evaluator.evaluate(job)
    found: dict[str, Any] = {"role": role, "seed": seed, "status": outcome.status}
    if not outcome.ok:
        return {**found, "valid": False, "reason": outcome.error or outcome.status}
    assessment, _ = assess_outcome(env, variant, guards, code, outcome)
    found.update(valid=assessment.valid, reason=assessment.reason)
    return {**found, "metrics": assessment.metrics}


def _rerun_all(
    rerun: Callable[[str, str, int], dict[str, Any]],
    jobs: list[tuple[str, str, int]],
    workers: int,
    metric: str,
    say: Callable[[str], None],
) -> list[dict[str, Any]]:
    """Every (role, code, seed) job re-run, ``workers`` at once, each reported as it ends."""
    results = []
    with ThreadPoolExecutor(max_workers=workers) as pool:
        futures = [pool.submit(rerun, *job) for job in jobs]
        for future in as_completed(futures):
            r = future.result()
            results.append(r)
            value = (r.get("metrics") or {}).get(metric)
            shown = f"{metric} = {value:.6g}" if _finite(value) else r["reason"]
            state = "valid" if r["valid"] else r["status"]
            say(f"  {r['role']} re-run {len(results)}/{len(jobs)}: {state}: {shown}")
    return results


def _finite(x: Any) -> bool:
    return isinstance(x, (int, float)) and math.isfinite(x)


def _values(results: list[dict[str, Any]], role: str, metric: str) -> list[float]:
    return [
        float(r["metrics"][metric])
        for r in results
        if r["role"] == role and r["valid"] and _finite((r.get("metrics") or {}).get(metric))
    ]


def _describe(values: list[float]) -> str:
    if not values:
        return "no values"
    spread = statistics.stdev(values) if len(values) > 1 else 0.0
    return (
        f"mean {statistics.fmean(values):.6g}, std {spread:.3g} "
        f"(min {min(values):.6g}, max {max(values):.6g})"
    )


def _conclude(
    store: Store,
    run: Run,
    program: Program,
    reference: Program,
    protocol: Protocol,
    repeats: int,
    results: list[dict[str, Any]],
) -> Verification:
    metric = protocol.metric
    mine = _values(results, "program", metric)
    theirs = _values(results, "reference", metric)
    lines = [f"{metric}: {_describe(mine)}; {len(mine)}/{repeats} re-runs valid and measured"]
    problems = []
    for r in results:
        if r["role"] != "program" or (r["valid"] and _finite(r["metrics"].get(metric))):
            continue
        why = r["reason"] or r["status"]
        if r["valid"]:  # e.g. nanogpt's time to target, when the target was not reached
            why = f"valid, but without a {metric} ({why})"
        problems.append(f"seed {r['seed']}: {why}")
    details: dict[str, Any] = {"protocol": protocol.model_dump(), "repeats": results}
    test: TTest | None = None
    reference_mean: float | None = None
    verdict = "failed"
    if len(mine) < 2:
        lines.append("fewer than 2 valid re-runs: nothing to test")
    elif protocol.target is not None:
        test = one_sample(mine, protocol.target, protocol.direction)
        side = "<" if protocol.direction == "minimize" else ">"
        lines.append(f"{test.name}, H1: mean {metric} {side} target {protocol.target:g}")
    elif program.is_reference:
        lines.append("the reference program has no target and nothing to beat: nothing to test")
    elif len(theirs) < 2:
        lines.append(f"the reference program gave fewer than 2 valid re-runs ({len(theirs)})")
    else:
        test = welch(mine, theirs, protocol.direction)
        reference_mean = statistics.fmean(theirs)
        lines.append(f"reference program re-run: {_describe(theirs)}")
        lines.append(f"{test.name}, H1: the program's mean {metric} is better than the reference's")
    if test is not None:
        significant = test.p < protocol.alpha
        lines[-1] += (
            f": t = {test.t:.3g}, df = {test.df:.3g}, p = {test.p:.3g} "
            f"{'<' if significant else '>='} {protocol.alpha:g}"
        )
        verdict = "verified" if significant and not problems else "not-verified"
        details["test"] = {"name": test.name, "t": test.t, "df": test.df, "p": test.p}
    if problems:
        lines.append(f"{len(problems)} re-run(s) did not count: " + "; ".join(problems[:3]))
    lines += _faster(protocol, results, details)
    lines += _comparisons(store, program, reference, protocol, results, details)
    if reference_mean is None:
        recorded = details["compared"].get(metric, {}).get("reference")
        reference_mean = recorded if _finite(recorded) else None
    return _store(
        store, run, program, protocol, repeats, mine, test, verdict, lines, details, reference_mean
    )


def _faster(
    protocol: Protocol, results: list[dict[str, Any]], details: dict[str, Any]
) -> list[str]:
    """The second verdict: the paired cost-ratio test, over the pairs whose two members are
    both valid and have the cost (e.g. both reached the target)."""
    metric = protocol.faster
    if metric is None or not any(r["role"] == "reference" for r in results):
        return []
    costs: dict[int, dict[str, float]] = {}
    for r in results:
        value = (r.get("metrics") or {}).get(metric)
        if r["valid"] and isinstance(value, (int, float)) and math.isfinite(value) and value > 0:
            costs.setdefault(r["seed"], {})[r["role"]] = float(value)
    pairs = [c for c in costs.values() if len(c) == 2]
    head = f"faster than the reference ({metric}, paired on {len(pairs)} seeds)"
    if len(pairs) < 2:
        details["faster"] = {"verdict": "untested", "pairs": len(pairs)}
        return [f"{head}: fewer than 2 complete pairs: untested"]
    test = paired_ratio(
        [c["program"] for c in pairs], [c["reference"] for c in pairs], protocol.alpha
    )
    verdict = "faster" if test.p < protocol.alpha else "not-faster"
    details["faster"] = {"verdict": verdict, "metric": metric, **vars(test)}
    level = f"{100 * (1 - protocol.alpha):g}%"
    return [
        f"{head}: ratio {test.ratio:.4f} ({level} CI {test.low:.4f}-{test.high:.4f}); "
        f"{test.name}, H1: ratio < 1: t = {test.t:.3g}, df = {test.df:g}, p = {test.p:.3g} "
        f"{'<' if test.p < protocol.alpha else '>='} {protocol.alpha:g}: "
        f"{'verified faster' if verdict == 'faster' else 'not shown faster'}"
    ]


def _comparisons(
    store: Store,
    program: Program,
    reference: Program,
    protocol: Protocol,
    results: list[dict[str, Any]],
    details: dict[str, Any],
) -> list[str]:
    """The re-runs against what the run recorded for the program, and against the reference
    (its re-runs when there are any, else its recorded evaluation)."""
    lines = []
    recorded = store.evaluation(stored_id(program))
    claimed = recorded.metrics.get(protocol.metric) if recorded is not None else None
    mine = _values(results, "program", protocol.metric)
    if _finite(claimed) and mine:
        lines.append(
            f"the run recorded {protocol.metric} = {claimed:.6g} for this program; the re-runs' "
            f"mean is {statistics.fmean(mine):.6g}"
        )
        details["recorded"] = claimed
    stored_ref = store.evaluation(stored_id(reference))
    compared = {}
    for name in dict.fromkeys([protocol.metric, *protocol.compare]):
        ours = _values(results, "program", name)
        theirs = _values(results, "reference", name)
        source = "re-runs"
        if not theirs and stored_ref is not None and _finite(stored_ref.metrics.get(name)):
            theirs, source = [float(stored_ref.metrics[name])], "its recorded evaluation"
        if not ours or not theirs or program.id == reference.id:
            continue
        a, b = statistics.fmean(ours), statistics.fmean(theirs)
        compared[name] = {"program": a, "reference": b, "reference_source": source}
        if name in protocol.compare:
            ratio = f", {a / b:.3g}x" if b else ""
            lines.append(f"{name}: {a:.6g} against the reference's {b:.6g} ({source}{ratio})")
    details["compared"] = compared
    return lines


def _store(
    store: Store,
    run: Run,
    program: Program,
    protocol: Protocol,
    repeats: int,
    values: list[float],
    test: TTest | None,
    verdict: str,
    lines: list[str],
    details: dict[str, Any],
    reference_mean: float | None = None,
) -> Verification:
    head = (
        f"program {program.id} of run {run.id} ({run.env}/{run.variant}), {repeats} re-runs "
        "with fresh seeds"
    )
    summary = "\n".join([head, *(f"  {line}" for line in lines), f"verdict: {verdict}"])
    return store.add(
        Verification(
            run_id=run.id,
            program_id=stored_id(program),
            repeats=repeats,
            n_valid=len(values),
            metric=protocol.metric,
            mean=statistics.fmean(values) if values else None,
            std=statistics.stdev(values) if len(values) > 1 else None,
            p_value=test.p if test is not None else None,
            reference_mean=reference_mean,
            verdict=verdict,
            summary=summary,
            details_json=json.dumps(details, default=str),
        )
    )
