"""Testing a plugin the way the platform runs it: one program through the static guards, the
smoke check, the full evaluation (``run``, then ``verify`` in a fresh process when the
environment has one) in the real sandbox, the environment's ``assess`` and the result guards.

    from progressbench.testing import check_program

    def test_my_baseline_is_valid():
        result = check_program("my-env", MyEnv().baseline("default"))
        assert result.valid, result.reason
        assert result.metrics["score"] > 0

Sandbox workers are separate processes: they find the environment through its entry point
(an installed plugin) or, for one that is not installed, through ``plugin_modules`` (module
names they import and register, e.g. the module holding your ``register_environments``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from progressbench import plugins
from progressbench.contracts.environment import Assessment, Environment
from progressbench.contracts.evaluator import EvalJob, EvalOutcome, Evaluator
from progressbench.contracts.guard import Guard, Verdict
from progressbench.run.config import RunConfig
from progressbench.run.stages import assess_outcome, limits_for, pick_guards, static_verdicts

__all__ = ["Checked", "check_program", "check_with"]


@dataclass
class Checked:
    """What became of one program, stage by stage (a later stage is None when an earlier one
    stopped it)."""

    static: list[Verdict]
    smoke: EvalOutcome | None = None
    full: EvalOutcome | None = None
    assessment: Assessment | None = None
    result_verdicts: list[Verdict] = field(default_factory=list)

    @property
    def valid(self) -> bool:
        return self.assessment is not None and self.assessment.valid

    @property
    def metrics(self) -> dict[str, float]:
        return self.assessment.metrics if self.assessment is not None else {}

    @property
    def reason(self) -> str:
        """Why the program is not valid, from the first stage that refused it ("" if valid)."""
        refused = [v for v in self.static if not v.passed]
        if refused:
            return "; ".join(f"guard {v.guard} [{v.rule}]: {v.reason}" for v in refused)
        for outcome in (self.smoke, self.full):
            if outcome is not None and not outcome.ok:
                return f"{outcome.status}: {outcome.error or outcome.stderr[-2000:]}"
        return "" if self.valid or self.assessment is None else self.assessment.reason


def check_program(
    env: str | Environment,
    code: str,
    *,
    variant: str | None = None,
    seed: int = 0,
    env_options: dict[str, Any] | None = None,
    plugin_modules: Sequence[str] = (),
    guards: list[str] | None = None,
    evaluator: str = "local",
) -> Checked:
    """Run ``code`` through every stage a child of a run goes through, with the run's default
    limits for ``env`` (a name, or a registered environment) and the guards a run would apply
    (all enabled by default, or those ``guards`` names)."""
    environment = plugins.get_environment(env if isinstance(env, str) else env.name)
    chosen = environment.pick_variant(variant)
    config = RunConfig(env=environment.name, variant=chosen, env_options=env_options or {})
    environment.check_options(config.env_options)
    applied = pick_guards(environment, chosen, guards)
    options = {"plugin_modules": list(plugin_modules)}
    with plugins.get("evaluators", evaluator)(environment, chosen, 1, options) as sandbox:
        return check_with(sandbox, environment, chosen, config, applied, code, seed)


def check_with(
    sandbox: Evaluator,
    environment: Environment,
    variant: str,
    config: RunConfig,
    guards: list[Guard],
    code: str,
    seed: int = 0,
) -> Checked:
    """The stages of ``check_program`` on an evaluator that is already started, with the
    limits of ``config`` and the given guards (``progressbench eval`` checks more than one
    program on the same warm workers)."""
    resources = environment.resources(variant)
    reference = environment.baseline(variant)
    checked = Checked(
        static_verdicts(guards, code, reference, environment, variant, sandbox.evaluate)
    )
    if not all(v.passed for v in checked.static):
        return checked

    def job(phase: Literal["smoke", "full"]) -> EvalJob:
        limits = limits_for(resources, config, phase)
        return EvalJob(
            program=code, phase=phase, seed=seed, limits=limits, options=config.env_options
        )

    checked.smoke = sandbox.evaluate(job("smoke"))
    if not checked.smoke.ok:
        return checked
    full = checked.full = sandbox.evaluate(job("full"))
    if full.ok:
        checked.assessment, checked.result_verdicts = assess_outcome(
            environment, variant, guards, code, full
        )
    return checked
