"""What runs inside a forked child, from ``os.fork()`` to ``os._exit``. The worker forks each
child ahead of its job (``spare_main``); it prepares what does not depend on the job (a
session, a fresh IPC namespace, threads) and waits, as root, for its assignment; then it
enters the rest of the sandbox (file descriptors, scratch as cwd and HOME, rlimits, the uid
drop, no-new-privs, the parent-death signal), calls the environment's harness, and reports
the result as JSON on the result pipe, which it closes before exiting.

Apart from the worker's loop because this code runs next to the candidate: it must never
return into the worker's loop, and the order of its steps is part of the isolation (each
step says why it comes where it does). The worker imports this module before it forks.
"""

from __future__ import annotations

import contextlib
import errno
import faulthandler
import fcntl
import importlib
import json
import math
import os
import resource
import signal
import sys
import tempfile
import traceback
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

from progressbench.contracts.environment import SandboxContext
from progressbench.sandbox.filesystem import MAX_FILES
from progressbench.sandbox.loader import import_folder
from progressbench.sandbox.protocol import MAX_TEXT_CHARS, clip
from progressbench.sandbox.syscalls import (
    CAP_DAC_READ_SEARCH,
    CLONE_NEWIPC,
    PR_SET_KEEPCAPS,
    PR_SET_NO_NEW_PRIVS,
    PR_SET_PDEATHSIG,
    keep_only_capability,
    prctl,
    unshare,
)
from progressbench.sandbox.witness import WITNESS_FD

if TYPE_CHECKING:
    from progressbench.sandbox.worker import Worker

MIB = 1 << 20
RESULT_FD = 3
TRACEBACK_LINES = 20


def describe(exc: BaseException) -> str:
    try:
        lines = "".join(traceback.format_exception(exc)).rstrip().splitlines()
        return "\n".join(lines[-TRACEBACK_LINES:])
    except Exception:  # a hostile exception whose __str__ or __repr__ raises
        return f"{type(exc).__name__} (could not be formatted)"


def _scratch_full(scratch: Path, limits: dict[str, Any]) -> str:
    """Which limit of the scratch directory's tmpfs is (all but) used up, as a sentence, or
    "" when neither is."""
    try:
        st = os.statvfs(scratch)
    except OSError:
        return ""
    if st.f_favail == 0:
        return f"created more than {MAX_FILES} files in its scratch directory"
    if st.f_bavail * st.f_frsize < MIB:
        return f"wrote more than {int(limits['disk_bytes']) // MIB} MB into its scratch directory"
    return ""


def _failure(exc: BaseException, scratch: Path, limits: dict[str, Any]) -> tuple[str, str]:
    """(error text, status) for an exception escaping the harness."""
    text = describe(exc)
    if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
        full = _scratch_full(scratch, limits)
        if full:
            return f"{full} (the kernel refused the write):\n{text}", "output-limit"
    status = "error"
    last = text.rsplit("\n", 1)[-1].lower()
    if (
        isinstance(exc, MemoryError)
        or type(exc).__name__ == "OutOfMemoryError"  # torch.cuda
        or "can't allocate memory" in last
        or "out of memory" in last
    ):
        status = "memory"
    elif isinstance(exc, OSError) and exc.errno == errno.EFBIG:
        status = "output-limit"
    return text, status


def _entry(spec: str) -> Any:
    """The harness function a ``call`` job names ("module:function"); the platform chose it,
    the candidate cannot."""
    module, _, name = spec.partition(":")
    return getattr(importlib.import_module(module), name)


def _tasks_of(uid: int) -> int:
    """Tasks (threads) running as ``uid``: what RLIMIT_NPROC counts."""
    total = 0
    for name in os.listdir("/proc"):
        if name.isdigit():
            with contextlib.suppress(OSError, ValueError, IndexError):
                with open(f"/proc/{name}/status") as f:
                    fields = dict(line.split(":", 1) for line in f if ":" in line)
                if int(fields["Uid"].split()[0]) == uid:
                    total += int(fields["Threads"])
    return total


def cpu_limit(seconds: float, threads: int) -> int:
    # Every thread may burn CPU for the whole wall-time limit; the clock is the real
    # limit, this one only catches a candidate the clock somehow misses.
    return math.ceil(seconds * threads) + 1


