"""The warm worker: ``python -P -m progressbench.sandbox.worker FD``, started by ``sandbox.WarmWorker``.

It imports the plugins, the environment and its ``preload`` modules once, then forks a fresh
child per candidate and never runs any of that code itself (a fork after ``import torch`` is
only safe while torch has started no thread pools). Protocol on the socket FD, one
length-prefixed JSON object per message (``sandbox.send_message``):

    platform -> init {env, variant, plugin_modules, uid, gid, isolate_network, private_fs,
                      shm_mb, threads, memory_watch, max_result_bytes}
    worker   -> ready {pid, network_isolated, read_all, hidden, private_tmp}  |  failed {error}
    platform -> job {program, mode, seed, limits, options}
    worker   -> started {pgid}  (each child)  ...  done {outcome}

End of stream from the platform, at any moment: kill the candidate, clean up, exit.
"""

from __future__ import annotations

import contextlib
import errno
import faulthandler
import gc
import importlib
import json
import math
import os
import resource
import select
import shutil
import signal
import socket
import sys
import tempfile
import time
import traceback
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, NoReturn

from progressbench import plugins
from progressbench.contracts.environment import SandboxContext
from progressbench.sandbox.core import (
    CAP_DAC_READ_SEARCH,
    CLONE_NEWNET,
    PR_SET_CHILD_SUBREAPER,
    PR_SET_DUMPABLE,
    PR_SET_KEEPCAPS,
    PR_SET_NO_NEW_PRIVS,
    PR_SET_PDEATHSIG,
    clear_private_tmp,
    clip,
    disk_usage,
    import_paths,
    keep_only_capability,
    loopback_up,
    prctl,
    private_filesystem,
    read_tail,
    recv_message,
    remove_tree,
    send_message,
    signal_name,
    uid_can_read,
    unshare,
)

MIB = 1 << 20
RESULT_FD = 3
# How often the RSS watch (GPU jobs, where an address-space limit would break CUDA) looks.
RSS_POLL_S = 0.05
# How often the scratch directory's size is checked against the job's disk limit, and the
# most entries a candidate may create there (each poll walks them all).
DISK_POLL_S = 0.5
MAX_SCRATCH_ENTRIES = 100_000
TRACEBACK_LINES = 20
PAGE = os.sysconf("SC_PAGE_SIZE")


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


def _statm(pid: int | str) -> tuple[int, int]:
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


def sweep(pgid: int | None) -> None:
    """SIGKILL the candidate's process group and every process left below this worker.
    Orphans re-parent to the worker (a child subreaper), so each round kills what is there
    and the next finds their orphaned children; RLIMIT_NPROC bounds the rounds."""
    if pgid is not None:
        with contextlib.suppress(OSError):
            os.killpg(pgid, signal.SIGKILL)
    while kids := _children():
        for pid in kids:
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
        for pid in kids:
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, 0)


def _describe(exc: BaseException) -> str:
    try:
        lines = "".join(traceback.format_exception(exc)).rstrip().splitlines()
        return "\n".join(lines[-TRACEBACK_LINES:])
    except Exception:  # a hostile exception whose __str__ or __repr__ raises
        return f"{type(exc).__name__} (could not be formatted)"


def _failure(exc: BaseException) -> tuple[str, str]:
    """(error text, status) for an exception escaping the harness."""
    text = _describe(exc)
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


