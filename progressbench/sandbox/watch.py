"""The worker's watch over one running child: the clock, its memory (RSS mode), the size of
its scratch directory (only where it is not a tmpfs the kernel caps) and the platform's socket, polled together until the child ends or
is killed; then the sweep that leaves no process of the candidate behind, and the judgement
of how the child ended (``Phase``).

Apart from the worker's loop so that what decides a candidate's status (timeout, memory,
output-limit, crashed, error) reads in one place.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import select
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from progressbench.sandbox.child import MIB, cpu_limit
from progressbench.sandbox.filesystem import MAX_FILES, disk_usage
from progressbench.sandbox.protocol import clean_value, signal_name

if TYPE_CHECKING:
    from progressbench.sandbox.worker import Worker


# How often the RSS watch (GPU jobs, where an address-space limit would break CUDA) looks.
RSS_POLL_S = 0.05
# Without a tmpfs scratch (no mount namespace): how often the scratch directory's size is
# checked against the job's disk limit, and the most entries a candidate may create there
# (each poll walks them all).
DISK_POLL_S = 0.5
MAX_SCRATCH_ENTRIES = MAX_FILES
PAGE = os.sysconf("SC_PAGE_SIZE")
# How long into a phase the watch lets its candidate start before it calls ``on_quiet``.
QUIET_S = 0.05
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


class PlatformGone(Exception):
    """The platform hung up: stop the candidate and exit."""


@dataclass
class Phase:
    """What one child (run, smoke or verify) came to."""

    status: str
    raw: dict[str, Any] | None = None
    error: str = ""
    stdout: str = ""
    stderr: str = ""
    seconds: float = 0.0
    # CPU seconds of every process of the phase, as the kernel counted them (``accounting``).
    cpu_s: float = 0.0
    # What the phase's witness wrote (``witness``), if anything.
    witness: dict[str, Any] | None = None

    def counted(self) -> dict[str, Any]:
        """What the worker vouches for (``SANDBOX_KEY``): the CPU count and the witness's
        record."""
        counted: dict[str, Any] = {"cpu_s": self.cpu_s}
        if self.witness is not None:
            counted["witness"] = self.witness
        return counted


def statm(pid: int | str) -> tuple[int, int]:
    """(virtual size, resident size) in bytes."""
    with open(f"/proc/{pid}/statm") as f:
        size, resident = f.read().split()[:2]
    return int(size) * PAGE, int(resident) * PAGE


def _children() -> list[int]:
    """This process's children, orphans it adopted as subreaper included."""
    try:
        pids: list[int] = []
        for tid in os.listdir("/proc/self/task"):
            with open(f"/proc/self/task/{tid}/children") as f:
                pids += [int(p) for p in f.read().split()]
        return pids
    except FileNotFoundError:  # a kernel without CONFIG_PROC_CHILDREN: scan every process
        me, found = os.getpid(), []
        for name in os.listdir("/proc"):
            if name.isdigit():
                with contextlib.suppress(OSError, ValueError, IndexError):
                    with open(f"/proc/{name}/stat") as f:
                        if int(f.read().rsplit(")", 1)[1].split()[1]) == me:
                            found.append(int(name))
        return found


def sweep(pgid: int | None, keep: frozenset[int] = frozenset()) -> None:
    """SIGKILL the candidate's process group and every process left below this worker but
    those in ``keep`` (the spare child, processes already killed whose reaping is deferred).
    Orphans re-parent to the worker (a child subreaper), so each round kills what is there
    and the next finds their orphaned children; RLIMIT_NPROC bounds the rounds."""
    if pgid is not None:
        with contextlib.suppress(OSError):
            os.killpg(pgid, signal.SIGKILL)
    while kids := [pid for pid in _children() if pid not in keep]:
        for pid in kids:
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
        for pid in kids:
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, 0)


def _tasks_children(pid: int) -> list[int]:
    """The children of process ``pid`` (every thread's), [] once it is gone."""
    found: list[int] = []
    with contextlib.suppress(OSError):
        for tid in os.listdir(f"/proc/{pid}/task"):
            with contextlib.suppress(OSError), open(f"/proc/{pid}/task/{tid}/children") as f:
                found += [int(p) for p in f.read().split()]
    return found


def _cpu_ticks(pid: int) -> int:
    """User + system time of ``pid`` and of the children it reaped, in clock ticks."""
    with contextlib.suppress(OSError, ValueError, IndexError), open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
        return sum(int(fields[i]) for i in (11, 12, 13, 14))
    return 0


