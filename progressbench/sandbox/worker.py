"""The warm worker: ``python -P -m progressbench.sandbox.worker FD``, started by
``progressbench.sandbox.handle.WarmWorker``.

It imports the plugins, the environment and its ``preload`` modules once, then forks a fresh
child per candidate and never runs any of that code itself (a fork after ``import torch`` is
only safe while torch has started no thread pools). Protocol on the socket FD, one
length-prefixed JSON object per message (``progressbench.sandbox.protocol``):

    platform -> init {env, variant, plugin_modules, uid, gid, isolate_network, private_fs,
                      shm_mb, threads, memory_watch, max_result_bytes, noexec_scratch, groups,
                      readable_paths}
    worker   -> ready {pid, network_isolated, ipc_namespace, read_all, scratch_tmpfs,
                       hidden, private_tmp, not_read_only}  |  failed {error}
    platform -> job {program, phase, seed, limits, options}
    worker   -> started {pgid}  (each child)  ...  done {outcome}

End of stream from the platform, at any moment: kill the candidate, clean up, exit.

This module holds the worker's set-up, its loop and the job directory of each job; the
forked child's side is ``progressbench.sandbox.child``, the watch over a running child
``progressbench.sandbox.watch``. Nothing imports this module: run as ``__main__``, a second
import would be a second copy of it.
"""

from __future__ import annotations

import gc
import importlib
import json
import os
import shutil
import socket
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from progressbench import plugins
from progressbench.contracts.environment import SANDBOX_KEY
from progressbench.sandbox.accounting import Unreaped
from progressbench.sandbox.child import MIB, describe, spare_main
from progressbench.sandbox.filesystem import (
    clear_private_tmp,
    import_paths,
    mount_jobs,
    mount_scratch,
    private_filesystem,
    remove_tree,
    unmount,
)
from progressbench.sandbox.loader import write_program
from progressbench.sandbox.protocol import (
    clean_text,
    clip,
    read_tail,
    recv_message,
    send_message,
)
from progressbench.sandbox.syscalls import (
    CLONE_NEWIPC,
    CLONE_NEWNET,
    PR_SET_CHILD_SUBREAPER,
    PR_SET_DUMPABLE,
    loopback_up,
    prctl,
    unshare,
)
from progressbench.sandbox.uids import uid_can_read
from progressbench.sandbox.watch import Phase, PlatformGone, judge, statm, sweep, wait
from progressbench.sandbox.witness import open_witness, read_witness


