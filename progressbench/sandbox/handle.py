"""The platform's end of one warm worker (``WarmWorker``: spawn, wait until warm, run a job,
stop, kill), the errors it raises, and the registry of live evaluators that interpreter exit
(and a Ctrl-C handler) closes.

The worker's own side is ``progressbench.sandbox.worker``; they speak
``progressbench.sandbox.protocol``.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
import weakref
from pathlib import Path
from typing import Any, Protocol

from progressbench.errors import UserError
from progressbench.sandbox.protocol import (
    clean_text,
    read_tail,
    recv_message,
    send_message,
    signal_name,
)
from progressbench.sandbox.uids import kill_uid


# --- live evaluators, for the Ctrl-C path and interpreter exit -----------------------------
class _Closeable(Protocol):
    def close(self) -> None: ...


_live: weakref.WeakSet[_Closeable] = weakref.WeakSet()


def track(obj: _Closeable) -> None:
    """Remember ``obj`` so that ``close_all`` (called at exit, and by a Ctrl-C handler) stops
    its workers and candidates."""
    _live.add(obj)


def close_all() -> None:
    for obj in list(_live):
        with contextlib.suppress(Exception):
            obj.close()


atexit.register(close_all)


# --- the platform's end of one worker ------------------------------------------------------
class WorkerLost(Exception):
    """The worker died, stopped answering or was stopped while a job ran."""


class WorkerStartError(UserError):
    """A worker could not import the environment or its preload modules."""


class WarmWorker:
    """One long-lived worker process. Not thread-safe for ``run``: the evaluator hands each
    worker to one job at a time; ``stop`` may come from any thread."""

    def __init__(self, slot: int, init: dict[str, Any], environ: dict[str, str], home: Path):
        self.slot = slot
        self.uid: int | None = init.get("uid")
        self._init = init
        self._environ = environ
        self._home = home
        self._log = home / f"worker-{slot}.log"
        self._lock = threading.Lock()
        self._stopped = False
        self._proc: subprocess.Popen[bytes] | None = None
        self._sock: socket.socket | None = None
        # The process group of the candidate now running: killed from here if the worker
        # dies under it (its pdeathsig only reaches the direct child).
        self._candidate_pgid: int | None = None
        self.info: dict[str, Any] = {}

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    @property
    def alive(self) -> bool:
        return self._proc is not None and self._proc.poll() is None and self._sock is not None

    def spawn(self) -> None:
        with self._lock:
            if self._stopped:
                raise WorkerLost("the evaluator is closed")
            ours, theirs = socket.socketpair()
            with open(self._log, "ab") as log:
                self._proc = subprocess.Popen(
                    [
                        sys.executable,
                        "-P",
                        "-m",
                        "progressbench.sandbox.worker",
                        str(theirs.fileno()),
                    ],
                    pass_fds=(theirs.fileno(),),
                    env=self._environ,
                    cwd=self._home,
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    # Its own session: the terminal's Ctrl-C reaches the platform only, which
                    # then closes the evaluator in order.
                    start_new_session=True,
                )
            theirs.close()
            self._sock = ours
            send_message(ours, {"op": "init", **self._init})

    def wait_ready(self, deadline: float) -> None:
        """Wait for the worker's warm-up (imports) to finish; WorkerStartError if it fails."""
        sock = self._sock
        try:
            if sock is None:
                raise WorkerLost("the evaluator is closed")
            reply = recv_message(sock, deadline)
        except (OSError, ValueError, WorkerLost) as exc:
            reply = {"op": "failed", "error": f"{type(exc).__name__}: {exc}"}
        if reply is not None and reply.get("op") == "ready":
            self.info = reply
            return
        error = str(reply.get("error", "")).strip() if reply else ""
        self.kill()
        log = read_tail(self._log, 2000).strip()
        details = "\n".join(part for part in (error, log) if part)
        # The cause (a traceback's last line) first: it is what a one-line report shows.
        cause = details.splitlines()[-1] if details else "the worker exited during start-up"
        raise WorkerStartError(
            f"sandbox worker {self.slot} failed to start: {cause}"
            + (f"\n{details}" if details != cause else "")
        )

    def run(self, job: dict[str, Any], deadline: float) -> dict[str, Any]:
        """Send one job; return the worker's outcome dict. WorkerLost when the worker dies,
        breaks protocol or has not answered by ``deadline`` (a backstop: the worker enforces
        the job's own time limits)."""
        sock = self._sock
        if sock is None or self._proc is None:
            raise WorkerLost("the worker is not running")
        try:
            sock.settimeout(None)  # a timeout left from the last reply must not cut this send
            send_message(sock, {"op": "job", **job})
            while True:
                message = recv_message(sock, deadline)
                if message is None:
                    raise WorkerLost(self._death_reason())
                if message.get("op") == "started":
                    self._candidate_pgid = int(message["pgid"])
                elif message.get("op") == "done":
                    self._candidate_pgid = None
                    return _clean_outcome(dict(message["outcome"]))
                else:
                    raise WorkerLost(f"the worker sent an unexpected message {message.get('op')!r}")
        except TimeoutError:
            self.kill()
            raise WorkerLost("the worker did not answer in time and was killed") from None
        except (OSError, ValueError, KeyError, TypeError) as exc:
            self.kill()
            raise WorkerLost(f"lost contact with the worker: {exc}") from None

    def _death_reason(self) -> str:
        if self._stopped:
            return "the evaluator was closed while the candidate ran"
        assert self._proc is not None
        try:
            code = self._proc.wait(timeout=1.0)
        except subprocess.TimeoutExpired:
            return "the worker closed its connection"
        how = f"killed by {signal_name(-code)}" if code < 0 else f"exited with code {code}"
        return f"the worker process died ({how}) while the candidate ran"

    def hang_up(self) -> None:
        """Tell the worker to stop (it kills its candidate and exits when its socket closes);
        wakes any thread blocked on this worker."""
        with self._lock:
            self._stopped = True
            if self._sock is not None:
                with contextlib.suppress(OSError):
                    self._sock.shutdown(socket.SHUT_RDWR)

    def stop(self, grace: float = 2.0) -> None:
        """Stop for good: hang up, give the worker ``grace`` seconds to clean up, then kill it
        and whatever it left."""
        self.hang_up()
        if self._proc is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                self._proc.wait(timeout=grace)
        self.kill()

    def kill(self) -> None:
        """SIGKILL the worker and every candidate process it may have left behind."""
        with self._lock:
            proc, sock, pgid = self._proc, self._sock, self._candidate_pgid
            self._sock = None
            self._candidate_pgid = None
        if sock is not None:
            sock.close()
        if proc is not None:
            with contextlib.suppress(OSError):
                proc.kill()
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=5)
        if pgid is not None:
            with contextlib.suppress(OSError):
                os.killpg(pgid, signal.SIGKILL)
        uid, gid = self._init.get("uid"), self._init.get("gid")
        if uid is not None and gid is not None:
            kill_uid(uid, gid)

    def restart(self, deadline: float) -> None:
        self.kill()
        self.spawn()
        self.wait_ready(deadline)


def _clean_outcome(outcome: dict[str, Any]) -> dict[str, Any]:
    """The worker cleans every string of a candidate's result (``watch.judge``); its own
    texts are cleaned once more here, the platform's side of the boundary, where the
    database and the agent's prompts begin."""
    for key in ("error", "stdout", "stderr"):
        if isinstance(outcome.get(key), str):
            outcome[key] = clean_text(outcome[key])
    return outcome
