"""The store: every run, program, evaluation, guard verdict and LLM call, written as it happens.

SQLite in WAL mode is the default (a file path); any SQLAlchemy URL (e.g. PostgreSQL) works
for shared databases. Writes go through one lock so worker threads never interleave a
transaction; each write commits before the call returns, so a ``kill -9`` loses nothing that
was reported as done.
"""

from __future__ import annotations

import hashlib
import json
import threading
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Column, Index, UniqueConstraint, event, func
from sqlalchemy import Text as SAText
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import ArgumentError, OperationalError, SQLAlchemyError
from sqlmodel import Field, Session, SQLModel, create_engine, select

from progressbench.errors import UserError

DEFAULT_DB = "progressbench.db"
SQLITE = "sqlite:///"


def utcnow() -> datetime:
    return datetime.now(UTC)


def code_hash(code: str) -> str:
    return hashlib.sha256(code.encode()).hexdigest()[:16]


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


class Verdict(SQLModel, table=True):
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


def resolve_url(db: str | None) -> str:
    """A database argument (a path or any SQLAlchemy URL) as a URL, or a one-line error."""
    db = db or DEFAULT_DB
    if "://" not in db:
        path = Path(db).expanduser()
        if path.is_dir():
            raise UserError(f"--db {db!r} is a directory; give a file path or a database URL")
        if not path.parent.exists():
            raise UserError(f"--db {db!r}: folder {str(path.parent)!r} does not exist")
        return f"{SQLITE}{path.resolve()}"
    try:
        url = make_url(db)
    except (ArgumentError, ValueError):
        raise UserError(f"--db {db!r} is not a valid database URL") from None
    return url.render_as_string(hide_password=False)


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    # WAL: readers never block the writer, and a killed writer loses no committed work.
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA busy_timeout=30000")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.close()