def _unshare(flag: int, what: str, then: Callable[[], None] | None = None) -> bool:
    """Leave the host's namespace of kind ``flag``; where that fails, say so and carry on
    in the host's (the ``ready`` message tells the evaluator which isolation it got)."""
    try:
        unshare(flag)
        if then is not None:
            then()
    except OSError as exc:
        print(f"no {what}: {exc}", file=sys.stderr, flush=True)
        return False
    return True


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
        self.noexec_scratch = bool(init.get("noexec_scratch", True))
        # The data the environment declares for this run's options (``readable_paths``).
        self.readable_paths = [str(p) for p in init.get("readable_paths", [])]
        # Supplementary groups candidates keep: those owning the GPU's device nodes.
        self.groups = [int(g) for g in init.get("groups", [])]
        # The evaluator's private directory (our cwd): job directories go there (or in a
        # tmpfs mounted there, with a mount namespace).
        self.workdir = Path.cwd()
        self.jobs_dir = self.workdir
        plugins.load_plugins()
        plugins.register_modules(init.get("plugin_modules", []))
        self.env = plugins.get_environment(init["env"])
        for name in self.env.preload:
            importlib.import_module(name)
        prctl(PR_SET_CHILD_SUBREAPER, 1)
        # A same-uid candidate must not ptrace the worker and forge the next results.
        prctl(PR_SET_DUMPABLE, 0)
        root = os.geteuid() == 0
        self.network_isolated = (
            bool(init.get("isolate_network"))
            and root
            and _unshare(CLONE_NEWNET, "network namespace", loopback_up)
        )
        # SysV shared memory, semaphores and message queues outlive their processes: the
        # worker leaves the host's, and each child gets one of its own (child.enter_sandbox).
        self.ipc_namespace = root and _unshare(CLONE_NEWIPC, "IPC namespace")
        self.filesystem: dict[str, Any] = {"hidden": [], "private_tmp": False}
        needed = self._needed_paths()
        if init.get("private_fs") and self.uid is not None and os.geteuid() == 0:
            try:
                self.filesystem = private_filesystem(needed, self.workdir, int(init["shm_mb"]))
            except OSError as exc:
                print(f"no private file system: {exc}", file=sys.stderr, flush=True)
        # Scratch directories are tmpfs of their own (the kernel enforces the disk limit)
        # wherever this worker has its mount namespace; elsewhere their size is polled.
        self.scratch_tmpfs = bool(self.filesystem["private_tmp"])
        if self.scratch_tmpfs:
            self.jobs_dir = self.workdir / "jobs"
            mount_jobs(self.jobs_dir)
        # Candidates keep read access everywhere (CAP_DAC_READ_SEARCH) only when their uid
        # could not otherwise run the interpreter (e.g. one under a 0700 /root, not hidden).
        self.read_all = self.uid is not None and not uid_can_read(self.uid, tuple(needed))
        # Everything imported so far is shared with every child: keep the collector from
        # touching (and so copying) those pages after each fork.
        gc.freeze()
        self.unreaped = Unreaped()
        self.used: list[Path] = []  # job directories to remove (``clean_up``)
        # The child of the next phase, forked ahead (after the freeze: it shares those pages).
        self.spare: Spare | None = self._fork_spare()

    def _needed_paths(self) -> list[str]:
        """What candidates must be able to read: the interpreter, every imported package
        (lazy imports happen in the children) and the data the environment declares."""
        paths = {sys.prefix, sys.base_prefix, sys.exec_prefix, *import_paths()}
        for name, module in list(sys.modules.items()):
            origin = getattr(module, "__file__", None)
            if "." not in name and isinstance(origin, str):
                paths.add(os.path.dirname(origin))
        paths.update(str(p) for p in self.readable_paths)
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
                outcome = {
                    "status": "error",
                    "error": clean_text(f"sandbox failure: {describe(exc)}"),
                }
            try:
                send_message(self.sock, {"op": "done", "outcome": outcome})
            except OSError:  # the platform is gone: nobody to answer
                return
            finally:
                # After the answer, while the platform handles it: the next job is read
                # only once this is done, so no candidate ever finds what the last one left.
                self.clean_up()
                self.replenish()

    def disk_bytes(self, limits: dict[str, Any]) -> int:
        """The job's disk limit: the declared one, else half of the free space (the candidate
        may use the disk, not fill it), and with a tmpfs scratch at most half of the memory
        it lives in."""
        if limits.get("disk_mb"):
            return int(limits["disk_mb"]) * MIB
        free = shutil.disk_usage(self.workdir).free // 2
        if self.scratch_tmpfs:
            free = min(free, os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE") // 2)
        return free

    def run_job(self, job: dict[str, Any]) -> dict[str, Any]:
        limits = {**job["limits"], "disk_bytes": self.disk_bytes(job["limits"])}
        job = {**job, "limits": limits}
        job_dir = Path(tempfile.mkdtemp(prefix="job-", dir=self.jobs_dir))
        scratch = job_dir / "scratch"
        try:
            # Traversable, not writable, by the candidate: only scratch is its own.
            os.chmod(job_dir, 0o711)
            program = write_program(job_dir, job["program"])
            scratch.mkdir(mode=0o700)
            if self.uid is not None and self.gid is not None:
                os.chown(scratch, self.uid, self.gid)
                if self.scratch_tmpfs:
                    owner = (self.uid, self.gid)
                    mount_scratch(scratch, limits["disk_bytes"], owner, self.noexec_scratch)
            mode = job["phase"] if job["phase"] in ("smoke", "call") else "full"
            first = self.phase(mode, job, job_dir, program, scratch, None)
            outcome = asdict(first)
            outcome["candidate_s"] = outcome.pop("seconds")
            outcome["counted"] = first.counted()
            del outcome["cpu_s"], outcome["witness"]
            if mode == "full" and first.status == "ok" and self.env.verifies:
                # The verifier starts from the run's scratch, not from what it left elsewhere.
                clear_private_tmp(self.workdir)
                # It sees what assess will: what this worker counted and witnessed, not the program.
                raw = {**(first.raw or {}), SANDBOX_KEY: first.counted()}
                second = self.phase("verify", job, job_dir, program, scratch, raw)
                outcome["candidate_s"] += second.seconds
                outcome["verify_counted"] = second.counted()
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
            sweep(None, self._keep())
            if self.scratch_tmpfs:
                unmount(scratch)  # out of every later candidate's reach from here on
            self.used.append(job_dir)

    def clean_up(self) -> None:
        """Remove the finished jobs' directories and empty the private /tmp."""
        while self.used:
            remove_tree(self.used.pop())
        clear_private_tmp(self.workdir)

    def replenish(self) -> None:
        """Fork the next phase's child unless it exists: while a phase runs, once its
        candidate has started (a fork beside a starting candidate slows both), or after a
        job."""
        if self.spare is None:
            self.spare = self._fork_spare(missing_ok=True)

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
        limits = job["limits"]
        # A tmpfs scratch is capped by the kernel; a plain directory's size is polled.
        disk = None if self.scratch_tmpfs else int(limits["disk_bytes"])
        seconds = float(limits["seconds"])
        memory = int(limits["memory_mb"]) * MIB
        vm, rss = statm("self")
        out_path, err_path = job_dir / f"{mode}.stdout", job_dir / f"{mode}.stderr"
        for path in (out_path, err_path):
            path.write_bytes(b"")
        task = {
            "mode": mode, "job": job, "program": str(program), "scratch": str(scratch),
            "raw": raw, "stdout": str(out_path), "stderr": str(err_path), "vm_cap": vm + memory,
        }  # fmt: skip
        self.unreaped.collect()
        cpu_before = self.unreaped.counted_s()
        started = time.perf_counter()
        child = self._assign(json.dumps(task).encode())
        try:
            try:
                send_message(self.sock, {"op": "started", "pgid": child.pid})
            except OSError as exc:
                raise PlatformGone from exc
            deadline = time.monotonic() + seconds
            ended = wait(self, child.pid, child.result, deadline, rss + memory, scratch, disk,
                         self._keep, self.replenish)  # fmt: skip
        except BaseException:
            sweep(child.pid, self._keep())
            raise
        finally:
            record = read_witness(child.witness)
            os.close(child.witness)
        elapsed = time.perf_counter() - started
        self.unreaped.add(ended.unreaped)
        chars = int(limits["output_chars"])
        result = judge(self, ended, limits)
        # Every process of the phase is reaped, or killed with its CPU counted.
        result.cpu_s = round(self.unreaped.counted_s() - cpu_before + ended.unreaped_cpu_s, 4)
        result.witness = record
        result.stdout = clean_text(read_tail(out_path, chars))
        result.stderr = clean_text(read_tail(err_path, chars))
        result.seconds = elapsed
        return result

    def _keep(self) -> frozenset[int]:
        """The worker's children a sweep leaves alone: the spare, and processes killed whose
        reaping (and CPU count) is ``Unreaped``'s."""
        spare = {self.spare.pid} if self.spare is not None else set()
        return frozenset(self.unreaped.pids) | spare

    def _fork_spare(self, missing_ok: bool = False) -> Spare | None:
        """Fork a child that waits for its job (``child.spare_main``)."""
        assignment, assign_end = os.pipe()
        result, result_end = os.pipe()
        witness = open_witness()
        sys.stdout.flush()
        sys.stderr.flush()
        try:
            pid = os.fork()
        except OSError:
            for fd in (assignment, assign_end, result, result_end, witness):
                os.close(fd)
            if missing_ok:  # e.g. out of processes: the next phase forks when it starts
                return None
            raise
        if pid == 0:
            spare_main(self, assignment, result_end, witness)
        os.close(assignment)
        os.close(result_end)
        return Spare(pid, assign_end, result, witness)

    def _assign(self, task: bytes) -> Spare:
        """Hand ``task`` to the spare child (forking one if there is none, or if it died)."""
        for _ in range(2):
            child, self.spare = self.spare or self._fork_spare(), None
            assert child is not None
            try:
                view = memoryview(task)
                while view:
                    view = view[os.write(child.assignment, view) :]
                return child
            except OSError:  # it is gone (killed from outside): it takes no job
                os.close(child.result)
                os.close(child.witness)
                sweep(child.pid, self._keep())
            finally:
                os.close(child.assignment)
        raise OSError("two spare children died before taking their job")


@dataclass
class Spare:
    """A child forked ahead of its job: its pid, the pipe its job is written to, the pipe
    its report comes back on, the witness file it is given (``witness``)."""

    pid: int
    assignment: int
    result: int
    witness: int


def main(argv: list[str]) -> int:
    sock = socket.socket(fileno=int(argv[0]))
    init = recv_message(sock)
    if init is None:
        return 0
    try:
        worker = Worker(sock, init)
    except BaseException as exc:  # reported: the platform explains it to the user
        send_message(sock, {"op": "failed", "error": describe(exc)})
        return 1
    send_message(
        sock,
        {
            "op": "ready",
            "pid": os.getpid(),
            "network_isolated": worker.network_isolated,
            "ipc_namespace": worker.ipc_namespace,
            "read_all": worker.read_all,
            "scratch_tmpfs": worker.scratch_tmpfs,
            **worker.filesystem,
        },
    )
    try:
        worker.serve()
    finally:
        worker.clean_up()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
