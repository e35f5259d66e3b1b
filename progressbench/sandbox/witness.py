"""The witness channel: a record of a phase that the program cannot write.

Everything a harness returns passes through the candidate's process, so anything the harness
keeps there (a clock, its checkpoint records) is the candidate's to change. The evaluator
therefore opens, for every phase, an anonymous in-memory file (a memfd) and hands it to the
phase's child as descriptor ``WITNESS_FD``. A harness that needs a record the program cannot
forge forks its own witness process *before any program code runs* (``spawn_witness``), which
takes this descriptor from it: from then on only that process holds it. The
witness makes itself non-dumpable, so the program (same uid) can neither trace it nor open
its descriptors through ``/proc``. Once every process of the phase is gone, the evaluator
reads what was written (``read_witness``) and puts it under ``raw[SANDBOX_KEY]["witness"]``,
replacing anything the program put there; a program that kills its witness leaves no record,
which its environment treats as it sees fit (nanogpt: the run is invalid).
"""

from __future__ import annotations

import fcntl
import json
import os
import resource
import signal
import sys
import traceback
from collections.abc import Callable
from typing import Any

from progressbench.sandbox.syscalls import PR_SET_DUMPABLE, PR_SET_PDEATHSIG, prctl

WITNESS_FD = 4
NAME = "progressbench-witness"
# A record is small (a few hundred bytes per checkpoint); past this it is not read.
MAX_BYTES = 8 << 20


def open_witness() -> int:
    """A fresh, empty witness file for one phase (the evaluator's side)."""
    return os.memfd_create(NAME, os.MFD_CLOEXEC)


def install_witness(fd: int) -> None:
    """Put ``fd`` at ``WITNESS_FD`` in a phase's child (``fd`` itself is closed), whatever
    is there now."""
    if fd != WITNESS_FD:
        os.dup2(fd, WITNESS_FD, inheritable=False)
        os.close(fd)


def _take_witness() -> int | None:
    """The phase's witness descriptor, no longer at ``WITNESS_FD``, or None when this
    process has none (an evaluator that keeps no record)."""
    try:
        target = os.readlink(f"/proc/self/fd/{WITNESS_FD}")
    except OSError:
        return None
    if not target.startswith(f"/memfd:{NAME}"):
        return None
    fd = fcntl.fcntl(WITNESS_FD, fcntl.F_DUPFD_CLOEXEC, 64)
    os.close(WITNESS_FD)
    return fd


def spawn_witness(main: Callable[[int | None], None], keep: tuple[int, ...]) -> int:
    """Fork the phase's witness process and return its pid. Call it before any program code
    runs. The child keeps only stdin/stdout/stderr, ``keep`` and the witness descriptor
    (which ``main`` gets: None where the evaluator gave none), cannot be traced or have its
    descriptors opened by a process of the same uid, dies with this process, and exits when
    ``main`` returns. This process is left without the witness descriptor."""
    witness = _take_witness()
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid == 0:  # the child never leaves this block
        code = 0
        try:
            prctl(PR_SET_DUMPABLE, 0)
            prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
            low = 3
            for fd in sorted({*keep, *(() if witness is None else (witness,))}):
                os.closerange(low, fd)
                low = fd + 1
            os.closerange(low, resource.getrlimit(resource.RLIMIT_NOFILE)[0])
            main(witness)
        except BaseException:
            traceback.print_exc()
            code = 1
        finally:
            os._exit(code)
    if witness is not None:
        os.close(witness)
    return pid


def write_witness(fd: int, record: dict[str, Any]) -> None:
    """The witness's one write: its whole record, as JSON."""
    view = memoryview(json.dumps(record).encode())
    while view:
        view = view[os.write(fd, view) :]


def read_witness(fd: int) -> dict[str, Any] | None:
    """What the phase's witness wrote (the evaluator's side, after the phase): its record,
    ``{"error": ...}`` for something that is not one, or None when nothing was written."""
    size = os.fstat(fd).st_size
    if size == 0:
        return None
    if size > MAX_BYTES:
        return {"error": f"the witness wrote {size} bytes (more than {MAX_BYTES})"}
    data = os.pread(fd, size, 0)
    try:
        record = json.loads(data)
    except ValueError:
        return {"error": "the witness's record is not JSON"}
    return record if isinstance(record, dict) else {"error": "the witness's record is no object"}
