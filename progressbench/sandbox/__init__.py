"""Isolation for hostile candidate programs: the machinery of the ``local`` evaluator.

One evaluation under the ``local`` evaluator::

    platform --socketpair, length-prefixed JSON--> worker (python -P -m progressbench.sandbox.worker FD)
    worker: imported env.preload and the plugins once; idles between jobs; child subreaper;
            as root, its own network namespace (loopback only) and mount namespace (the
            platform user's home hidden, private size-capped /tmp, /var/tmp, /dev/shm)
    per job: fork -> child (own session, rlimits, scratch as cwd and HOME, unprivileged uid;
             the worker polls the scratch directory's size)
    child --pipe, JSON--> worker --socket, JSON--> platform

Nothing crosses a process boundary as pickle: whatever a candidate produces is hostile data.

Platform side: ``pool`` (the ``local`` evaluator's warm workers), ``handle`` (the platform's
end of one worker), ``environ`` (what variables a worker sees), ``uids`` (the candidates'
uids), ``doctor`` (what this machine allows). Worker side: ``worker`` (the process and its
loop), ``watch`` (one running child watched and judged), ``child`` (inside the forked
child). Shared: ``protocol``, ``syscalls``, ``filesystem``; ``loader`` loads a program as a
module inside the child.

A docstring only: the worker process imports this package first, so it stays light.
"""
