"""The rows the run loop stores, built in one place, and the format of the keys that tie them
together.

A task's key is ``RUN_ID:SEQ``; an LLM request's key is ``SEQ:PURPOSE:N`` (the task's number,
why it was asked, and its number within the task). The replay agent matches requests by that
key, so a run replayed with the same settings asks the same keys in the same order.

Every text column goes through ``text`` (lone surrogates and NULs replaced, errors clipped):
a candidate's text must never make its own row unstorable, and ``commit_result`` records a
child whose result the database still refuses as failed rather than stopping the run.
"""

from __future__ import annotations

import json
from collections.abc import Collection
from typing import Any

from sqlalchemy.exc import DBAPIError, StatementError

from progressbench.contracts.agent import LLMCall, Purpose
from progressbench.contracts.environment import Assessment
from progressbench.contracts.evaluator import EvalOutcome
from progressbench.contracts.program import ProgramView
from progressbench.contracts.strategy import Task
from progressbench.sandbox.protocol import MAX_TEXT_CHARS, clean_text
from progressbench.store.database import Store
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


def task_seq(key: str) -> int:
    """The task number in a key from ``task_key`` (0 for no key: the reference)."""
    return int(key.rsplit(":", 1)[1]) if key else 0


def call_key(seq: int, purpose: Purpose, n: int) -> str:
    """The key of the ``n``-th request (from 1) of task ``seq``."""
    return f"{seq}:{purpose}:{n}"


def keys_of_task(keys: Collection[str], seq: int) -> list[str]:
    """Those of ``keys`` that ``call_key`` made for task ``seq`` (in any earlier session)."""
    return sorted(k for k in keys if k.startswith(f"{seq}:"))


# --- rows --------------------------------------------------------------------------------
# A candidate's strings arrive clipped to MAX_TEXT_CHARS (the sandbox's boundary); a stored
# text has room for the platform's words around one ("smoke: error: ..."), and no more.
STORED_TEXT_CHARS = 2 * MAX_TEXT_CHARS


def text(value: str, limit: int | None = STORED_TEXT_CHARS) -> str:
    """``value`` as a text column can store it: lone surrogates and NULs replaced and, with a
    ``limit``, clipped to its tail (code and LLM replies are never clipped)."""
    return clean_text(value, limit)


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
    (``pending`` until evaluated, or a final status if it never ran). Code with a lone
    surrogate (an LLM's reply can carry one) is stored, and hashed, with U+FFFD instead."""
    code = text(code, None)
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
        edit=text(edit, None),
        idea=text(idea, None),
        retries=retries,
        status=status,
        error=text(error),
    )


def attempt_row(
    run_id: str, task_key: str, attempt: int, code: str, stage: str, error: str
) -> Attempt:
    return Attempt(
        run_id=run_id,
        task_key=task_key,
        attempt=attempt,
        code=text(code, None),
        stage=stage,
        error=text(error),
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
        reason=text(v.reason),
        rule=text(v.rule),
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
        reason=text(assessment.reason),
        error=text(outcome.error),
        stdout=text(outcome.stdout),
        stderr=text(outcome.stderr),
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
            response=text(c.response, None),
            prompt_tokens=c.prompt_tokens,
            completion_tokens=c.completion_tokens,
            cost_usd=c.cost_usd,
            latency_s=c.latency_s,
            error=text(c.error),
        )
        for c in calls
    ]


# --- recording a child -------------------------------------------------------------------
def commit_result(
    store: Store,
    program_id: int,
    fields: dict[str, Any],
    evaluation: Evaluation | None,
    verdicts: list[VerdictRecord],
    task_key: str | None,
    run_fields: dict[str, Any],
) -> None:
    """``Store.commit_result`` for one child, its text made storable. A child whose result
    the database still refuses (a value it cannot hold) is recorded as failed, with why,
    and the run goes on; a fault of the database itself (unavailable, locked, full: what
    the store reports as StoreError) still raises and stops the run."""
    fields = {k: text(v) if isinstance(v, str) else v for k, v in fields.items()}
    try:
        store.commit_result(program_id, fields, evaluation, verdicts, task_key, run_fields)
    except (ValueError, OverflowError, StatementError) as exc:
        if isinstance(exc, DBAPIError):  # from the database itself: a fault, not a value
            raise
        first = text(str(exc).splitlines()[0] if str(exc) else type(exc).__name__, 500)
        failed = {"status": "failed", "score": None, "metric": None}
        failed["error"] = f"its result could not be stored: {first}"
        store.commit_result(program_id, failed, None, [], task_key, run_fields)


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
    telemetry_text: str,
    task: int = 0,
) -> ProgramView:
    """What a strategy sees of ``program``, with the assessment of its evaluation (if any) and
    the environment's text of its telemetry; ``task`` is the number of the task that proposed
    it, where known."""
    return ProgramView(
        id=program.id,
        task=task,
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
        telemetry_text=telemetry_text,
        error=program.error,
        idea=program.idea,
    )
