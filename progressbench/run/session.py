"""The agent session a strategy drives while it proposes one child, and what it shares with
the rest of the run: the program views, the stop flag, the cost meter.

A session asks the run's agents, stores every LLM call as soon as the reply is in (keyed by
``rows.call_key``), adds its cost to the meter, and remembers the keys it asked so the child's
program row links exactly those calls. An agent that raises ``AgentUnavailable`` has its calls
stored and the exception passed on: the run loop stops the run.

How a run process stops on Ctrl-C or SIGTERM (``stop_on_signals``, ``run_to_end``) is here
too: both stop the run the same clean way.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
from collections.abc import Callable
from typing import Any, NoReturn, Protocol

from progressbench.contracts.agent import (
    Agent,
    AgentReply,
    AgentRequest,
    AgentUnavailable,
    Purpose,
)
from progressbench.contracts.environment import Assessment, Environment
from progressbench.contracts.program import ProgramView
from progressbench.contracts.strategy import Task
from progressbench.run import rows
from progressbench.run.agents import AgentPool
from progressbench.store.database import Store
from progressbench.store.tables import Program, Run, stored_id

INTERRUPTED_EXIT = 130  # 128 + SIGINT, for Ctrl-C and SIGTERM alike
CLEANUP_LIMIT_S = 30.0  # after Ctrl-C or SIGTERM, the most the process takes to leave


class CostCapReached(Exception):
    """The run's LLM spend reached --max-cost; the task in hand is abandoned unstored."""


class Interrupted(Exception):
    """The run is stopping (Ctrl-C); a worker thread's result must not be recorded."""


class StopFlag:
    """Set once the run is stopping; worker threads check it between stages."""

    def __init__(self) -> None:
        self._event = threading.Event()

    def set(self) -> None:
        self._event.set()

    def is_set(self) -> bool:
        return self._event.is_set()

    def check(self) -> None:
        """Raise ``Interrupted`` if the run is stopping."""
        if self._event.is_set():
            raise Interrupted()


def stop_on_signals(limit_s: float = CLEANUP_LIMIT_S) -> None:
    """From now until the process ends, Ctrl-C and SIGTERM (a scheduler, a CI timeout, ``kill``)
    stop the run the same way: it is marked interrupted, its evaluator closed, its scratch
    removed, and the process exits with ``INTERRUPTED_EXIT``.

    Installed once and never taken back, and only the first signal acts: a handler that lived
    only around the run loop let a SIGTERM landing just after the loop (while the summary
    printed) reach click as a bare KeyboardInterrupt, which exits 1; a second Ctrl-C must not
    cut the clean-up short either. The clean-up is bounded instead: ``limit_s`` seconds after
    the first signal the process says so and exits anyway (a write stuck behind a lock the
    interrupted thread held, a worker that does not die); every write commits as it is made,
    so what is stored stays stored and ``--resume`` continues the run. The CLI turns a
    KeyboardInterrupt outside the loop into the same exit code.
    """
    if threading.current_thread() is not threading.main_thread():
        return  # signal handlers belong to the main thread (an embedding caller's choice)

    def interrupt(signum: int, frame: Any) -> None:
        # Python no-ops, not SIG_IGN: processes started later must not inherit an ignore.
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda *_: None)
        watchdog = threading.Timer(limit_s, _give_up, (limit_s,))
        watchdog.daemon = True
        watchdog.start()
        raise KeyboardInterrupt

    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, interrupt)


def _give_up(limit_s: float) -> None:
    print(
        f"\nthe clean-up after the interrupt took more than {limit_s:g} s: leaving without it "
        "(what is stored is kept; progressbench run --resume RUN continues the run)",
        file=sys.stderr,
        flush=True,
    )
    os._exit(INTERRUPTED_EXIT)


class _Executes(Protocol):
    @property
    def run(self) -> Run | None: ...

    def execute(self) -> Run: ...


class _Closes(Protocol):
    def close(self) -> None: ...


def run_to_end(loop: _Executes, progress: _Closes, interrupted: Callable[[Run | None], str]) -> Run:
    """Execute ``loop``; on Ctrl-C or SIGTERM (the loop has marked the run interrupted) print
    ``interrupted(run)`` and leave."""
    try:
        return loop.execute()
    except KeyboardInterrupt:
        progress.close()
        leave(interrupted(loop.run))
    finally:
        progress.close()


def leave(message: str) -> NoReturn:
    """Print ``message`` and exit with ``INTERRUPTED_EXIT`` at once. Everything is committed
    and the evaluator is closed; do not wait for a worker thread that may sit in a model call
    for minutes."""
    print(message, file=sys.stderr)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(INTERRUPTED_EXIT)


