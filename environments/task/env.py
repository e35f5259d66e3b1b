"""The environment of one task folder (``--env task:PATH``).

The folder is read in the platform (``folder.py``: no task code runs there); each sandbox
worker rebuilds the same environment from its name, ``task:<resolved path>``, and runs the
task's evaluator next to the candidate (``harness.py``). The evaluator's word is final, so
runs carry the label "trust: evaluator-in-sandbox"; docs/tasks.md says how a task becomes a
full environment plugin with a protected harness.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar

from pydantic import BaseModel, ValidationError

from progressbench import Assessment, Environment, Objective, Resources, SandboxContext, Variant

from .folder import EVALUATOR, REQUIREMENTS, TaskSpec, load_task

# How much of a failed result's feedback goes into the reason the agent reads.
REASON_CHARS = 1500


class TaskError(Exception):
    """The task's evaluator gave something it must not (no dict, no combined_score): the
    task author's bug, reported as the environment's, never as the candidate's failure."""


class RawResult(BaseModel):
    """What ``harness.full`` returns through the sandbox, checked again in the platform."""

    metrics: dict[str, float] = {}
    artifacts: dict[str, str] = {}
    error: str = ""
    where: str = "evaluate()"
    problem: str = ""


class TaskEnvironment(Environment):
    """One task; ``task_environment`` makes a subclass per folder (name, packages)."""

    name: ClassVar[str] = "task"
    variants: ClassVar[dict[str, Variant]] = {
        "default": Variant(name="default", description="the task as its folder defines it")
    }
    trust: ClassVar[str] = "evaluator-in-sandbox"

    def __init__(self, spec: TaskSpec):
        self.spec = spec

    def objective(self, variant: str) -> Objective:
        return Objective(metric="combined_score", direction="maximize")

    def baseline(self, variant: str) -> str:
        return self.spec.program

    def resources(self, variant: str) -> Resources:
        timeout = self.spec.config.evaluator.timeout
        smoke = timeout if self.spec.cascade else min(timeout, Resources().smoke_seconds)
        return Resources(cpus=1, seconds=timeout, smoke_seconds=smoke)

    def readable_paths(self, variant: str, options: Mapping[str, Any] | None = None) -> list[str]:
        return [str(self.spec.root)]

    def task_description(self, variant: str) -> str:
        extra = ", ".join(self.spec.packages)
        return (
            f"{self.description}\n\nThe task's evaluator.py scores the program: its "
            "combined_score is the fitness (higher is better); its other numbers are metrics "
            "and its messages are feedback. Besides the standard library the program may import "
            f"{extra or 'nothing else'}."
        )

    # --- sandbox side ------------------------------------------------------------------
    def smoke(self, program: Path, ctx: SandboxContext) -> dict[str, Any]:
        from .harness import smoke

        return smoke(self.spec, program)

    def run(self, program: Path, ctx: SandboxContext) -> dict[str, Any]:
        from .harness import full

        return full(self.spec, program)

    # --- platform side -------------------------------------------------------------------
    def assess(
        self, raw: dict[str, Any], verified: dict[str, Any] | None, variant: str
    ) -> Assessment:
        try:
            result = RawResult.model_validate(raw)
        except ValidationError:
            return Assessment(valid=False, reason="the evaluation returned malformed data")
        evaluator = self.spec.evaluator
        if result.problem:
            raise TaskError(f"{evaluator}: {result.problem}")
        telemetry = {"artifacts": result.artifacts, "stage": result.where}
        score = result.metrics.get("combined_score")
        if result.error:
            return Assessment(
                valid=False,
                metrics=result.metrics,
                telemetry=telemetry,
                reason=_feedback(result.error, result.artifacts),
            )
        if score is None:
            keys = ", ".join(sorted(result.metrics)) or "no numbers"
            raise TaskError(f"{evaluator}: {result.where} returned no combined_score ({keys})")
        if not math.isfinite(score):
            reason = _feedback(f"combined_score is {score}", result.artifacts)
            return Assessment(valid=False, metrics={}, telemetry=telemetry, reason=reason)
        return Assessment(valid=True, score=score, metrics=result.metrics, telemetry=telemetry)

    def format_telemetry(self, telemetry: dict[str, Any]) -> str:
        artifacts = telemetry.get("artifacts") or {}
        lines = [f"{key}: {' '.join(str(value).split())[:300]}" for key, value in artifacts.items()]
        return "\n".join(lines)


def _feedback(error: str, artifacts: dict[str, str]) -> str:
    parts = [error, *(f"{k}: {v}" for k, v in artifacts.items())]
    return "; ".join(" ".join(p.split()) for p in parts)[:REASON_CHARS]


def task_environment(where: str) -> TaskEnvironment:
    """The environment of the task folder at ``where``; a one-line error for a bad folder."""
    spec = load_task(where)
    requirements = spec.root / REQUIREMENTS
    attributes = {
        "name": f"task:{spec.root}",
        "description": spec.config.prompt.system_message.strip()
        or (
            f"Improve the program of the task {spec.root.name!r} so that its {EVALUATOR} gives "
            "it a higher combined_score."
        ),
        "packages": tuple(spec.packages),
        "install_hint": f"pip install -r {requirements}" if requirements.is_file() else "",
    }
    cls = type(f"Task_{spec.root.name}", (TaskEnvironment,), attributes)
    return cls(spec)