class Worker:
    def __init__(self, sock: socket.socket, init: dict[str, Any]):
        self.sock = sock
        self.pid = os.getpid()
        self.variant: str = init["variant"]
        self.uid: int | None = init.get("uid")
        self.gid: int | None = init.get("gid")
        self.threads = max(1, int(init.get("threads", 1)))
        self.memory_watch: str = init.get("memory_watch", "rlimit")
        self.max_result_bytes = int(init["max_result_bytes"])
        # The evaluator's private directory (our cwd): job directories go there.
        self.jobs_dir = Path.cwd()
        plugins.load_plugins()
        plugins.register_modules(init.get("plugin_modules", []))
        self.env = plugins.get_environment(init["env"])
        for name in self.env.preload:
            importlib.import_module(name)
        prctl(PR_SET_CHILD_SUBREAPER, 1)
        # A same-uid candidate must not ptrace the worker and forge the next results.
        prctl(PR_SET_DUMPABLE, 0)
        self.network_isolated = False
        if init.get("isolate_network") and os.geteuid() == 0:
            try:
                unshare(CLONE_NEWNET)
                loopback_up()
                self.network_isolated = True
            except OSError as exc:
                print(f"no network namespace: {exc}", file=sys.stderr, flush=True)
        self.filesystem: dict[str, Any] = {"hidden": [], "private_tmp": False}
        needed = self._needed_paths()
        if init.get("private_fs") and self.uid is not None and os.geteuid() == 0:
            try:
                self.filesystem = private_filesystem(needed, self.jobs_dir, int(init["shm_mb"]))
            except OSError as exc:
                print(f"no private file system: {exc}", file=sys.stderr, flush=True)
        # Candidates keep read access everywhere (CAP_DAC_READ_SEARCH) only when their uid
        # could not otherwise run the interpreter (e.g. one under a 0700 /root, not hidden).
        self.read_all = self.uid is not None and not uid_can_read(self.uid, tuple(needed))
        # Everything imported so far is shared with every child: keep the collector from
        # touching (and so copying) those pages after each fork.
        gc.freeze()

    def _needed_paths(self) -> list[str]:
        """What candidates must be able to read: the interpreter, every imported package
        (lazy imports happen in the children) and the data the environment declares."""
        paths = {sys.prefix, sys.base_prefix, sys.exec_prefix, *import_paths()}
        for name, module in list(sys.modules.items()):
            origin = getattr(module, "__file__", None)
            if "." not in name and isinstance(origin, str):
                paths.add(os.path.dirname(origin))
        paths.update(str(p) for p in self.env.readable_paths(self.variant))
        return sorted(p for p in paths if p and os.path.exists(p))

    # --- the loop ----------------------------------------------------------------------
    def serve(self) -> None:
        while True:
            try:
                message = recv_message(self.sock)
            except OSError:  # the platform died without hanging up
                return
            if message is None:
                return
            if message.get("op") != "job":
                continue
            try:
                outcome = self.run_job(message)
            except PlatformGone:
                return
            except Exception as exc:  # a fault of the sandbox itself, not of the candidate
                outcome = {"status": "error", "error": f"sandbox failure: {_describe(exc)}"}
            try:
                send_message(self.sock, {"op": "done", "outcome": outcome})
            except OSError:  # the platform is gone: nobody to answer
                return

    def run_job(self, job: dict[str, Any]) -> dict[str, Any]:
        limits = job["limits"]
        job_dir = Path(tempfile.mkdtemp(prefix="job-", dir=self.jobs_dir))
        try:
            # Traversable, not writable, by the candidate: only scratch is its own.
            os.chmod(job_dir, 0o711)
            program = job_dir / "program.py"
            program.write_text(job["program"], encoding="utf-8")
            os.chmod(program, 0o444)
            scratch = job_dir / "scratch"
            scratch.mkdir(mode=0o700)
            if self.uid is not None and self.gid is not None:
                os.chown(scratch, self.uid, self.gid)
            mode = job["mode"] if job["mode"] in ("smoke", "call") else "full"
            first = self.phase(mode, job, job_dir, program, scratch, None)
            outcome = asdict(first)
            outcome["candidate_s"] = outcome.pop("seconds")
            if mode == "full" and first.status == "ok" and self.env.verifies:
                second = self.phase("verify", job, job_dir, program, scratch, first.raw)
                outcome["candidate_s"] += second.seconds
                for stream in ("stdout", "stderr"):
                    extra = getattr(second, stream)
                    if extra:
                        joined = f"{outcome[stream]}\n--- verify ---\n{extra}"
                        outcome[stream] = clip(joined, int(limits["output_chars"]))
                if second.status == "ok":
                    outcome["verified"] = second.raw
                else:
                    outcome["status"] = second.status
                    outcome["error"] = f"verification failed: {second.error}"
            return outcome
        finally:
            sweep(None)
            remove_tree(job_dir)
            clear_private_tmp(self.jobs_dir)

    # --- one child -----------------------------------------------------------------------
    def phase(
        self,
        mode: str,
        job: dict[str, Any],
        job_dir: Path,
        program: Path,
        scratch: Path,
        raw: dict[str, Any] | None,
    ) -> Phase:
        # Without a declared limit, half of the free space: the candidate may use the disk,
        # not fill it.
        disk_mb = job["limits"].get("disk_mb")
        disk = int(disk_mb) * MIB if disk_mb else shutil.disk_usage(scratch).free // 2
        limits = {**job["limits"], "disk_bytes": disk}
        seconds = float(limits["seconds"])
        memory = int(limits["memory_mb"]) * MIB
        vm, rss = _statm("self")
        out_path, err_path = job_dir / f"{mode}.stdout", job_dir / f"{mode}.stderr"
        read_end, write_end = os.pipe()
        with open(out_path, "wb") as out, open(err_path, "wb") as err:
            sys.stdout.flush()
            sys.stderr.flush()
            started = time.perf_counter()
            try:
                pid = os.fork()
            except OSError:
                os.close(read_end)
                os.close(write_end)
                raise
            if pid == 0:
                self.child(mode, job, program, scratch, raw, out.fileno(), err.fileno(),
                           write_end, vm + memory)  # fmt: skip
        os.close(write_end)
        try:
            try:
                send_message(self.sock, {"op": "started", "pgid": pid})
            except OSError as exc:
                raise PlatformGone from exc
            status, usage, killed, payload = self.wait(
                pid, read_end, time.monotonic() + seconds, rss + memory, scratch, disk
            )
        except BaseException:
            sweep(pid)
            raise
        elapsed = time.perf_counter() - started
        chars = int(limits["output_chars"])
        result = self.judge(status, usage, killed, payload, limits)
        result.stdout = read_tail(out_path, chars)
        result.stderr = read_tail(err_path, chars)
        result.seconds = elapsed
        return result

    def wait(
        self, pid: int, read_end: int, deadline: float, rss_cap: int, scratch: Path, disk_cap: int
    ) -> tuple[int, resource.struct_rusage, str, bytes | None]:
        """Collect the child's result while watching the clock, its memory (RSS mode), the
        size of its scratch directory and the platform. Returns (wait status, rusage, why we
        killed it or "", the result bytes or None when they exceed the limit); leaves no
        process of the candidate behind."""
        pidfd = os.pidfd_open(pid)
        poller = select.poll()
        for fd in (pidfd, read_end, self.sock.fileno()):
            poller.register(fd, select.POLLIN)
        payload: bytearray | None = bytearray()
        killed = ""
        next_disk = time.monotonic() + DISK_POLL_S
        try:
            while True:
                now = time.monotonic()
                left = deadline - now
                if left <= 0:
                    killed = "timeout"
                    break
                if now >= next_disk:
                    used, entries = disk_usage(scratch, MAX_SCRATCH_ENTRIES)
                    if used > disk_cap or entries > MAX_SCRATCH_ENTRIES:
                        killed = "disk" if used > disk_cap else "files"
                        break
                    next_disk = now + DISK_POLL_S
                left = min(left, next_disk - now)
                if self.memory_watch == "rss":
                    left = min(left, RSS_POLL_S)
                ready = {fd for fd, _ in poller.poll(left * 1000)}
                if self.sock.fileno() in ready:
                    raise PlatformGone  # the platform never writes while a job runs
                if read_end in ready:
                    chunk = os.read(read_end, 1 << 16)
                    if chunk:
                        payload = self._append(payload, chunk)
                    else:
                        poller.unregister(read_end)
                if pidfd in ready:
                    break
                if self.memory_watch == "rss":
                    with contextlib.suppress(OSError):
                        if _statm(pid)[1] > rss_cap:
                            killed = "memory"
                            break
            # The child is running or a zombie, so its pid (= its group's id) cannot have
            # been reused yet: kill its group now, reap it, then whatever escaped the group.
            with contextlib.suppress(OSError):
                os.killpg(pid, signal.SIGKILL)
            if killed:
                os.kill(pid, signal.SIGKILL)  # in case it died before its setsid()
            _, status, usage = os.wait4(pid, 0)
            sweep(None)
            # What the child wrote just before exiting; every writer is gone now.
            os.set_blocking(read_end, False)
            with contextlib.suppress(BlockingIOError):
                while chunk := os.read(read_end, 1 << 16):
                    payload = self._append(payload, chunk)
        finally:
            os.close(pidfd)
            os.close(read_end)
        return status, usage, killed, None if payload is None else bytes(payload)

    def _append(self, payload: bytearray | None, chunk: bytes) -> bytearray | None:
        """Accumulate up to the size limit; past it, keep draining (so the writer is not
        blocked) but keep nothing."""
        if payload is None or len(payload) + len(chunk) > self.max_result_bytes:
            return None
        payload += chunk
        return payload

    def judge(
        self,
        status: int,
        usage: resource.struct_rusage,
        killed: str,
        payload: bytes | None,
        limits: dict[str, Any],
    ) -> Phase:
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
                sig == signal.SIGKILL
                and usage.ru_utime + usage.ru_stime >= self._cpu_limit(seconds)
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
            return Phase("error", error=f"the result exceeds {self.max_result_bytes} bytes")
        if not payload:
            return Phase("crashed", error=f"exited with code {code} before returning a result")
        try:
            report = json.loads(payload)
        except (ValueError, RecursionError):
            return Phase("error", error="the sandbox returned malformed data (not one JSON object)")
        if not isinstance(report, dict):
            return Phase("error", error="the sandbox returned malformed data")
        if report.get("status") == "ok" and isinstance(report.get("raw"), dict):
            return Phase("ok", raw=report["raw"])
        if report.get("status") in ("error", "memory", "output-limit"):
            return Phase(report["status"], error=str(report.get("error", "")))
        return Phase("error", error="the sandbox returned malformed data")

    def _cpu_limit(self, seconds: float) -> int:
        # Every thread may burn CPU for the whole wall-time limit; the clock is the real
        # limit, this one only catches a candidate the clock somehow misses.
        return math.ceil(seconds * self.threads) + 1

    # --- inside the child ----------------------------------------------------------------
    def child(
        self,
        mode: str,
        job: dict[str, Any],
        program: Path,
        scratch: Path,
        raw: dict[str, Any] | None,
        out: int,
        err: int,
        result_fd: int,
        vm_cap: int,
    ) -> NoReturn:
        """Runs in the forked child; never returns into the worker's loop."""
        try:
            try:
                self.enter_sandbox(job["limits"], scratch, out, err, result_fd, vm_cap)
            except BaseException as exc:
                self.report(self.failure_report(f"sandbox set-up failed: {exc!r}"))
            me = os.getpid()
            try:
                ctx = SandboxContext(
                    variant=self.variant,
                    mode=mode,
                    seed=int(job["seed"]),
                    scratch=scratch,
                    time_limit=float(job["limits"]["seconds"]),
                    options=job["options"],
                )
                if mode == "smoke":
                    result = self.env.smoke(program, ctx)
                elif mode == "call":
                    result = _entry(str(ctx.options["entry"]))(program, ctx)
                elif mode == "verify":
                    result = self.env.verify(program, raw or {}, ctx)
                else:
                    result = self.env.run(program, ctx)
                report = self.encode(result)
            except BaseException as exc:
                report = self.failure_report(*_failure(exc))
            # A process the candidate forked inside the harness came back out of it: only
            # the child itself reports.
            if os.getpid() != me:
                os._exit(0)
            self.report(report)
        finally:
            os._exit(70)

    def encode(self, result: Any) -> bytes:
        """The child's report of the harness's result: JSON, checked for size."""
        if not isinstance(result, dict):
            kind = type(result).__name__
            return self.failure_report(f"the harness returned {kind}, not a dict")
        try:
            body = json.dumps(result)
        except (TypeError, ValueError, RecursionError) as exc:
            return self.failure_report(f"the result is not JSON-serialisable: {exc}")
        if len(body) > self.max_result_bytes - 100:
            return self.failure_report(
                f"the result ({len(body)} bytes) exceeds the limit of {self.max_result_bytes}"
            )
        return ('{"status": "ok", "raw": ' + body + "}").encode()

    @staticmethod
    def failure_report(error: str, status: str = "error") -> bytes:
        return json.dumps({"status": status, "error": error}).encode()

    def report(self, data: bytes) -> NoReturn:
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(Exception):
                stream.flush()
        with contextlib.suppress(OSError):
            view = memoryview(data)
            while view:
                view = view[os.write(RESULT_FD, view) :]
        os._exit(0)

    def enter_sandbox(
        self, limits: dict[str, Any], scratch: Path, out: int, err: int, result_fd: int, vm_cap: int
    ) -> None:
        os.setsid()
        # File descriptors: 0 /dev/null, 1 and 2 the capture files, 3 the result pipe (not
        # inherited across exec); nothing else, above all not the platform's socket.
        devnull = os.open(os.devnull, os.O_RDONLY)
        for fd, target in ((devnull, 0), (out, 1), (err, 2), (result_fd, RESULT_FD)):
            if fd != target:  # os.pipe() descriptors start non-inheritable
                os.dup2(fd, target, inheritable=target != RESULT_FD)
        os.closerange(RESULT_FD + 1, resource.getrlimit(resource.RLIMIT_NOFILE)[0])
        # Python ignores SIGXFSZ (writes then fail with EFBIG, which a candidate can swallow
        # and retry forever); the default action ends it the moment it passes the limit.
        signal.signal(signal.SIGXFSZ, signal.SIG_DFL)
        os.chdir(scratch)
        threads = str(self.threads)
        os.environ.update(
            HOME=str(scratch), TMPDIR=str(scratch), PWD=str(scratch),
            OMP_NUM_THREADS=threads, MKL_NUM_THREADS=threads, OPENBLAS_NUM_THREADS=threads,
        )  # fmt: skip
        tempfile.tempdir = str(scratch)
        self.set_limits(limits, vm_cap)
        if self.uid is not None and self.gid is not None:
            os.setgroups([])
            os.setresgid(self.gid, self.gid, self.gid)
            if self.read_all:
                prctl(PR_SET_KEEPCAPS, 1)
            os.setresuid(self.uid, self.uid, self.uid)
            if self.read_all:
                keep_only_capability(CAP_DAC_READ_SEARCH)
        # No setuid binary hands privileges back.
        prctl(PR_SET_NO_NEW_PRIVS, 1)
        # After the uid change, which clears it; then make sure the worker did not die first.
        prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
        if os.getppid() != self.pid:
            os._exit(71)
        torch = sys.modules.get("torch")
        if torch is not None:
            torch.set_num_threads(self.threads)
        faulthandler.enable(all_threads=True)
        # Lines reach the capture file as printed, so a crash loses none of them.
        with contextlib.suppress(AttributeError, ValueError):
            sys.stdout.reconfigure(line_buffering=True)  # type: ignore[union-attr]

    def set_limits(self, limits: dict[str, Any], vm_cap: int) -> None:
        def cap(kind: int, value: int) -> None:
            resource.setrlimit(kind, (value, value))

        cap(resource.RLIMIT_CORE, 0)
        cpu = self._cpu_limit(float(limits["seconds"]))
        # Soft: SIGXCPU; hard, one second later: SIGKILL even if SIGXCPU is handled.
        resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 1))
        cap(resource.RLIMIT_FSIZE, int(limits["file_mb"]) * MIB)
        processes = int(limits["processes"])
        if self.uid is not None:
            cap(resource.RLIMIT_NPROC, processes)
        elif os.geteuid() != 0:  # the count covers every task of the user, not just ours
            cap(resource.RLIMIT_NPROC, _tasks_of(os.geteuid()) + processes)
        if self.memory_watch == "rlimit":
            # Relative to what the warm worker had already mapped (torch alone maps ~0.6 GB).
            cap(resource.RLIMIT_AS, vm_cap)


def main(argv: list[str]) -> int:
    sock = socket.socket(fileno=int(argv[0]))
    init = recv_message(sock)
    if init is None:
        return 0
    try:
        worker = Worker(sock, init)
    except BaseException as exc:  # reported: the platform explains it to the user
        send_message(sock, {"op": "failed", "error": _describe(exc)})
        return 1
    send_message(
        sock,
        {
            "op": "ready",
            "pid": os.getpid(),
            "network_isolated": worker.network_isolated,
            "read_all": worker.read_all,
            **worker.filesystem,
        },
    )
    worker.serve()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