class CostMeter:
    """The run's LLM spend in USD, added to by worker threads, against the cap (--max-cost)."""

    def __init__(self, cap: float | None = None, spent: float = 0.0):
        self.cap = cap
        self._spent = spent
        self._lock = threading.Lock()

    @property
    def spent(self) -> float:
        return self._spent

    def add(self, amount: float) -> None:
        with self._lock:
            self._spent += amount

    def set(self, total: float) -> None:
        """The spend as the store adds it up (the main thread, at each commit)."""
        with self._lock:
            self._spent = total

    @property
    def capped(self) -> bool:
        return self.cap is not None and self._spent >= self.cap


class ProgramViews:
    """What strategies see of the run's programs, cached: built from the store on first use,
    replaced by the main thread when a program gets its result."""

    def __init__(self, store: Store, env: Environment):
        self.store = store
        self.env = env
        self._views: dict[int, ProgramView] = {}

    def get(self, program_id: int) -> ProgramView:
        if program_id not in self._views:
            self._views[program_id] = self.build(self.store.get_program(program_id))
        return self._views[program_id]

    def put(self, view: ProgramView) -> ProgramView:
        self._views[view.id] = view
        return view

    def build(
        self, program: Program, assessment: Assessment | None = None, task: int = 0
    ) -> ProgramView:
        """The view of ``program``; without an ``assessment``, that of its stored evaluation."""
        if assessment is None:
            assessment = rows.assessment_from(self.store.evaluation(stored_id(program)))
        return rows.view_of(program, assessment, self.telemetry_text(program, assessment), task)

    def telemetry_text(self, program: Program, assessment: Assessment | None) -> str:
        """The environment's text of the telemetry, and what changed against the first
        parent's evaluation (so that a model sees which part its last edit made faster)."""
        if assessment is None or not assessment.telemetry:
            return ""
        text = self.env.format_telemetry(assessment.telemetry)
        parent = self.store.evaluation(program.parent_ids[0]) if program.parent_ids else None
        before = json.loads(parent.telemetry_json) if parent is not None else {}
        diff = self.env.format_telemetry_diff(assessment.telemetry, before) if before else ""
        return f"{text}\nagainst its parent: {diff}" if diff else text


class AgentSession:
    """The ``ProposalSession`` of one task: the strategy asks, the run's agents answer."""

    def __init__(
        self,
        task: Task,
        seq: int,
        task_description: str,
        *,
        views: ProgramViews,
        agents: AgentPool,
        stop: StopFlag,
        meter: CostMeter,
        store: Store,
        run_id: str,
        seed: int,
        earlier_keys: list[str] | None = None,
    ):
        self.task = task
        self.seq = seq
        self.task_description = task_description
        self.views, self.agents, self.stop, self.meter = views, agents, stop, meter
        self.store, self.run_id, self.seed = store, run_id, seed
        # Keys an earlier session of this task (killed before its program was stored) used:
        # the same keys as this one's, or more, and their calls belong to the same child.
        self._earlier = list(earlier_keys or [])
        self._asked: list[str] = []

    @property
    def call_keys(self) -> list[str]:
        """The keys of every request made for this task, to link to its program."""
        return list(dict.fromkeys(self._earlier + self._asked))

    def program(self, program_id: int) -> ProgramView:
        return self.views.get(program_id)

    def ask(
        self,
        purpose: Purpose,
        system: str,
        prompt: str,
        idea: str | None = None,
        error: str | None = None,
    ) -> AgentReply:
        self.stop.check()
        if self.meter.capped:
            raise CostCapReached()
        n = len(self._asked) + 1
        key = rows.call_key(self.seq, purpose, n)
        self._asked.append(key)
        request = AgentRequest(
            purpose=purpose,
            system=system,
            prompt=prompt,
            parent_code=self.views.get(self.task.parent_id).code,
            seed=(self.seed * 7_919 + self.seq * 104_729 + n) % (2**31),
            idea=idea,
            error=error,
            key=key,
        )
        agent: Agent = self.agents.pick(request.seed)
        try:
            reply = agent.reply(request)
        except AgentUnavailable as exc:  # no request can succeed: stored, then the run stops
            self._record(key, AgentReply(calls=exc.calls))
            raise
        except Exception as exc:  # an agent bug becomes a recorded failure, not a dead run
            reply = AgentReply(error=f"agent {agent.label} failed: {exc}")
        self._record(key, reply)
        return reply

    def _record(self, key: str, reply: AgentReply) -> None:
        if not reply.calls:
            return
        self.store.add_all(rows.call_rows(self.run_id, key, reply.calls))
        spent = sum(c.cost_usd for c in reply.calls)
        if spent:
            self.meter.add(spent)
