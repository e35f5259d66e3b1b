"""The store: every run, program, evaluation, guard verdict and LLM call, written as it happens.

SQLite in WAL mode is the default (a file path); any SQLAlchemy URL (e.g. PostgreSQL) works
for shared databases. Writes go through one lock so worker threads never interleave a
transaction; each write commits before the call returns, so a ``kill -9`` loses nothing that
was reported as done. The tables are in ``progressbench.store.tables``; the schema is checked
(and upgraded) on open by ``progressbench.store.schema``; a run is written by the one process
that holds its lease (``progressbench.store.lease``). A database fault (a full disk, a
read-only file, a server gone) is one line (``StoreError``, exit 1), never a traceback.
"""

from __future__ import annotations

import contextlib
import os
import threading
import uuid
from collections.abc import Collection, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import delete, func
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError, IntegrityError, SQLAlchemyError
from sqlmodel import Session, SQLModel, col, select

from progressbench.errors import UserError
from progressbench.store import lease, schema
from progressbench.store.connect import (
    connect,
    db_flag,
    first_line,
    resolve_url,
    safe_url,
    sqlite_path,
    use_wal,
)
from progressbench.store.schema import StoreError
from progressbench.store.tables import (
    Attempt,
    Evaluation,
    LLMCallRecord,
    Program,
    Run,
    TaskRecord,
    VerdictRecord,
    Verification,
    stored_id,
    utcnow,
)

_Row = TypeVar("_Row", bound=SQLModel)