def kill_tree(root: int) -> tuple[float, list[int]]:
    """SIGKILL ``root`` and every process below it, without waiting for any to die (tearing
    down a torch-sized address space takes milliseconds the platform need not wait for).
    Returns their CPU seconds as the kernel counts them once killed (to the clock tick; a
    killed process runs no more user code) and the pids killed, root first: each stays a
    zombie, its pid reserved, until the worker reaps it (``accounting.Deferred``)."""
    killed: list[int] = []
    pending = [root]
    while pending:
        pid = pending.pop(0)
        if pid in killed:
            continue
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGKILL)
        killed.append(pid)
        # Listed after the kill: what it forked before dying is found, it forks no more.
        pending += _tasks_children(pid)
    ticks = sum(_cpu_ticks(pid) for pid in killed)
    return ticks / CLOCK_TICKS, killed


@dataclass
class Ended:
    """How a watched child ended: its wait status (0 when it was killed after reporting)
    and CPU seconds (to tell its CPU-time limit's SIGKILL), why the watch killed it or "",
    its report (None past the size limit), and the processes killed but left to be reaped
    later, with the CPU seconds the kernel counted for them."""

    status: int
    child_cpu_s: float
    killed: str
    payload: bytes | None
    unreaped_cpu_s: float = 0.0
    unreaped: tuple[int, ...] = ()


def wait(
    worker: Worker,
    pid: int,
    read_end: int,
    deadline: float,
    rss_cap: int,
    scratch: Path,
    disk_cap: int | None,
    keep: Callable[[], frozenset[int]],
    on_quiet: Callable[[], None],
) -> Ended:
    """Collect the child's result, watching the clock, the platform and ``_over_limit``;
    call ``on_quiet`` once, ``QUIET_S`` in. Ends when the child exits or as soon as its
    report is in (it closes the result pipe before exiting: see ``_ended_early``). Leaves
    no process of the candidate running, and those of ``keep()`` alone."""
    pidfd = os.pidfd_open(pid)
    poller = select.poll()
    for fd in (pidfd, read_end, worker.sock.fileno()):
        poller.register(fd, select.POLLIN)
    payload: bytearray | None = bytearray()
    killed = ""
    next_disk = time.monotonic() + DISK_POLL_S if disk_cap is not None else math.inf
    limit = worker.max_result_bytes
    quiet_at = time.monotonic() + QUIET_S
    try:
        while True:
            now = time.monotonic()
            if now >= quiet_at:
                on_quiet()
                quiet_at = math.inf
            if now >= deadline:
                killed = "timeout"
                break
            disk_due = now >= next_disk
            if disk_due:
                next_disk = now + DISK_POLL_S
            killed = _over_limit(worker, pid, rss_cap, scratch if disk_due else None, disk_cap)
            if killed:
                break
            left = min(deadline, next_disk, quiet_at) - now
            if worker.memory_watch == "rss":
                left = min(left, RSS_POLL_S)
            ready = {fd for fd, _ in poller.poll(left * 1000)}
            if worker.sock.fileno() in ready:
                raise PlatformGone  # the platform never writes while a job runs
            if read_end in ready:
                chunk = os.read(read_end, 1 << 16)
                if chunk:
                    payload = _append(payload, chunk, limit)
                elif payload is None or payload:  # every writer closed it: the report is in
                    return _ended_early(pid, payload, keep)
                else:
                    poller.unregister(read_end)
            if pidfd in ready:
                break
        status, child_cpu_s, payload = _reap(pid, killed, read_end, payload, limit, keep)
    finally:
        os.close(pidfd)
        os.close(read_end)
    return Ended(status, child_cpu_s, killed, None if payload is None else bytes(payload))


def _over_limit(
    worker: Worker, pid: int, rss_cap: int, scratch: Path | None, disk_cap: int | None
) -> str:
    """The limit the child is over ("memory" in RSS mode, "disk" or "files" when
    ``scratch`` is given to be measured), or ""."""
    if worker.memory_watch == "rss":
        with contextlib.suppress(OSError):
            if statm(pid)[1] > rss_cap:
                return "memory"
    if scratch is not None and disk_cap is not None:
        used, entries = disk_usage(scratch, MAX_SCRATCH_ENTRIES)
        if used > disk_cap:
            return "disk"
        if entries > MAX_SCRATCH_ENTRIES:
            return "files"
    return ""


