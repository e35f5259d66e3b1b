"""The ``local`` evaluator's machinery: a pool of warm workers on this machine. It leases the
candidates' uids, builds the scrubbed environment and the workers' PYTHONPATH, starts every
worker at once, hands each job to a free worker, and revives a lost one in the background.

Apart from the plugin (``progressbench_plugins.evaluators.local``, which holds the options
and the ``Evaluator`` class) so that the whole sandbox, platform side included, lives in
this package.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import queue
import tempfile
import threading
import time
from pathlib import Path
from typing import IO, Any

from pydantic import ValidationError
from pydantic_core import PydanticSerializationError

from progressbench.contracts.environment import Environment
from progressbench.contracts.evaluator import EvalJob, EvalOutcome
from progressbench.errors import UserError
from progressbench.sandbox.devices import device_groups, gpu_device_nodes
from progressbench.sandbox.environ import scrubbed_environ
from progressbench.sandbox.filesystem import remove_tree
from progressbench.sandbox.handle import WarmWorker, WorkerLost, WorkerStartError, track
from progressbench.sandbox.syscalls import PR_SET_DUMPABLE, prctl
from progressbench.sandbox.uids import kill_uid, lease_uids


def _import_root(module: str) -> str:
    """The sys.path entry ``module`` is found under, for the worker's PYTHONPATH."""
    top = module.split(".")[0]
    spec = importlib.util.find_spec(top)
    if spec is None:
        raise UserError(f"plugin module {module!r} is not importable")
    if spec.submodule_search_locations:  # a package: its parent directory
        return str(Path(next(iter(spec.submodule_search_locations))).parent)
    if spec.origin is None:
        raise UserError(f"plugin module {module!r} has no file to import it from")
    return str(Path(spec.origin).parent)