def child_main(
    worker: Worker,
    mode: str,
    job: dict[str, Any],
    program: Path,
    scratch: Path,
    raw: dict[str, Any] | None,
    out: int,
    err: int,
    result_fd: int,
    witness: int,
    vm_cap: int,
    failed: BaseException | None,
) -> NoReturn:
    """Runs in the child, once ``spare_main`` has its job (``failed``: what went wrong in
    ``prepare``); never returns into the worker's loop."""
    try:
        try:
            if failed is not None:
                raise failed
            enter_sandbox(worker, job["limits"], scratch, (out, err, result_fd, witness), vm_cap)
        except BaseException as exc:
            write_report(failure_report(f"sandbox set-up failed: {exc!r}"))
        me = os.getpid()
        folder = import_folder(program)
        if folder is not None:
            # Last on the path: a file of the program can never stand in for a module the
            # harness imports (`run --program` refuses names that installed modules have).
            sys.path.append(str(folder))
        try:
            ctx = SandboxContext(
                variant=worker.variant,
                phase=mode,
                seed=int(job["seed"]),
                scratch=scratch,
                time_limit=float(job["limits"]["seconds"]),
                options=job["options"],
            )
            if mode == "smoke":
                result = worker.env.smoke(program, ctx)
            elif mode == "call":
                result = _entry(str(ctx.options["entry"]))(program, ctx)
            elif mode == "verify":
                result = worker.env.verify(program, raw or {}, ctx)
            else:
                result = worker.env.run(program, ctx)
            report = encode(result, worker.max_result_bytes)
        except BaseException as exc:
            report = failure_report(*_failure(exc, scratch, job["limits"]))
        # A process the candidate forked inside the harness came back out of it: only
        # the child itself reports.
        if os.getpid() != me:
            os._exit(0)
        write_report(report)
    finally:
        os._exit(70)


def spare_main(worker: Worker, assignment: int, result_fd: int, witness: int) -> NoReturn:
    """A child forked ahead of its job (so that no candidate waits for a fork): it keeps only
    its two pipes and its witness file (``witness``), waits for its assignment (JSON: the arguments of ``child_main``), then
    becomes that job's child. End of file without one: the worker is done with it."""
    try:
        prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
        if os.getppid() != worker.pid:
            os._exit(0)
        # What the worker held when it forked this (its socket, the running phase's pipes).
        for low, high in _gaps(
            (assignment, result_fd, witness), resource.getrlimit(resource.RLIMIT_NOFILE)[0]
        ):
            os.closerange(low, high)
        failed: BaseException | None = None
        try:
            prepare(worker)
        except BaseException as exc:  # reported once it has its job and its result pipe
            failed = exc
        chunks = []
        while chunk := os.read(assignment, 1 << 16):
            chunks.append(chunk)
        os.close(assignment)
        if not chunks:
            os._exit(0)
        task = json.loads(b"".join(chunks))
        flags = os.O_WRONLY | os.O_TRUNC
        out, err = os.open(task["stdout"], flags), os.open(task["stderr"], flags)
        child_main(worker, task["mode"], task["job"], Path(task["program"]),
                   Path(task["scratch"]), task["raw"], out, err, result_fd, witness,
                   int(task["vm_cap"]), failed)  # fmt: skip
    finally:
        os._exit(70)


def _gaps(keep: tuple[int, ...], limit: int) -> list[tuple[int, int]]:
    """The ranges of descriptors from 3 to ``limit`` that are not in ``keep``."""
    ranges, low = [], 3
    for fd in sorted(keep):
        ranges.append((low, fd))
        low = fd + 1
    return [*ranges, (low, limit)]


def encode(result: Any, max_result_bytes: int) -> bytes:
    """The child's report of the harness's result: JSON, checked for size."""
    if not isinstance(result, dict):
        kind = type(result).__name__
        return failure_report(f"the harness returned {kind}, not a dict")
    try:
        body = json.dumps(result)
    except (TypeError, ValueError, RecursionError) as exc:
        return failure_report(f"the result is not JSON-serialisable: {exc}")
    if len(body) > max_result_bytes - 100:
        return failure_report(
            f"the result ({len(body)} bytes) exceeds the limit of {max_result_bytes}"
        )
    return ('{"status": "ok", "raw": ' + body + "}").encode()


def failure_report(error: str, status: str = "error") -> bytes:
    # Clipped here too, so that a huge message does not even cross the pipe.
    return json.dumps({"status": status, "error": clip(error, MAX_TEXT_CHARS)}).encode()


def write_report(data: bytes) -> NoReturn:
    """Write ``data`` to the result pipe and exit: the child's one way back."""
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    with contextlib.suppress(OSError):
        view = memoryview(data)
        while view:
            view = view[os.write(RESULT_FD, view) :]
        # Closed before exiting: the worker has the whole report now, not once this
        # address space is torn down.
        os.close(RESULT_FD)
    os._exit(0)


