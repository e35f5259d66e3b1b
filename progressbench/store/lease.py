"""Run leases: one process runs a run at a time.

A run's lease (a ``run_lease`` row) names its holder: host, pid, start time, and a token that
changes with every holder. The Store takes it when the run is created or first written by a
process (``--resume``), renews it from a heartbeat thread, checks it as the first statement of
every write of the run (an UPDATE on the holder's token, so the check and the write are one
transaction: a process that lost its lease writes nothing), and removes it when the run's status
leaves ``running``. A second process is refused with the holder named. A lease whose holder is
dead (same machine and its pid gone, or no heartbeat for ``TTL_S``) is stale: the next taker
replaces it with a compare-and-set on the old token, so of two takers one wins.

The heartbeat also records the holder's scratch folders (its evaluator workers' working
folders), so that whoever finds the holder dead removes what it left behind, and nothing of a
live run.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import socket
import threading
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import delete, update
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from progressbench.errors import RunFailed, UserError
from progressbench.store.tables import Run, RunLease

HEARTBEAT_S = 10.0
# Without a heartbeat for this long, a holder on another machine counts as dead.
TTL_S = 90.0
# The local evaluator's scratch folders (``tempfile.mkdtemp(prefix=...)``).
SCRATCH_PREFIX = "progressbench-"


@dataclass(frozen=True)
class Holder:
    host: str
    pid: int
    node: str
    pid_started: str


def _read(path: str) -> str:
    try:
        return Path(path).read_text().strip()
    except OSError:
        return ""


def _node() -> str:
    """Boot id and pid namespace: two processes with the same node see the same pids."""
    try:
        pidns = os.readlink("/proc/self/ns/pid")
    except OSError:
        pidns = ""
    return f"{_read('/proc/sys/kernel/random/boot_id')}/{pidns}"


def _started(pid: int) -> str:
    """The start time of process ``pid`` in clock ticks since boot ('' if unknown)."""
    stat = _read(f"/proc/{pid}/stat")
    fields = stat.rsplit(")", 1)[-1].split()
    return fields[19] if len(fields) > 19 else ""


def this_process() -> Holder:
    pid = os.getpid()
    return Holder(socket.gethostname(), pid, _node(), _started(pid))


def _alive(pid: int, started: str) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # another user's process: it exists
    now = _started(pid)
    return not (started and now and now != started)  # a reused pid is not the holder


def holder_dead(lease: RunLease, me: Holder) -> bool:
    """Known dead: on this machine and its process gone."""
    return lease.node == me.node and not _alive(lease.pid, lease.pid_started)


def is_stale(lease: RunLease, me: Holder, now: float | None = None) -> bool:
    silent = (now if now is not None else time.time()) - lease.heartbeat_s
    return silent > TTL_S or holder_dead(lease, me)


def describe(lease: RunLease) -> str:
    since = datetime.fromtimestamp(lease.since_s, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    ago = max(0, round(time.time() - lease.heartbeat_s))
    return f"host {lease.host}, pid {lease.pid}, since {since} (heartbeat {ago}s ago)"


def scratch_folders(pid: int | None = None) -> list[str]:
    """The scratch folders of this process's children (the evaluator's workers run in them)."""
    pid = pid or os.getpid()
    children: set[str] = set()
    with contextlib.suppress(OSError):
        for task in os.listdir(f"/proc/{pid}/task"):
            children.update(_read(f"/proc/{pid}/task/{task}/children").split())
    found = set()
    for child in children:
        with contextlib.suppress(OSError):
            cwd = os.readlink(f"/proc/{child}/cwd")
            if Path(cwd).name.startswith(SCRATCH_PREFIX):
                found.add(cwd)
    return sorted(found)


def remove_scratch(folders: Iterable[str]) -> None:
    """Remove a dead holder's scratch folders: only folders named as the evaluator names its
    own, never through a link."""
    from progressbench.sandbox.filesystem import remove_tree

    for folder in folders:
        path = Path(folder)
        if not (path.is_absolute() and path.name.startswith(SCRATCH_PREFIX)):
            continue
        if path.is_dir() and not path.is_symlink():
            remove_tree(path)


def _rows(result: object) -> int:
    """The rows an UPDATE or DELETE matched."""
    return int(getattr(result, "rowcount", 0))


class Leases:
    """The leases one Store holds. ``lock`` is the Store's write lock."""

    def __init__(self, engine: Engine, lock: threading.RLock):
        self.engine, self.lock = engine, lock
        self.me = this_process()
        self.held: dict[str, str] = {}  # run id -> token
        self._scratch: list[str] = []
        self._thread: threading.Thread | None = None
        self._thread_lock = threading.Lock()
        self._closed = threading.Event()
        self._exit_hook = False

    def row(self, run_id: str) -> RunLease:
        """A new lease of run ``run_id`` for this process (not yet held: see ``hold``)."""
        now, me = time.time(), self.me
        return RunLease(
            run_id=run_id,
            token=uuid.uuid4().hex,
            host=me.host,
            pid=me.pid,
            node=me.node,
            pid_started=me.pid_started,
            since_s=now,
            heartbeat_s=now,
        )

    def hold(self, run_id: str, token: str) -> None:
        """Note a committed lease as ours and keep its heartbeat going."""
        self.held[run_id] = token
        if not self._exit_hook:
            atexit.register(self.release_all)
            self._exit_hook = True
        with self._thread_lock:
            if self._thread is None or not self._thread.is_alive():
                self._closed.clear()
                self._thread = threading.Thread(target=self._beat, name="pb-lease", daemon=True)
                self._thread.start()

    # --- inside the Store's write transactions -------------------------------------------
    def check(self, s: Session, run_id: str, status: str | None = None) -> None:
        """The first statement of a write of run ``run_id``: renew our lease (or remove it, if
        the run stops), or raise if another process holds it."""
        token = self.held.get(run_id)
        if token is None:
            lease = s.get(RunLease, run_id)
            if lease is not None and not is_stale(lease, self.me):
                raise self._refusal(run_id, lease)
            return  # a write outside any lease: a process that never ran this run
        mine = (col(RunLease.run_id) == run_id) & (col(RunLease.token) == token)
        if status is not None and status != "running":
            done = _rows(s.execute(delete(RunLease).where(mine)))
            self.held.pop(run_id, None)
        else:
            done = _rows(s.execute(update(RunLease).where(mine).values(heartbeat_s=time.time())))
        if done == 0:
            self.held.pop(run_id, None)
            lease = s.get(RunLease, run_id)
            by = f" by {describe(lease)}" if lease is not None else ""
            raise RunFailed(f"run {run_id} was taken over{by}; this process stopped writing it")

    # --- taking a lease (its own transactions) -------------------------------------------
    def take(self, run_id: str) -> None:
        """Hold run ``run_id``: a free lease is inserted, a stale one replaced by compare-and-
        set on its token, a live one refused with its holder named (exit 2)."""
        if run_id in self.held:
            return
        with self.lock, Session(self.engine) as s:
            lease = s.get(RunLease, run_id)
            if lease is not None and not is_stale(lease, self.me):
                raise self._refusal(run_id, lease)
            row = self.row(run_id)
            # Read before the swap, which refreshes ``lease`` with our values.
            left = json.loads(lease.scratch_json or "[]") if lease is not None else []
            dead = lease is not None and holder_dead(lease, self.me)
            try:
                if lease is None:
                    s.add(row)
                else:
                    old = (col(RunLease.run_id) == run_id) & (col(RunLease.token) == lease.token)
                    fields = row.model_dump(exclude={"run_id"})
                    if _rows(s.execute(update(RunLease).where(old).values(**fields))) != 1:
                        raise IntegrityError("the lease changed hands", None, ValueError())
                s.commit()
            except IntegrityError:  # another process took it first
                s.rollback()
                raise self._refusal(
                    run_id, s.get(RunLease, run_id, populate_existing=True)
                ) from None
            self.hold(run_id, row.token)
            if dead:
                remove_scratch(left)
        self.sweep()

    def _refusal(self, run_id: str, lease: RunLease | None) -> UserError:
        who = describe(lease) if lease is not None else "another process"
        return UserError(
            f"run {run_id} is being run by {who}; one process runs a run at a time "
            "(wait for it, or stop it and resume)"
        )

    # --- what dead holders left ----------------------------------------------------------
    def sweep(self) -> None:
        """Remove the scratch folders of this machine's dead holders (any run of this store)."""
        with self.lock, Session(self.engine) as s:
            leases = s.exec(select(RunLease).where(RunLease.node == self.me.node)).all()
            for lease in leases:
                folders = json.loads(lease.scratch_json or "[]")
                if not folders or not holder_dead(lease, self.me):
                    continue
                remove_scratch(folders)
                same = (col(RunLease.run_id) == lease.run_id) & (col(RunLease.token) == lease.token)
                s.execute(update(RunLease).where(same).values(scratch_json="[]"))
            s.commit()

    # --- the heartbeat -------------------------------------------------------------------
    def _beat(self) -> None:
        """Every second: note new scratch folders; every HEARTBEAT_S (or on a change): renew.
        A failed renewal is left to the next write to report (this thread never prints)."""
        last = time.monotonic()
        while not self._closed.wait(1.0):
            with self._thread_lock:
                if not self.held:
                    self._thread = None
                    return
            scratch = scratch_folders()
            if scratch == self._scratch and time.monotonic() - last < HEARTBEAT_S:
                continue
            with contextlib.suppress(Exception):
                self._renew(scratch)
                self._scratch, last = scratch, time.monotonic()

    def _renew(self, scratch: list[str]) -> None:
        with self.lock, Session(self.engine) as s:
            for run_id, token in list(self.held.items()):
                mine = (col(RunLease.run_id) == run_id) & (col(RunLease.token) == token)
                values = {"heartbeat_s": time.time(), "scratch_json": json.dumps(scratch)}
                s.execute(update(RunLease).where(mine).values(**values))
            s.commit()

    def release_all(self) -> None:
        """Give up every lease still held (a process leaving before its run stopped)."""
        self._closed.set()
        held, self.held = dict(self.held), {}
        if not held:
            return
        with contextlib.suppress(Exception), self.lock, Session(self.engine) as s:
            for run_id, token in held.items():
                mine = (col(RunLease.run_id) == run_id) & (col(RunLease.token) == token)
                s.execute(delete(RunLease).where(mine))
            s.commit()


def abandoned(s: Session, me: Holder) -> set[str]:
    """Runs marked running whose process is gone (no lease, or a stale one): shown as
    interrupted, and resumable."""
    q = select(Run.id, RunLease).join(RunLease, col(RunLease.run_id) == Run.id, isouter=True)
    now = time.time()
    rows = s.exec(q.where(Run.status == "running")).all()
    return {run_id for run_id, lease in rows if lease is None or is_stale(lease, me, now)}
