"""The store's tables (sqlmodel): runs, programs, tasks, evaluations, guard verdicts, attempts,
verifications, LLM calls and run leases. ``progressbench.store.database`` holds the Store that
writes them; a change here needs a migration in ``progressbench.store.migrations``.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any, Protocol

from sqlalchemy import Column, Index, UniqueConstraint
from sqlalchemy import Text as SAText
from sqlmodel import Field, SQLModel


def utcnow() -> datetime:
    return datetime.now(UTC)


class _Keyed(Protocol):
    @property
    def id(self) -> int | None: ...


def stored_id(row: _Keyed) -> int:
    """The id of a row the store has written. The tables type ``id`` as ``int | None``
    because it is None until the first flush; a row read back or added has one."""
    if row.id is None:
        raise ValueError(f"{type(row).__name__} has no id: it was never written to the store")
    return row.id


class Run(SQLModel, table=True):
    id: str = Field(primary_key=True)
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)
    # running | finished | interrupted | failed | stopped (cost cap)
    status: str = "running"
    env: str = Field(index=True)
    variant: str = Field(index=True)
    strategy: str
    agent: str
    seed: int = 0
    budget: int
    config_json: str = Field(sa_column=Column(SAText))
    # The environment's objective when the run started, so reports need no plugin.
    objective_json: str = Field(default="{}", sa_column=Column(SAText))
    version: str = ""
    reference_id: int | None = None
    reference_score: float | None = None
    reference_metric: float | None = None
    best_program_id: int | None = None
    best_score: float | None = None
    best_metric: float | None = None
    n_children: int = 0
    n_valid: int = 0
    n_failed: int = 0
    n_retries: int = 0
    cost_usd: float = 0.0
    wall_time_s: float = 0.0
    strategy_state_json: str = Field(default="{}", sa_column=Column(SAText))
    message: str = ""

    @property
    def config(self) -> dict[str, Any]:
        return json.loads(self.config_json)


class Program(SQLModel, table=True):
    __table_args__ = (Index("ix_program_run_status", "run_id", "status"),)
    id: int | None = Field(default=None, primary_key=True)
    run_id: str = Field(foreign_key="run.id", index=True)
    created_at: datetime = Field(default_factory=utcnow)
    is_reference: bool = False
    parent_ids_json: str = "[]"
    inspiration_ids_json: str = "[]"
    island: int = 0
    generation: int = 0
    mode: str = ""
    agent: str = ""
    code: str = Field(sa_column=Column(SAText))
    code_hash: str = Field(index=True)
    edit: str = Field(default="", sa_column=Column(SAText))
    idea: str = Field(default="", sa_column=Column(SAText))
    retries: int = 0
    # pending (code known, not yet evaluated) | valid | invalid | failed | rejected
    status: str = "pending"
    score: float | None = None
    metric: float | None = None
    error: str = Field(default="", sa_column=Column(SAText))

    @property
    def parent_ids(self) -> list[int]:
        return json.loads(self.parent_ids_json)

    @property
    def inspiration_ids(self) -> list[int]:
        return json.loads(self.inspiration_ids_json)


class TaskRecord(SQLModel, table=True):
    """A task the strategy issued, stored with the strategy state that issued it, so a resumed
    run redoes exactly the tasks that never finished."""

    __tablename__ = "task"
    key: str = Field(primary_key=True)
    run_id: str = Field(foreign_key="run.id", index=True)
    seq: int
    task_json: str = Field(sa_column=Column(SAText))
    # issued | done
    state: str = "issued"
    program_id: int | None = None
    created_at: datetime = Field(default_factory=utcnow)


class Evaluation(SQLModel, table=True):
    __table_args__ = (UniqueConstraint("program_id", "kind", name="uq_evaluation_program_kind"),)
    id: int | None = Field(default=None, primary_key=True)
    run_id: str = Field(foreign_key="run.id", index=True)
    program_id: int = Field(foreign_key="program.id", index=True)
    created_at: datetime = Field(default_factory=utcnow)
    # "full" once per program; "smoke" for the fast check of the accepted attempt
    kind: str = "full"
    status: str
    valid: bool = False
    score: float | None = None
    metrics_json: str = Field(default="{}", sa_column=Column(SAText))
    features_json: str = Field(default="{}", sa_column=Column(SAText))
    telemetry_json: str = Field(default="{}", sa_column=Column(SAText))
    reason: str = Field(default="", sa_column=Column(SAText))
    error: str = Field(default="", sa_column=Column(SAText))
    stdout: str = Field(default="", sa_column=Column(SAText))
    stderr: str = Field(default="", sa_column=Column(SAText))
    candidate_s: float = 0.0
    total_s: float = 0.0

    @property
    def metrics(self) -> dict[str, float]:
        return json.loads(self.metrics_json)

    @property
    def telemetry(self) -> dict[str, Any]:
        return json.loads(self.telemetry_json)


class VerdictRecord(SQLModel, table=True):
    """A guard's verdict on a program, as stored (the guard contract's ``Verdict`` is what
    guards return)."""

    __tablename__ = "verdict"
    id: int | None = Field(default=None, primary_key=True)
    run_id: str = Field(foreign_key="run.id", index=True)
    program_id: int = Field(foreign_key="program.id", index=True)
    created_at: datetime = Field(default_factory=utcnow)
    guard: str
    stage: str
    passed: bool
    reason: str = Field(default="", sa_column=Column(SAText))
    rule: str = ""
    line: int | None = None
    details_json: str = Field(default="{}", sa_column=Column(SAText))


class Attempt(SQLModel, table=True):
    """A rejected attempt of the fast error catcher (the accepted one is the Program)."""

    id: int | None = Field(default=None, primary_key=True)
    run_id: str = Field(foreign_key="run.id", index=True)
    created_at: datetime = Field(default_factory=utcnow)
    task_key: str = Field(index=True)
    attempt: int
    code: str = Field(default="", sa_column=Column(SAText))
    stage: str  # edit | guard | smoke
    error: str = Field(default="", sa_column=Column(SAText))
    program_id: int | None = None


class Verification(SQLModel, table=True):
    """A statistically verified record: one program re-run K times with fresh seeds."""

    id: int | None = Field(default=None, primary_key=True)
    run_id: str = Field(foreign_key="run.id", index=True)
    program_id: int = Field(foreign_key="program.id", index=True)
    created_at: datetime = Field(default_factory=utcnow)
    repeats: int
    n_valid: int = 0
    metric: str = ""
    mean: float | None = None
    std: float | None = None
    # One-sample t-test against the objective's target (or the reference's mean without one).
    p_value: float | None = None
    reference_mean: float | None = None
    # verified | not-verified | failed
    verdict: str = "failed"
    summary: str = Field(default="", sa_column=Column(SAText))
    details_json: str = Field(default="{}", sa_column=Column(SAText))


class LLMCallRecord(SQLModel, table=True):
    __tablename__ = "llm_call"
    id: int | None = Field(default=None, primary_key=True)
    run_id: str = Field(foreign_key="run.id", index=True)
    created_at: datetime = Field(default_factory=utcnow)
    # Identifies the request within the run (the replay agent keys on it).
    request_key: str = Field(default="", index=True)
    program_id: int | None = Field(default=None, index=True)
    agent: str
    model: str
    purpose: str
    messages_json: str = Field(default="[]", sa_column=Column(SAText))
    response: str = Field(default="", sa_column=Column(SAText))
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float = 0.0
    latency_s: float = 0.0
    error: str = Field(default="", sa_column=Column(SAText))


class RunLease(SQLModel, table=True):
    """The one process running a run (``progressbench.store.lease``): taken when the run
    starts or resumes, renewed by a heartbeat, removed when the run stops; a row whose holder
    is dead is stale and the next process takes it over."""

    __tablename__ = "run_lease"
    run_id: str = Field(primary_key=True, foreign_key="run.id")
    # Changes with every holder: a write that names an old token was overtaken.
    token: str
    host: str
    pid: int
    # Boot id and pid namespace: where ``pid`` means the same process as here.
    node: str
    # The holder's start time (/proc/PID/stat): a pid reused by another process is not it.
    pid_started: str = ""
    since_s: float
    heartbeat_s: float
    # The holder's scratch folders, removed by whoever takes the lease over from a dead holder.
    scratch_json: str = Field(default="[]", sa_column=Column(SAText))