def prepare(worker: Worker) -> None:
    """What a child sets up before it knows its job (so that no job waits for it), still as
    root: nothing here depends on the job, and nothing a candidate can reach (its uid is
    not yet this process's)."""
    os.setsid()
    # Python ignores SIGXFSZ (writes then fail with EFBIG, which a candidate can swallow
    # and retry forever); the default action ends it the moment it passes the limit.
    signal.signal(signal.SIGXFSZ, signal.SIG_DFL)
    threads = str(worker.threads)
    os.environ.update(
        OMP_NUM_THREADS=threads, MKL_NUM_THREADS=threads, OPENBLAS_NUM_THREADS=threads
    )
    # The job directory is the worker's, not the candidate's: importing the program must not
    # even try to write its bytecode there (a harness may refuse that write as tampering).
    sys.dont_write_bytecode = True
    if worker.ipc_namespace:
        # Its own SysV IPC (and POSIX message queues), gone with its last process: one phase
        # cannot leave shared memory to the next, nor to another candidate.
        unshare(CLONE_NEWIPC)
    torch = sys.modules.get("torch")
    if torch is not None:
        torch.set_num_threads(worker.threads)
    faulthandler.enable(all_threads=True)


def enter_sandbox(
    worker: Worker,
    limits: dict[str, Any],
    scratch: Path,
    files: tuple[int, int, int, int],
    vm_cap: int,
) -> None:
    """The job's part of the sandbox, after ``prepare``: descriptors (``files``: the
    capture files, the result pipe, the witness file), scratch, limits, and the uid drop
    last of all."""
    # File descriptors: 0 /dev/null, 1 and 2 the capture files, 3 the result pipe and 4 the
    # witness file (neither inherited across exec); nothing else, above all not the
    # platform's socket. Each is first copied above the targets, so no move overwrites
    # another's source.
    sources = [os.open(os.devnull, os.O_RDONLY), *files]
    high = [fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 16) for fd in sources]
    for target, fd in enumerate(high):
        os.dup2(fd, target, inheritable=target < RESULT_FD)
    os.closerange(WITNESS_FD + 1, resource.getrlimit(resource.RLIMIT_NOFILE)[0])
    os.chdir(scratch)
    os.environ.update(HOME=str(scratch), TMPDIR=str(scratch), PWD=str(scratch))
    tempfile.tempdir = str(scratch)
    set_limits(worker, limits, vm_cap)
    if worker.uid is not None and worker.gid is not None:
        os.setgroups(worker.groups)  # none, or those owning the GPU's device nodes
        os.setresgid(worker.gid, worker.gid, worker.gid)
        if worker.read_all:
            prctl(PR_SET_KEEPCAPS, 1)
        os.setresuid(worker.uid, worker.uid, worker.uid)
        if worker.read_all:
            keep_only_capability(CAP_DAC_READ_SEARCH)
    # No setuid binary hands privileges back.
    prctl(PR_SET_NO_NEW_PRIVS, 1)
    # After the uid change, which clears it; then make sure the worker did not die first.
    prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != worker.pid:
        os._exit(71)
    # Lines reach the capture file as printed, so a crash loses none of them.
    with contextlib.suppress(AttributeError, ValueError):
        sys.stdout.reconfigure(line_buffering=True)  # type: ignore[union-attr]


def set_limits(worker: Worker, limits: dict[str, Any], vm_cap: int) -> None:
    def cap(kind: int, value: int) -> None:
        resource.setrlimit(kind, (value, value))

    cap(resource.RLIMIT_CORE, 0)
    cpu = cpu_limit(float(limits["seconds"]), worker.threads)
    # Soft: SIGXCPU; hard, one second later: SIGKILL even if SIGXCPU is handled.
    resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 1))
    cap(resource.RLIMIT_FSIZE, int(limits["file_mb"]) * MIB)
    processes = int(limits["processes"])
    if worker.uid is not None:
        cap(resource.RLIMIT_NPROC, processes)
    elif os.geteuid() != 0:  # the count covers every task of the user, not just ours
        cap(resource.RLIMIT_NPROC, _tasks_of(os.geteuid()) + processes)
    if worker.memory_watch == "rlimit":
        # Relative to what the warm worker had already mapped (torch alone maps ~0.6 GB).
        cap(resource.RLIMIT_AS, vm_cap)