class Store:
    def __init__(self, db: str | None = None):
        self.url = resolve_url(db)
        try:
            self.engine: Engine = create_engine(self.url)
        except (ArgumentError, SQLAlchemyError, ImportError) as exc:
            raise UserError(f"cannot open database {_safe(self.url)}: {_first_line(exc)}") from None
        if self.engine.dialect.name == "sqlite":
            event.listen(self.engine, "connect", _sqlite_pragmas)
        path = self.path
        fresh = path is not None and not path.exists()
        try:
            SQLModel.metadata.create_all(self.engine)
        except (OperationalError, SQLAlchemyError) as exc:
            raise UserError(f"cannot open database {_safe(self.url)}: {_first_line(exc)}") from None
        if fresh and path.exists():
            # Only the owner reads the record (prompts, responses); SQLite gives its WAL and
            # shared-memory files the same mode.
            path.chmod(0o600)
        self._lock = threading.RLock()

    @property
    def path(self) -> Path | None:
        """The database file, for SQLite; None for a server database."""
        return Path(self.url[len(SQLITE) :]) if self.url.startswith(SQLITE) else None

    @property
    def location(self) -> str:
        """Where the records are, for messages: the file, or the URL without its password."""
        return str(self.path) if self.path is not None else _safe(self.url)

    def close(self) -> None:
        self.engine.dispose()

    # --- writing -------------------------------------------------------------------------
    def session(self) -> Session:
        return Session(self.engine, expire_on_commit=False)

    def create_run(self, **fields: Any) -> Run:
        run = Run(id=fields.pop("id", None) or new_run_id(), **fields)
        return self.add(run)

    def add(self, obj: Any) -> Any:
        with self._lock, self.session() as s:
            s.add(obj)
            s.commit()
            s.refresh(obj)
            return obj

    def add_all(self, objs: list[Any]) -> None:
        with self._lock, self.session() as s:
            s.add_all(objs)
            s.commit()

    def update_run(self, run_id: str, **fields: Any) -> Run:
        with self._lock, self.session() as s:
            self._update_run(s, run_id, fields)
            s.commit()
            return s.get(Run, run_id)

    def issue_tasks(self, tasks: list[TaskRecord], run_id: str, run_fields: dict[str, Any]) -> None:
        """New tasks and the strategy state right after issuing them, in one transaction."""
        with self._lock, self.session() as s:
            s.add_all(tasks)
            self._update_run(s, run_id, run_fields)
            s.commit()

    def add_program(
        self, program: Program, task_key: str | None, verdicts: list[Verdict]
    ) -> Program:
        """A child's code as soon as it exists (status pending, or final if it never ran)."""
        with self._lock, self.session() as s:
            s.add(program)
            s.flush()
            for v in verdicts:
                v.program_id = program.id
            s.add_all(verdicts)
            if task_key is not None:
                task = s.get(TaskRecord, task_key)
                task.program_id = program.id
                s.add(task)
                # The calls that produced this program were stored before it had an id.
                prefix = task_key.split(":", 1)[1] + ":"
                calls = s.exec(
                    select(LLMCallRecord).where(
                        LLMCallRecord.run_id == program.run_id,
                        LLMCallRecord.request_key.startswith(prefix),
                    )
                ).all()
                for call in calls:
                    call.program_id = program.id
                    s.add(call)
            s.commit()
            s.refresh(program)
            return program

    def commit_result(
        self,
        program_id: int,
        fields: dict[str, Any],
        evaluation: Evaluation | None,
        verdicts: list[Verdict],
        task_key: str | None,
        run_fields: dict[str, Any],
    ) -> None:
        """One transaction: the program's final status, its evaluation and verdicts, its task
        marked done, and the run's counters and strategy state; a crash keeps all or none."""
        with self._lock, self.session() as s:
            prog = s.get(Program, program_id)
            for k, v in fields.items():
                setattr(prog, k, v)
            s.add(prog)
            if evaluation is not None:
                s.add(evaluation)
            s.add_all(verdicts)
            if task_key is not None:
                task = s.get(TaskRecord, task_key)
                task.state = "done"
                s.add(task)
            self._update_run(s, prog.run_id, run_fields)
            s.commit()

    def _update_run(self, s: Session, run_id: str, fields: dict[str, Any]) -> None:
        run = s.get(Run, run_id)
        for k, v in fields.items():
            setattr(run, k, v)
        run.updated_at = utcnow()
        s.add(run)

    # --- reading -------------------------------------------------------------------------
    def get_run(self, run_id: str) -> Run:
        with self.session() as s:
            run = s.get(Run, run_id)
            if run is None:
                matches = s.exec(select(Run).where(Run.id.startswith(run_id))).all()
                if len(matches) == 1:
                    return matches[0]
                raise UserError(f"no run {run_id!r} in {_safe(self.url)}")
            return run

    def runs(self, env: str | None = None) -> list[Run]:
        with self.session() as s:
            q = select(Run)
            if env:
                q = q.where(Run.env == env)
            return list(s.exec(q.order_by(Run.created_at)).all())

    def get_program(self, program_id: int) -> Program:
        with self.session() as s:
            prog = s.get(Program, program_id)
            if prog is None:
                raise UserError(f"no program {program_id}")
            return prog

    def programs(self, run_id: str, status: str | None = None) -> list[Program]:
        with self.session() as s:
            q = select(Program).where(Program.run_id == run_id)
            if status:
                q = q.where(Program.status == status)
            return list(s.exec(q.order_by(Program.id)).all())

    def evaluation(self, program_id: int, kind: str = "full") -> Evaluation | None:
        with self.session() as s:
            return s.exec(
                select(Evaluation).where(
                    Evaluation.program_id == program_id, Evaluation.kind == kind
                )
            ).first()

    def evaluations(self, run_id: str) -> list[Evaluation]:
        with self.session() as s:
            q = select(Evaluation).where(Evaluation.run_id == run_id).order_by(Evaluation.id)
            return list(s.exec(q).all())

    def verdicts(self, program_id: int) -> list[Verdict]:
        with self.session() as s:
            q = select(Verdict).where(Verdict.program_id == program_id).order_by(Verdict.id)
            return list(s.exec(q).all())

    def llm_calls(self, run_id: str) -> list[LLMCallRecord]:
        with self.session() as s:
            q = (
                select(LLMCallRecord)
                .where(LLMCallRecord.run_id == run_id)
                .order_by(LLMCallRecord.id)
            )
            return list(s.exec(q).all())

    def tasks(self, run_id: str, state: str | None = None) -> list[TaskRecord]:
        with self.session() as s:
            q = select(TaskRecord).where(TaskRecord.run_id == run_id)
            if state:
                q = q.where(TaskRecord.state == state)
            return list(s.exec(q.order_by(TaskRecord.seq)).all())

    def attempts(self, run_id: str) -> list[Attempt]:
        with self.session() as s:
            q = select(Attempt).where(Attempt.run_id == run_id).order_by(Attempt.id)
            return list(s.exec(q).all())

    def verifications(self, run_id: str | None = None) -> list[Verification]:
        with self.session() as s:
            q = select(Verification)
            if run_id:
                q = q.where(Verification.run_id == run_id)
            return list(s.exec(q.order_by(Verification.id)).all())

    def run_cost(self, run_id: str) -> float:
        with self.session() as s:
            total = s.exec(
                select(func.coalesce(func.sum(LLMCallRecord.cost_usd), 0.0)).where(
                    LLMCallRecord.run_id == run_id
                )
            ).one()
            return float(total)


def new_run_id() -> str:
    return datetime.now(UTC).strftime("%Y%m%d-%H%M%S-") + uuid.uuid4().hex[:6]


def _first_line(exc: BaseException) -> str:
    text = str(getattr(exc, "orig", None) or exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _safe(url: str) -> str:
    """The URL without its password, for messages."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return url