class Store:
    def __init__(self, db: str | None = None, create: bool = True):
        """Open (and, unless ``create`` is False, create) the database ``db``: a file path or
        any SQLAlchemy URL. Commands that only read pass ``create=False``, so a mistyped path
        is an error instead of a new empty database."""
        self.url = resolve_url(db)
        path = self.path
        fresh = path is not None and not path.exists()
        if fresh and not create:
            raise UserError(f"no database at {path} (a run creates it: progressbench run --db ...)")
        if fresh and path is not None:
            # Created private before SQLite opens it: SQLite gives its -wal and -shm files the
            # database file's mode, and they hold the same prompts and responses.
            os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o600))
        self.engine: Engine = connect(self.url)
        try:
            schema.prepare(self.engine, self.location)
            use_wal(self.engine)
        except (StoreError, SQLAlchemyError) as exc:
            if fresh and path is not None and path.stat().st_size == 0:
                path.unlink()  # the empty file this call made: nothing to keep
            if isinstance(exc, StoreError):
                raise
            raise UserError(
                f"cannot open database {safe_url(self.url)}: {first_line(exc)}"
            ) from None
        self._lock = threading.RLock()
        self.leases = lease.Leases(self.engine, self._lock)
        self._pages_checked = False
        if create:  # a command that writes runs: a corrupt file is refused before anything
            self._check_pages()

    @property
    def path(self) -> Path | None:
        """The database file, for SQLite; None for a server database."""
        return sqlite_path(self.url)

    @property
    def location(self) -> str:
        """Where the records are, for messages: the file, or the URL without its password."""
        return str(self.path) if self.path is not None else safe_url(self.url)

    def resume_command(self, run_id: str) -> str:
        return f"progressbench run --resume {run_id}{db_flag(self.url)}"

    def close(self) -> None:
        self.leases.release_all()
        self.engine.dispose()

    # --- writing -------------------------------------------------------------------------
    def session(self) -> Session:
        return Session(self.engine, expire_on_commit=False)

    @contextlib.contextmanager
    def _faults(self, run_id: str | None = None) -> Iterator[None]:
        """A database fault as one line naming the database and the cause (an integrity
        error is a bug, and stays one)."""
        try:
            yield
        except IntegrityError:
            raise
        except DBAPIError as exc:
            kept = f"; what is stored is kept ({self.resume_command(run_id)})" if run_id else ""
            raise StoreError(f"database {self.location}: {first_line(exc)}{kept}") from None

    @contextlib.contextmanager
    def _write(self, run_id: str | None = None, status: str | None = None) -> Iterator[Session]:
        """One write transaction; of run ``run_id``, only by the process holding its lease
        (checked as the transaction's first statement)."""
        with self._faults(run_id), self._lock, self.session() as s:
            if run_id is not None:
                self.leases.check(s, run_id, status)
            yield s

    @contextlib.contextmanager
    def _read(self) -> Iterator[Session]:
        with self._faults(), self.session() as s:
            yield s

    def create_run(self, **fields: Any) -> Run:
        """A new run, leased to this process in the same transaction."""
        run = Run(id=fields.pop("id", None) or new_run_id(), **fields)
        self._check_pages()
        held = self.leases.row(run.id)
        with self._write() as s:
            s.add(run)
            s.flush()  # the run before its lease (a foreign key)
            s.add(held)
            s.commit()
            s.refresh(run)
        self.leases.hold(run.id, held.token)
        with self._faults(run.id):
            self.leases.sweep()  # what dead runs of this machine left in scratch
        return run

    def discard_run(self, run_id: str) -> None:
        """Remove run ``run_id`` and its rows: a run that never began (its reference is not
        valid here), so that a mistake leaves no run behind."""
        with self._write(run_id, status="discarded") as s:  # gives up the lease too
            for table in reversed(SQLModel.metadata.sorted_tables):  # children before parents
                if "run_id" in table.c:
                    s.execute(delete(table).where(table.c.run_id == run_id))
            s.execute(delete(Run).where(col(Run.id) == run_id))
            s.commit()

    def add(self, obj: _Row) -> _Row:
        with self._write() as s:
            s.add(obj)
            s.commit()
            s.refresh(obj)
            return obj

    def add_all(self, objs: list[Any]) -> None:
        with self._write() as s:
            s.add_all(objs)
            s.commit()

    def claim(self, run_id: str) -> None:
        """Hold run ``run_id``'s lease (a no-op if held): a live holder elsewhere is one line
        naming it (exit 2); a dead one's lease is taken over and its scratch removed."""
        with self._faults(run_id):
            if run_id not in self.leases.held:
                self._check_pages()
            self.leases.take(run_id)

    def _check_pages(self) -> None:
        """Once per store, before it first writes a run: a corrupt file is refused."""
        if not self._pages_checked:
            with self._faults():
                schema.check_pages(self.engine, self.location)
            self._pages_checked = True

    def update_run(self, run_id: str, **fields: Any) -> Run:
        """Change run ``run_id``; the first change by a process takes the run's lease (a live
        holder elsewhere: one line, exit 2), a status other than running gives it up."""
        self.claim(run_id)
        with self._write(run_id, fields.get("status")) as s:
            self._update_run(s, run_id, fields)
            s.commit()
            return _existing(s, Run, run_id)

    def issue_tasks(self, tasks: list[TaskRecord], run_id: str, run_fields: dict[str, Any]) -> None:
        """New tasks and the strategy state right after issuing them, in one transaction."""
        with self._write(run_id) as s:
            s.add_all(tasks)
            self._update_run(s, run_id, run_fields)
            s.commit()

    def add_program(
        self,
        program: Program,
        task_key: str | None,
        verdicts: list[VerdictRecord],
        call_keys: Collection[str] = (),
    ) -> Program:
        """A child's code as soon as it exists (status pending, or final if it never ran),
        with its static verdicts, its task pointed at it, and the run's LLM calls stored under
        ``call_keys`` (the requests that produced it, stored before it had an id) linked to it.
        """
        with self._write(program.run_id) as s:
            s.add(program)
            s.flush()
            program_id = stored_id(program)
            for v in verdicts:
                v.program_id = program_id
            s.add_all(verdicts)
            if task_key is not None:
                task = _existing(s, TaskRecord, task_key)
                task.program_id = program_id
                s.add(task)
            if call_keys:
                calls = s.exec(
                    select(LLMCallRecord).where(
                        LLMCallRecord.run_id == program.run_id,
                        col(LLMCallRecord.request_key).in_(sorted(set(call_keys))),
                    )
                ).all()
                for call in calls:
                    call.program_id = program_id
                    s.add(call)
            s.commit()
            s.refresh(program)
            return program

    def commit_result(
        self,
        program_id: int,
        fields: dict[str, Any],
        evaluation: Evaluation | None,
        verdicts: list[VerdictRecord],
        task_key: str | None,
        run_fields: dict[str, Any],
    ) -> None:
        """One transaction: the program's final status, its evaluation and verdicts, its task
        marked done, and the run's counters and strategy state; a crash keeps all or none."""
        with self._write() as s:
            prog = _existing(s, Program, program_id)
            self.leases.check(s, prog.run_id)  # the transaction's first write
            for k, v in fields.items():
                setattr(prog, k, v)
            s.add(prog)
            if evaluation is not None:
                s.add(evaluation)
            s.add_all(verdicts)
            if task_key is not None:
                task = _existing(s, TaskRecord, task_key)
                task.state = "done"
                s.add(task)
            self._update_run(s, prog.run_id, run_fields)
            s.commit()

    def _update_run(self, s: Session, run_id: str, fields: dict[str, Any]) -> None:
        run = _existing(s, Run, run_id)
        for k, v in fields.items():
            setattr(run, k, v)
        run.updated_at = utcnow()
        s.add(run)

    # --- reading -------------------------------------------------------------------------
    def get_run(self, run_id: str) -> Run:
        with self._read() as s:
            run = s.get(Run, run_id)
            if run is None:
                matches = s.exec(select(Run).where(col(Run.id).startswith(run_id))).all()
                if len(matches) == 1:
                    return matches[0]
                if len(matches) > 1:
                    some = ", ".join(r.id for r in matches[:3]) + (
                        ", ..." if len(matches) > 3 else ""
                    )
                    raise UserError(
                        f"run id {run_id!r} is ambiguous in {self.location}: it begins "
                        f"{len(matches)} runs ({some}); give more of it"
                    )
                raise UserError(f"no run {run_id!r} in {self.location}")
            return run

    def runs(self, env: str | None = None) -> list[Run]:
        with self._read() as s:
            q = select(Run)
            if env:
                q = q.where(Run.env == env)
            return list(s.exec(q.order_by(col(Run.created_at))).all())

    def get_program(self, program_id: int) -> Program:
        with self._read() as s:
            prog = s.get(Program, program_id)
            if prog is None:
                raise UserError(f"no program {program_id}")
            return prog

    def programs(self, run_id: str, status: str | None = None) -> list[Program]:
        with self._read() as s:
            q = select(Program).where(Program.run_id == run_id)
            if status:
                q = q.where(Program.status == status)
            return list(s.exec(q.order_by(col(Program.id))).all())

    def evaluation(self, program_id: int, kind: str = "full") -> Evaluation | None:
        with self._read() as s:
            return s.exec(
                select(Evaluation).where(
                    Evaluation.program_id == program_id, Evaluation.kind == kind
                )
            ).first()

    def evaluations(self, run_id: str) -> list[Evaluation]:
        with self._read() as s:
            q = select(Evaluation).where(Evaluation.run_id == run_id).order_by(col(Evaluation.id))
            return list(s.exec(q).all())

    def verdicts(self, program_id: int) -> list[VerdictRecord]:
        with self._read() as s:
            q = (
                select(VerdictRecord)
                .where(VerdictRecord.program_id == program_id)
                .order_by(col(VerdictRecord.id))
            )
            return list(s.exec(q).all())

    def llm_calls(self, run_id: str) -> list[LLMCallRecord]:
        with self._read() as s:
            q = (
                select(LLMCallRecord)
                .where(LLMCallRecord.run_id == run_id)
                .order_by(col(LLMCallRecord.id))
            )
            return list(s.exec(q).all())

    def call_keys(self, run_id: str) -> set[str]:
        """The request keys the run's LLM calls were stored under."""
        with self._read() as s:
            q = select(LLMCallRecord.request_key).where(LLMCallRecord.run_id == run_id)
            return set(s.exec(q.distinct()).all())

    def tasks(self, run_id: str, state: str | None = None) -> list[TaskRecord]:
        with self._read() as s:
            q = select(TaskRecord).where(TaskRecord.run_id == run_id)
            if state:
                q = q.where(TaskRecord.state == state)
            return list(s.exec(q.order_by(col(TaskRecord.seq))).all())

    def attempts(self, run_id: str) -> list[Attempt]:
        with self._read() as s:
            q = select(Attempt).where(Attempt.run_id == run_id).order_by(col(Attempt.id))
            return list(s.exec(q).all())

    def verifications(self, run_id: str | None = None) -> list[Verification]:
        with self._read() as s:
            q = select(Verification)
            if run_id:
                q = q.where(Verification.run_id == run_id)
            return list(s.exec(q.order_by(col(Verification.id))).all())

    def abandoned_runs(self) -> set[str]:
        """Runs marked running whose process is gone (killed, or its machine's heartbeat
        stopped): shown as interrupted, and resumable."""
        with self._read() as s:
            return lease.abandoned(s, self.leases.me)

    def run_cost(self, run_id: str) -> float:
        with self._read() as s:
            total = s.exec(
                select(func.coalesce(func.sum(LLMCallRecord.cost_usd), 0.0)).where(
                    LLMCallRecord.run_id == run_id
                )
            ).one()
            return float(total)


def _existing(s: Session, model: type[_Row], key: Any) -> _Row:
    """The row of ``model`` under primary key ``key``, which the caller knows is stored."""
    row = s.get(model, key)
    if row is None:
        raise LookupError(f"no {model.__name__} {key!r} in the store")
    return row


def new_run_id() -> str:
    return datetime.now(UTC).strftime("%Y%m%d-%H%M%S-") + uuid.uuid4().hex[:6]
