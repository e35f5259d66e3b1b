"""The ``local`` evaluator: each candidate runs in a fresh, isolated child of a warm worker
process on this machine. This plugin holds the options and the ``Evaluator`` class; the
machinery is ``progressbench.sandbox.pool``, and how the isolation works is told in
``progressbench.sandbox``."""

from __future__ import annotations

from typing import Any, ClassVar

from progressbench import Environment, EvalJob, EvalOutcome, Evaluator, hookimpl
from progressbench.sandbox.pool import WorkerPool
from progressbench.sandbox.uids import DEFAULT_UID_BASE

DEFAULTS: dict[str, Any] = {
    "plugin_modules": [],
    "drop_uid": None,
    "uid_base": DEFAULT_UID_BASE,
    "network": False,
    "private_fs": True,
    "noexec": None,
    "memory_watch": None,
    "max_result_bytes": 16 * 1024 * 1024,
    "pass_env": [],
    "start_timeout": 300.0,
    "backstop_s": 60.0,
    "scratch_root": None,
}


class LocalEvaluator(Evaluator):
    """Warm workers on this machine: ``workers`` processes import the environment's
    ``preload`` modules once, then fork one sandboxed child per evaluation.

    Options (``evaluator_options``):

    - ``plugin_modules``: module names the workers import and register as plugins before
      looking up the environment, for environments that are not installed through an entry
      point (tests, notebooks). Each module's directory is added to the workers' PYTHONPATH.
    - ``drop_uid`` (default: when running as root): run candidates as their own uid
      (``uid_base`` upward, one per worker, leased machine-wide).
    - ``network`` (default False): False keeps candidates in a network namespace with only
      loopback, when running as root.
    - ``private_fs`` (default True): as root, each worker gets its own mount namespace in
      which the platform user's home directory is hidden (only the interpreter and imported
      packages stay visible, read-only), /tmp, /var/tmp and /dev/shm are private, size-capped
      and noexec, every other mount is read-only, and each job's scratch directory is a tmpfs
      of its own whose size the kernel caps at the job's disk limit.
    - ``noexec`` (default: on unless the environment uses GPUs): mount each scratch
      directory noexec. GPU jobs need it off: Triton and Inductor load the kernels they
      compile from caches under the candidate's HOME and TMPDIR, both the scratch directory.
    - ``memory_watch``: ``"rlimit"`` (address-space limit; default without GPUs) or ``"rss"``
      (resident size polled and killed past the limit; the default with GPUs, since CUDA
      reserves far more address space than it uses).
    - ``max_result_bytes``, ``pass_env`` (extra variable names the workers may see; names
      that look like credentials are dropped anyway), ``start_timeout`` (seconds),
      ``backstop_s`` (how long past the job's own limits to wait for a silent worker),
      ``scratch_root`` (where the per-evaluation scratch directories go).
    """

    name: ClassVar[str] = "local"
    description: ClassVar[str] = "isolated children of warm worker processes on this machine"

    def __init__(
        self, env: Environment, variant: str, workers: int, options: dict[str, Any] | None = None
    ):
        super().__init__(env, variant, workers, options)
        self.settings = self.checked_settings(DEFAULTS)
        self._pool = WorkerPool(env, variant, workers, self.settings)

    def start(self) -> None:
        self._pool.start(self.env_options)

    def evaluate(self, job: EvalJob) -> EvalOutcome:
        return self._pool.evaluate(job)

    def close(self) -> None:
        self._pool.close()

    @property
    def worker_pids(self) -> list[int]:
        return self._pool.worker_pids

    @property
    def isolation(self) -> dict[str, Any]:
        """What the first worker reported it put in place (network, file system, reads)."""
        return self._pool.isolation

    @property
    def sandbox_uids(self) -> list[int]:
        """The uids candidates run as (empty when they keep the platform's uid)."""
        return self._pool.sandbox_uids


# --- registration ------------------------------------------------------------------------
@hookimpl
def register_evaluators(register):
    register(LocalEvaluator)