def _ended_early(pid: int, payload: bytearray | None, keep: Callable[[], frozenset[int]]) -> Ended:
    """The report is in while the child (or what it left) may still run: kill its tree,
    charge the CPU /proc shows now, and leave the processes to be reaped later."""
    cpu_s, pids = kill_tree(pid)
    sweep(pid, keep() | frozenset(pids))
    report = None if payload is None else bytes(payload)
    return Ended(0, cpu_s, "", report, cpu_s, tuple(pids))


def _reap(
    pid: int,
    killed: str,
    read_end: int,
    payload: bytearray | None,
    limit: int,
    keep: Callable[[], frozenset[int]],
) -> tuple[int, float, bytearray | None]:
    """Kill and reap the child ``wait`` is done with, then what it left; drain the result
    pipe. Returns (wait status, the child's CPU seconds, the result bytes so far or None past
    ``limit``)."""
    # The child is running or a zombie, so its pid (= its group's id) cannot have
    # been reused yet: kill its group now, reap it, then whatever escaped the group.
    with contextlib.suppress(OSError):
        os.killpg(pid, signal.SIGKILL)
    if killed:
        os.kill(pid, signal.SIGKILL)  # in case it died before its setsid()
    _, status, usage = os.wait4(pid, 0)
    sweep(None, keep())
    # What the child wrote just before exiting; every writer is gone now.
    os.set_blocking(read_end, False)
    with contextlib.suppress(BlockingIOError):
        while chunk := os.read(read_end, 1 << 16):
            payload = _append(payload, chunk, limit)
    return status, usage.ru_utime + usage.ru_stime, payload


def _append(payload: bytearray | None, chunk: bytes, limit: int) -> bytearray | None:
    """Accumulate up to the size limit; past it, keep draining (so the writer is not
    blocked) but keep nothing."""
    if payload is None or len(payload) + len(chunk) > limit:
        return None
    payload += chunk
    return payload


def judge(worker: Worker, ended: Ended, limits: dict[str, Any]) -> Phase:
    """What one child came to, from how it ended and the report it wrote."""
    status, killed, payload = ended.status, ended.killed, ended.payload
    seconds = float(limits["seconds"])
    if killed == "timeout":
        return Phase("timeout", error=f"exceeded the time limit of {seconds:g} s")
    if killed == "memory":
        return Phase("memory", error=f"exceeded the memory limit of {limits['memory_mb']} MB")
    if killed == "disk":
        cap = limits["disk_bytes"] / MIB
        return Phase(
            "output-limit", error=f"wrote more than {cap:.0f} MB into its scratch directory"
        )
    if killed == "files":
        return Phase(
            "output-limit",
            error=f"created more than {MAX_SCRATCH_ENTRIES} files in its scratch directory",
        )
    code = os.waitstatus_to_exitcode(status)
    if code < 0:
        sig = -code
        name = signal_name(sig)
        if sig == signal.SIGXCPU or (
            sig == signal.SIGKILL and ended.child_cpu_s >= cpu_limit(seconds, worker.threads)
        ):
            return Phase("timeout", error=f"exceeded its CPU-time limit ({name})")
        if sig == signal.SIGXFSZ:
            return Phase(
                "output-limit",
                error=f"wrote past the file size limit of {limits['file_mb']} MB ({name})",
            )
        hint = " (possibly the out-of-memory killer)" if sig == signal.SIGKILL else ""
        return Phase("crashed", error=f"killed by {name}: {signal.strsignal(sig)}{hint}")
    if payload is None:
        return Phase("error", error=f"the result exceeds {worker.max_result_bytes} bytes")
    if not payload:
        return Phase("crashed", error=f"exited with code {code} before returning a result")
    try:
        # Every string in it made storable and clipped, here at the boundary: what comes back
        # is stored, shown to the agent and read by the environment's assess.
        report = clean_value(json.loads(payload))
    except (ValueError, RecursionError):
        return Phase("error", error="the sandbox returned malformed data (not one JSON object)")
    if not isinstance(report, dict):
        return Phase("error", error="the sandbox returned malformed data")
    if report.get("status") == "ok" and isinstance(report.get("raw"), dict):
        return Phase("ok", raw=report["raw"])
    if report.get("status") in ("error", "memory", "output-limit"):
        return Phase(report["status"], error=str(report.get("error", "")))
    return Phase("error", error="the sandbox returned malformed data")
