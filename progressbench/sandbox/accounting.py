"""What the kernel counts of a phase, whatever the candidate did: the CPU time of every process
it ran, the one the worker forked and everything started below it, by any route.

A process's CPU time reaches its parent's ``RUSAGE_CHILDREN`` when the parent reaps it. The
worker is a child subreaper, so a process that outlives its parent is re-parented to the
worker and reaped there (``watch.sweep``); the difference of ``children_cpu_s`` across a phase
is then the phase's whole CPU, which no code inside the phase can lower. An environment's
``assess`` finds it under ``raw[SANDBOX_KEY]["cpu_s"]`` (``contracts.environment``) and may
compare it with the CPU its harness accounted for (nanogpt's CPU clock: work in a process the
harness did not start is not training it timed).

The worker does not wait for a phase's processes to die once the child's report is in: it
kills them (``watch.kill_tree``), charges the phase the CPU the kernel counted for them, and
reaps them later (``Unreaped``), when what they then bring to ``RUSAGE_CHILDREN`` is taken
off again, so no phase is charged twice.

``adopt_orphans`` and ``end_children`` give the same accounting to a harness's own runner
outside the sandbox (nanogpt's ``local``).
"""

from __future__ import annotations

import os
import resource

from progressbench.sandbox.syscalls import PR_SET_CHILD_SUBREAPER, prctl
from progressbench.sandbox.watch import sweep


def children_cpu_s() -> float:
    """User plus system CPU seconds of every reaped descendant of this process."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def adopt_orphans() -> None:
    """Make this process the reaper of its descendants' orphans (so their time is counted)."""
    prctl(PR_SET_CHILD_SUBREAPER, 1)


def end_children() -> None:
    """SIGKILL and reap every child of this process, adopted orphans included."""
    sweep(None)


class Unreaped:
    """Processes killed at the end of a phase and left to finish dying (tearing down a
    torch-sized address space takes milliseconds nobody needs to wait for), and the CPU time
    their reaping has added to ``RUSAGE_CHILDREN`` though it was charged to their phase."""

    def __init__(self) -> None:
        self.pids: list[int] = []
        self.carried = 0.0

    def add(self, pids: tuple[int, ...]) -> None:
        self.pids += pids

    def collect(self) -> None:
        """Reap those that are dead. One whose parent is still dying is not this process's
        child yet (it is re-parented here once its parent is gone): it waits for a later call."""
        for pid in list(self.pids):
            try:
                done, _, usage = os.wait4(pid, os.WNOHANG)
            except ChildProcessError:
                continue
            if done:
                self.carried += usage.ru_utime + usage.ru_stime
                self.pids.remove(pid)

    def counted_s(self) -> float:
        """``children_cpu_s`` less what was charged to earlier phases: its difference across
        a phase is the CPU of the phase's reaped processes."""
        return children_cpu_s() - self.carried
