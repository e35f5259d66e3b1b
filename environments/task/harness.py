"""Sandbox side of a task: import the task's evaluator.py in the sandbox child and call it on
the candidate's path, as the other framework would, then turn what it returns into JSON.

Runs next to the candidate: the evaluator imports the candidate in this same process, so the
candidate can reach the evaluator's state. This is what "trust: evaluator-in-sandbox" means.
"""

from __future__ import annotations

import math
import numbers
import sys
from pathlib import Path
from typing import Any

from .folder import STAGES, TaskSpec

# What feedback one result may carry into a prompt: longer artifacts are cut.
ARTIFACT_CHARS = 2000
MAX_ARTIFACTS = 20


class TaskFailed(Exception):
    """The candidate failed the task's check (an error the evaluator reported, or a stage
    below its cascade threshold): the message goes back to the agent."""


def load_evaluator(spec: TaskSpec) -> Any:
    """The task's evaluator module; its folder goes first on ``sys.path`` so that its own
    helper modules import (this child is thrown away after one evaluation)."""
    from progressbench import load_program

    sys.path.insert(0, str(spec.root))
    return load_program(spec.evaluator, "evaluator")


def normalise(result: Any, where: str) -> dict[str, Any]:
    """One evaluator result as JSON: numeric values are metrics, strings are feedback
    (artifacts); an object with ``metrics`` and ``artifacts`` (OpenEvolve's
    ``EvaluationResult``) counts as both. A result the evaluator should not give is kept as a
    ``problem`` for the platform to report, not blamed on the candidate."""
    metrics_part: Any = getattr(result, "metrics", None)
    artifacts_part: Any = getattr(result, "artifacts", None)
    if isinstance(metrics_part, dict) and isinstance(artifacts_part, dict):
        values = {**artifacts_part, **metrics_part}
    elif isinstance(result, dict):
        values = result
    else:
        return {"problem": f"{where} returned {type(result).__name__}, not a dict"}
    metrics: dict[str, float] = {}
    artifacts: dict[str, str] = {}
    error = ""
    for key, value in values.items():
        name = str(key)
        if isinstance(value, numbers.Real):  # numpy's scalars too
            if math.isfinite(value) or name == "combined_score":
                metrics[name] = float(value)
        elif isinstance(value, str) and name == "error":
            error = value[:ARTIFACT_CHARS]
        elif isinstance(value, str | bytes) and len(artifacts) < MAX_ARTIFACTS:
            text = value.decode(errors="replace") if isinstance(value, bytes) else value
            artifacts[name] = text[:ARTIFACT_CHARS]
    return {"metrics": metrics, "artifacts": artifacts, "error": error, "where": where}


def _call(module: Any, function: str, program: Path) -> dict[str, Any]:
    return normalise(getattr(module, function)(str(program)), f"{function}()")


def _threshold(spec: TaskSpec, stage: int) -> float | None:
    thresholds = spec.config.evaluator.cascade_thresholds
    return thresholds[stage] if stage < len(thresholds) else None


def _below(result: dict[str, Any], threshold: float | None) -> bool:
    score = result["metrics"].get("combined_score")
    return threshold is not None and score is not None and not score >= threshold


def smoke(spec: TaskSpec, program: Path) -> dict[str, Any]:
    """Stage 1 of a cascade, when the task has one: the candidate fails the smoke check if
    it reports an error or scores below the first threshold. Without a cascade, the program
    must import."""
    if not spec.cascade:
        from progressbench import load_program

        load_program(program)
        return {}
    result = _call(load_evaluator(spec), STAGES[0], program)
    if "problem" in result:
        return result  # the full evaluation reports it, as the evaluator's fault
    if result["error"]:
        raise TaskFailed(f"stage 1: {result['error']}")
    threshold = _threshold(spec, 0)
    if _below(result, threshold):
        score = result["metrics"]["combined_score"]
        raise TaskFailed(f"stage 1: combined_score {score:g} is below the threshold {threshold:g}")
    return {"stage1": result["metrics"]}


def full(spec: TaskSpec, program: Path) -> dict[str, Any]:
    """``evaluate``; or, for a cascade, its stages in order, each merged into the result, as
    far as the thresholds let the program go."""
    module = load_evaluator(spec)
    if not spec.cascade:
        return _call(module, "evaluate", program)
    merged: dict[str, Any] = {"metrics": {}, "artifacts": {}, "error": "", "where": "stages"}
    for i, stage in enumerate(s for s in STAGES if s in spec.stages):
        result = _call(module, stage, program)
        if "problem" in result:
            return result
        merged["metrics"].update(result["metrics"])
        merged["artifacts"].update(result["artifacts"])
        merged["error"] = result["error"]
        merged["where"] = f"{stage}()"
        threshold = _threshold(spec, i)
        if result["error"] or _below(result, threshold):
            break
    return merged
