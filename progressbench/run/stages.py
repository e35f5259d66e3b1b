"""The stages a candidate passes, shared by the run loop and ``progressbench verify``: which
guards apply, the limits of an evaluation, the static guards, the assessment of a result after
the result guards, and how many evaluations run at once.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

from progressbench import plugins
from progressbench.contracts.environment import SANDBOX_KEY, Assessment, Environment, Resources
from progressbench.contracts.evaluator import EvalOutcome, Evaluator, Limits
from progressbench.contracts.guard import Guard, Sandbox, Verdict
from progressbench.errors import EnvironmentFault, UserError
from progressbench.run.config import RunConfig

# Children the environment could not judge (``assess`` raised) before a run stops: one may be
# an odd result, a few are a plugin bug that would spoil the whole run.
ENV_ERROR_LIMIT = 3


def default_workers(cpus: float, most: int | None = None) -> int:
    """Evaluations at once when the user gives no number: as many as the cores this process
    may run on hold evaluations of ``cpus`` cores each, at least one, at most ``most``."""
    if hasattr(os, "sched_getaffinity"):
        cores = len(os.sched_getaffinity(0))
    else:  # macOS, Windows
        cores = os.cpu_count() or 1
    n = max(1, int(cores // max(cpus, 1)))
    return n if most is None else max(1, min(most, n))


def pick_guards(env: Environment, variant: str, names: list[str] | None) -> list[Guard]:
    """The guards a run applies: those ``names`` lists, or every guard enabled by default;
    either way only those that apply to the environment."""
    found = {name: reg.obj for name, reg in plugins.registry("guards").items()}
    if names is not None:
        unknown = [g for g in names if g not in found]
        if unknown:
            raise UserError(f"unknown guard {unknown[0]!r} (available: {', '.join(sorted(found))})")
        chosen = [found[g] for g in names]
    else:
        chosen = [g for g in found.values() if g.default_enabled]
    return [g for g in chosen if g.applies(env, variant)]


def make_evaluator(env: Environment, variant: str, workers: int, config: RunConfig) -> Evaluator:
    """The run's evaluator (not started): its class, its options and the environment's."""
    cls: type[Evaluator] = plugins.get("evaluators", config.evaluator)
    evaluator = cls(env, variant, workers, config.evaluator_options)
    evaluator.env_options = dict(config.env_options)
    return evaluator


def limits_for(resources: Resources, config: RunConfig, phase: str) -> Limits:
    """The limits of a ``"smoke"`` or ``"full"`` evaluation: the environment's, overridden
    by the user's ``timeout_s``, ``memory_mb`` and ``disk_mb``."""
    seconds = resources.smoke_seconds if phase == "smoke" else resources.seconds
    if config.timeout_s:
        # The user's limit replaces the full evaluation's and caps the smoke check's.
        seconds = config.timeout_s if phase == "full" else min(seconds, config.timeout_s)
    sizes = {
        "file_mb": resources.file_mb,
        "disk_mb": config.disk_mb or resources.disk_mb,
        "processes": resources.processes,
    }
    return Limits(
        seconds=seconds,
        memory_mb=config.memory_mb or resources.memory_mb,
        **{k: v for k, v in sizes.items() if v is not None},
    )


def static_verdicts(
    guards: list[Guard],
    code: str,
    reference: str,
    env: Environment,
    variant: str,
    sandbox: Sandbox,
) -> list[Verdict]:
    """The verdicts of the static guards; ``sandbox`` goes to those that run candidate code."""
    out = []
    for guard in guards:
        if guard.stage != "static":
            continue
        try:
            if guard.uses_sandbox:
                v = guard.check_program(code, reference, env, variant, sandbox=sandbox)
            else:
                v = guard.check_program(code, reference, env, variant)
        except Exception as exc:  # a broken guard must not pass a program silently
            v = guard.reject(f"guard crashed: {exc}", rule="guard-error")
        out.append(v)
    return out


def assess_outcome(
    env: Environment, variant: str, guards: list[Guard], code: str, outcome: EvalOutcome
) -> tuple[Assessment, list[Verdict]]:
    """The trusted assessment of a successful evaluation, after the result guards: any
    failing verdict makes it invalid, with the guards' reasons. ``assess`` raising is the
    plugin's bug, not the candidate's failure: an ``EnvironmentFault`` naming the plugin."""
    raw = _with_counts(outcome.raw or {}, outcome.counted)
    verified = (
        None if outcome.verified is None else _with_counts(outcome.verified, outcome.verify_counted)
    )
    try:
        assessment = env.assess(raw, verified, variant)
    except Exception as exc:
        raise EnvironmentFault(
            f"environment {env.name!r}{plugin_of(env.name)} raised in assess: "
            f"{type(exc).__name__}: {exc}"
        ) from exc
    verdicts = []
    for guard in guards:
        if guard.stage != "result":
            continue
        try:
            v = guard.check_result(code, outcome, assessment, env, variant)
        except Exception as exc:
            v = guard.reject(f"guard crashed: {exc}", rule="guard-error")
        verdicts.append(v)
    bad = [v for v in verdicts if not v.passed]
    if bad and assessment.valid:
        assessment = assessment.model_copy(
            update={"valid": False, "reason": describe_verdicts(bad)}
        )
    return assessment, verdicts


def _with_counts(result: dict[str, Any], counted: dict[str, Any]) -> dict[str, Any]:
    """A phase's result as ``assess`` sees it: what the sandbox counted under SANDBOX_KEY,
    never what the program put there."""
    seen = {k: v for k, v in result.items() if k != SANDBOX_KEY}
    if counted:
        seen[SANDBOX_KEY] = dict(counted)
    return seen


def plugin_of(env_name: str) -> str:
    """`` (plugin NAME)`` for a registered environment; empty for one built by hand (tests)."""
    reg = plugins.registry("environments").get(env_name)
    return f" (plugin {reg.plugin!r})" if reg is not None else ""


def check_variant(env: Environment, config: RunConfig) -> str:
    """The variant the run uses, or a one-line error if it is unknown or cannot run here."""
    variant = env.pick_variant(config.variant)
    if variant not in env.variants:
        raise UserError(
            f"environment {config.env!r} has no variant {variant!r} "
            f"(available: {', '.join(env.variants)})"
        )
    why = env.unavailable(variant, config.env_options)
    if why:
        raise UserError(f"variant {variant!r} of {config.env!r} cannot run here: {why}")
    return variant


def describe_verdicts(bad: Sequence[Any]) -> str:
    """Failing verdicts (the guards' or their stored rows) as one line for the agent."""
    parts = []
    for v in bad:
        where = f" (line {v.line})" if v.line else ""
        rule = f" [{v.rule}]" if v.rule else ""
        parts.append(f"guard {v.guard}{rule}{where}: {v.reason}")
    return "; ".join(parts)


def last_line(text: str) -> str:
    """The last non-empty line of ``text`` (a traceback's exception), for one-line reports."""
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return lines[-1] if lines else "(no output)"


def describe_outcome(o: EvalOutcome) -> str:
    """A failed evaluation as one message: its status and error (or the end of stderr)."""
    text = o.error.strip() or o.stderr.strip()[-2000:] or "(no output)"
    return f"{o.status}: {text}"
