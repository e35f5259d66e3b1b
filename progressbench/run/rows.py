"""The rows the run loop stores, built in one place, and the format of the keys that tie them
together.

A task's key is ``RUN_ID:SEQ``; an LLM request's key is ``SEQ:PURPOSE:N`` (the task's number,
why it was asked, and its number within the task). The replay agent matches requests by that
key, so a run replayed with the same settings asks the same keys in the same order.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Collection
from typing import Any

from progressbench.contracts.agent import LLMCall, Purpose
from progressbench.contracts.environment import Assessment
from progressbench.contracts.evaluator import EvalOutcome
from progressbench.contracts.program import ProgramView
from progressbench.contracts.strategy import Task
from progressbench.store.hashing import code_hash
from progressbench.store.tables import (
    Attempt,
    Evaluation,
    LLMCallRecord,
    Program,
    TaskRecord,
    VerdictRecord,
)


# --- keys --------------------------------------------------------------------------------
def task_key(run_id: str, seq: int) -> str:
    return f"{run_id}:{seq}"


def call_key(seq: int, purpose: Purpose, n: int) -> str:
    """The key of the ``n``-th request (from 1) of task ``seq``."""
    return f"{seq}:{purpose}:{n}"


def keys_of_task(keys: Collection[str], seq: int) -> list[str]:
    """Those of ``keys`` that ``call_key`` made for task ``seq`` (in any earlier session)."""
    return sorted(k for k in keys if k.startswith(f"{seq}:"))


# --- rows --------------------------------------------------------------------------------
def task_row(run_id: str, seq: int, task: Task) -> TaskRecord:
    return TaskRecord(
        key=task_key(run_id, seq), run_id=run_id, seq=seq, task_json=task.model_dump_json()
    )


def reference_row(run_id: str, code: str) -> Program:
    return Program(
        run_id=run_id, is_reference=True, code=code, code_hash=code_hash(code), mode="reference"
    )


def program_row(
    run_id: str,
    task: Task,
    agent: str,
    code: str,
    edit: str,
    idea: str,
    retries: int,
    status: str,
    error: str,
) -> Program:
    """A child's row: where the task put it, its code and edit, and how it ended so far
    (``pending`` until evaluated, or a final status if it never ran)."""
    return Program(
        run_id=run_id,
        parent_ids_json=json.dumps([task.parent_id]),
        inspiration_ids_json=json.dumps(task.inspiration_ids),
        island=task.island,
        generation=task.generation,
        mode=task.mode,
        agent=agent,
        code=code,
        code_hash=code_hash(code),
        edit=edit,
        idea=idea,
        retries=retries,
        status=status,
        error=error,
    )


def attempt_row(
    run_id: str, task_key: str, attempt: int, code: str, stage: str, error: str
) -> Attempt:
    return Attempt(
        run_id=run_id, task_key=task_key, attempt=attempt, code=code, stage=stage, error=error
    )


def verdict_row(run_id: str, program_id: int, v: Any, stage: str) -> VerdictRecord:
    """A guard's ``Verdict`` as stored. Static verdicts get their program id when the program
    row is written (``Store.add_program``)."""
    return VerdictRecord(
        run_id=run_id,
        program_id=program_id,
        guard=v.guard,
        stage=stage,
        passed=v.passed,
        reason=v.reason,
        rule=v.rule,
        line=v.line,
        details_json=json.dumps(v.details),
    )


def evaluation_row(
    run_id: str, program_id: int, outcome: EvalOutcome, assessment: Assessment
) -> Evaluation:
    """The full evaluation of a program: what the evaluator saw and what was concluded."""
    return Evaluation(
        run_id=run_id,
        program_id=program_id,
        kind="full",
        status=outcome.status,
        valid=assessment.valid,
        score=assessment.score if assessment.valid else None,
        metrics_json=json.dumps(assessment.metrics),
        features_json=json.dumps(assessment.features),
        telemetry_json=json.dumps(assessment.telemetry),
        reason=assessment.reason,
        error=outcome.error,
        stdout=outcome.stdout,
        stderr=outcome.stderr,
        candidate_s=outcome.candidate_s,
        total_s=outcome.total_s,
    )


def call_rows(run_id: str, key: str, calls: list[LLMCall]) -> list[LLMCallRecord]:
    return [
        LLMCallRecord(
            run_id=run_id,
            request_key=key,
            agent=c.agent,
            model=c.model,
            purpose=c.purpose,
            messages_json=json.dumps(c.messages),
            response=c.response,
            prompt_tokens=c.prompt_tokens,
            completion_tokens=c.completion_tokens,
            cost_usd=c.cost_usd,
            latency_s=c.latency_s,
            error=c.error,
        )
        for c in calls
    ]


# --- reading rows back -------------------------------------------------------------------
def assessment_from(ev: Evaluation | None) -> Assessment | None:
    if ev is None:
        return None
    return Assessment(
        valid=ev.valid,
        score=ev.score,
        metrics=json.loads(ev.metrics_json),
        features=json.loads(ev.features_json),
        telemetry=json.loads(ev.telemetry_json),
        reason=ev.reason,
    )


def view_of(
    program: Program,
    assessment: Assessment | None,
    format_telemetry: Callable[[dict[str, Any]], str],
) -> ProgramView:
    """What a strategy sees of ``program``, with the assessment of its evaluation (if any)."""
    return ProgramView(
        id=program.id,
        parent_ids=program.parent_ids,
        inspiration_ids=program.inspiration_ids,
        island=program.island,
        generation=program.generation,
        code=program.code,
        status=program.status,
        valid=program.status == "valid",
        score=program.score,
        metrics=assessment.metrics if assessment else {},
        features=assessment.features if assessment else {},
        telemetry_text=format_telemetry(assessment.telemetry) if assessment else "",
        error=program.error,
        idea=program.idea,
    )