class WorkerPool:
    """``workers`` warm workers for one environment variant, configured by the ``local``
    evaluator's ``settings`` (its options over its defaults). ``evaluate`` is thread-safe."""

    def __init__(self, env: Environment, variant: str, workers: int, settings: dict[str, Any]):
        self.env = env
        self.variant = variant
        self.workers = workers
        self.settings = settings
        self._workers: list[WarmWorker] = []
        self._free: queue.Queue[WarmWorker] = queue.Queue()
        self._leases: list[IO[str]] = []
        self._home: Path | None = None
        self._lock = threading.Lock()
        self._closed = False
        self._env_options: dict[str, Any] = {}

    # --- lifecycle -----------------------------------------------------------------------
    def start(self, env_options: dict[str, Any] | None = None) -> None:
        """Spawn the workers and wait until they are warm; ``env_options``: the run's
        environment options (they say what candidates must read)."""
        self._env_options = dict(env_options or {})
        if self._workers:
            return
        root = os.geteuid() == 0
        if not root:
            # A candidate shares our uid: without this it could read our
            # /proc/PID/environ, API keys included.
            with contextlib.suppress(OSError):
                prctl(PR_SET_DUMPABLE, 0)
        drop = root if self.settings["drop_uid"] is None else bool(self.settings["drop_uid"])
        if drop and not root:
            raise UserError("drop_uid needs the platform to run as root")
        track(self)
        try:
            self._spawn_all(drop)
        except BaseException:
            self.close()
            raise

    def _spawn_all(self, drop: bool) -> None:
        s = self.settings
        resources = self.env.resources(self.variant)
        cpus = len(os.sched_getaffinity(0))
        memory_watch = s["memory_watch"] or ("rss" if resources.gpus > 0 else "rlimit")
        if memory_watch not in ("rlimit", "rss"):
            raise UserError(f"memory_watch must be 'rlimit' or 'rss', not {memory_watch!r}")
        self._home = Path(tempfile.mkdtemp(prefix="progressbench-", dir=s["scratch_root"]))
        os.chmod(self._home, 0o711)  # candidates traverse to their scratch; nothing more
        environ = scrubbed_environ(os.environ, s["pass_env"])
        modules = list(s["plugin_modules"])
        extra = [_import_root(m) for m in modules]
        if extra:
            environ["PYTHONPATH"] = os.pathsep.join(
                [*extra, *filter(None, [environ.get("PYTHONPATH")])]
            )
        # GPU jobs load the kernels they compile (Triton, Inductor) from caches in scratch.
        noexec = resources.gpus == 0 if s["noexec"] is None else bool(s["noexec"])
        # The groups that own the GPU's device nodes survive the uid drop (``devices``).
        groups = device_groups(gpu_device_nodes())[0] if resources.gpus > 0 else []
        uids: list[int | None] = [None] * self.workers
        if drop:
            leased, self._leases = lease_uids(self.workers, int(s["uid_base"]))
            uids = list(leased)
            for stale in leased:  # whatever a crashed earlier run left running as this uid
                kill_uid(stale, stale)
        for slot, uid in enumerate(uids):
            init = {
                "env": self.env.name,
                "variant": self.variant,
                "plugin_modules": modules,
                "uid": uid,
                "gid": uid,
                "isolate_network": not s["network"],
                "private_fs": bool(s["private_fs"]),
                "shm_mb": resources.memory_mb,
                "threads": max(1, min(round(resources.cpus), cpus)),
                "memory_watch": memory_watch,
                "max_result_bytes": int(s["max_result_bytes"]),
                "noexec_scratch": noexec,
                "groups": groups,
                "readable_paths": list(self.env.readable_paths(self.variant, self._env_options)),
            }
            self._workers.append(WarmWorker(slot, init, environ, self._home))
        # All workers warm up at once: the evaluator's start-up costs one import, not N.
        for worker in self._workers:
            worker.spawn()
        deadline = time.monotonic() + float(s["start_timeout"])
        for worker in self._workers:
            worker.wait_ready(deadline)
        for worker in self._workers:
            self._free.put(worker)

    def close(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
        for worker in self._workers:
            worker.hang_up()  # all at once: each cleans up its candidate in parallel
        for worker in self._workers:
            worker.stop()
        for lease in self._leases:
            lease.close()
        if self._home is not None:
            remove_tree(self._home)

    @property
    def worker_pids(self) -> list[int]:
        return [w.pid for w in self._workers if w.pid is not None]

    @property
    def isolation(self) -> dict[str, Any]:
        """What the first worker reported it put in place (network, file system, reads)."""
        info = self._workers[0].info if self._workers else {}
        return {k: v for k, v in info.items() if k not in ("op", "pid")}

    @property
    def sandbox_uids(self) -> list[int]:
        """The uids candidates run as (empty when they keep the platform's uid)."""
        return [w.uid for w in self._workers if w.uid is not None]

    # --- evaluation ----------------------------------------------------------------------
    def evaluate(self, job: EvalJob) -> EvalOutcome:
        started = time.monotonic()
        outcome = self._evaluate(job)
        outcome.total_s = time.monotonic() - started
        return outcome

    def _evaluate(self, job: EvalJob) -> EvalOutcome:
        try:
            message = job.model_dump(mode="json")
        except PydanticSerializationError as exc:
            return EvalOutcome(status="error", error=f"the job is not JSON-serialisable: {exc}")
        worker = self._acquire()
        if worker is None:
            return EvalOutcome(status="worker-lost", error="the evaluator is closed")
        phases = 2 if job.phase == "full" and self.env.verifies else 1
        deadline = time.monotonic() + phases * job.limits.seconds + self.settings["backstop_s"]
        reviving = False
        try:
            if not worker.alive:  # a restart after an earlier loss failed: try once more
                worker.restart(time.monotonic() + float(self.settings["start_timeout"]))
            reply = worker.run(message, deadline)
            return EvalOutcome.model_validate(reply)
        except (WorkerLost, WorkerStartError) as exc:
            worker.kill()  # now, not in the background: nothing of the candidate outlives this
            if not self._closed:
                reviving = True
                threading.Thread(target=self._revive, args=(worker,), daemon=True).start()
            return EvalOutcome(status="worker-lost", error=str(exc))
        except ValidationError as exc:
            return EvalOutcome(status="error", error=f"the worker's outcome is malformed: {exc}")
        finally:
            if not reviving:
                self._free.put(worker)

    def _acquire(self) -> WarmWorker | None:
        """A free worker (blocking), or None once the evaluator is closed."""
        while not self._closed:
            with contextlib.suppress(queue.Empty):
                return self._free.get(timeout=0.2)
        return None

    def _revive(self, worker: WarmWorker) -> None:
        """Restart a lost worker in the background, so the next job finds it warm."""
        # A failure here is retried, and reported, by the next evaluate() that gets it.
        with contextlib.suppress(WorkerLost, WorkerStartError):
            worker.restart(time.monotonic() + float(self.settings["start_timeout"]))
        self._free.put(worker)
