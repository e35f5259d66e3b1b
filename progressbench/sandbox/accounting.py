"""What the kernel counts of a phase, whatever the candidate did: the CPU time of every process
it ran, the one the worker forked and everything started below it, by any route.

A process's CPU time reaches its parent's ``RUSAGE_CHILDREN`` when the parent reaps it. The
worker is a child subreaper, so a process that outlives its parent is re-parented to the
worker and reaped there (``watch.sweep``); the difference of ``children_cpu_s`` across a phase
is then the phase's whole CPU, which no code inside the phase can lower. An environment's
``assess`` finds it under ``raw[SANDBOX_KEY]["cpu_s"]`` (``contracts.environment``) and may
compare it with the CPU its harness accounted for (nanogpt's CPU clock: work in a process the
harness did not start is not training it timed).

``adopt_orphans`` and ``end_children`` give the same accounting to a harness's own runner
outside the sandbox (nanogpt's ``local``).
"""

from __future__ import annotations

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
