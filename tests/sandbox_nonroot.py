"""Run a Python command line as an unprivileged uid that keeps read access to all files
(CAP_DAC_READ_SEARCH, so the interpreter works even under /root): the platform's non-root
code paths, exercised on a machine where the tests run as root.

    python tests/sandbox_nonroot.py UID PYTHON-ARGS...      (as root)
"""

from __future__ import annotations

import os
import sys

from progressbench.sandbox.syscalls import (
    CAP_DAC_READ_SEARCH,
    PR_SET_KEEPCAPS,
    keep_only_capability,
    prctl,
)


def main(uid: int, args: list[str]) -> None:
    os.setgroups([])
    os.setresgid(uid, uid, uid)
    prctl(PR_SET_KEEPCAPS, 1)
    os.setresuid(uid, uid, uid)
    keep_only_capability(CAP_DAC_READ_SEARCH)
    os.chdir("/")
    os.execv(sys.executable, [sys.executable, *args])


if __name__ == "__main__":
    main(int(sys.argv[1]), sys.argv[2:])
