"""Isolation for hostile candidate programs: the machinery of the ``local`` evaluator.

One evaluation under the ``local`` evaluator::

    platform --socketpair, length-prefixed JSON--> worker (python -P -m progressbench.sandbox.worker FD)
    worker: imported env.preload and the plugins once; idles between jobs; child subreaper;
            as root, its own network namespace (loopback only), IPC namespace and mount
            namespace (the platform user's home hidden, private size-capped noexec /tmp,
            /var/tmp, /dev/shm, every other mount read-only)
    per job: a scratch tmpfs sized to the disk limit (the kernel enforces it; without root
             the worker polls the directory's size); per phase: fork -> child (own session,
             own IPC namespace, rlimits, scratch as cwd and HOME, unprivileged uid)
    child --pipe, JSON--> worker --socket, JSON--> platform
    (every string in it made storable and clipped on the way: ``protocol.clean_value``)

Nothing crosses a process boundary as pickle: whatever a candidate produces is hostile data.

Platform side: ``pool`` (the ``local`` evaluator's warm workers), ``handle`` (the platform's
end of one worker), ``environ`` (what variables a worker sees), ``uids`` (the candidates'
uids), ``doctor`` (what this machine allows). Worker side: ``worker`` (the process and its
loop), ``watch`` (one running child watched and judged), ``child`` (inside the forked
child). Shared: ``protocol``, ``syscalls``, ``filesystem``; ``loader`` loads a program as a
module inside the child, and parses program text in the platform under one lock
(``parse_program``: static scans run in threads).

A docstring only: the worker process imports this package first, so it stays light.
"""
