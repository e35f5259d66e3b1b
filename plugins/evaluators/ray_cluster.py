"""The ``ray`` evaluator: evaluations placed on a Ray cluster by the resources the environment
declares, each node running them under the same sandbox as the ``local`` evaluator.

One Ray actor per worker slot, each reserving the environment's ``cpus`` and ``gpus``; inside
it, a ``local`` evaluator with a single warm worker does the isolated run. So placement is
Ray's, and isolation (uid drop, namespaces, limits, scrubbed environment) is the same as on
one machine. ray is imported only when this evaluator starts: it is an optional dependency
(``pip install 'progressbench[ray]'``).
"""

from __future__ import annotations

import contextlib
import queue
import threading
from typing import Any, ClassVar

from pydantic import ValidationError

from progressbench import Environment, EvalJob, EvalOutcome, Evaluator, UserError, hookimpl

DEFAULTS: dict[str, Any] = {
    # Cluster address ("auto", "ray://host:10001", ...); None: the RAY_ADDRESS variable, else
    # a local cluster started for the run (and stopped with it).
    "address": None,
    # Options of the ``local`` evaluator each actor runs (plugin_modules, network, ...).
    "local": {},
    # Seconds to wait for an actor (and its warm worker) to come up: placement may queue.
    "start_timeout": 600.0,
    # Seconds past a job's own limits before an unresponsive actor counts as lost.
    "backstop_s": 120.0,
}


class _Slot:
    """Ray actor body (decorated at start, so that importing this module needs no ray): one
    ``local`` evaluator with one warm worker, on whichever node Ray placed it."""

    def __init__(
        self,
        env_name: str,
        variant: str,
        local_options: dict[str, Any],
        env_options: dict[str, Any],
    ):
        import os

        from progressbench import plugins

        plugins.load_plugins()
        # Environments from plugin modules (tests, notebooks) are registered here as well.
        plugins.register_modules(local_options.get("plugin_modules", []))
        env = plugins.get_environment(env_name)
        self.evaluator = plugins.get("evaluators", "local")(env, variant, 1, local_options)
        self.evaluator.env_options = env_options
        self.evaluator.start()
        self.pid = os.getpid()

    def describe(self) -> dict[str, Any]:
        import socket

        return {"pid": self.pid, "host": socket.gethostname(), **self.evaluator.isolation}

    def evaluate(self, job: dict[str, Any]) -> dict[str, Any]:
        return self.evaluator.evaluate(EvalJob.model_validate(job)).model_dump(mode="json")

    def close(self) -> None:
        self.evaluator.close()


class RayEvaluator(Evaluator):
    """Evaluations on a Ray cluster, one actor per worker slot, each reserving the
    environment's resources and sandboxing candidates like ``local``.

    Options (``evaluator_options``): ``address`` (None: ``RAY_ADDRESS``, else a local cluster),
    ``local`` (options of the ``local`` evaluator inside each actor), ``start_timeout`` and
    ``backstop_s`` (seconds).
    """

    name: ClassVar[str] = "ray"
    description: ClassVar[str] = (
        "a Ray cluster: one actor per worker, placed by the environment's cpus and gpus, each "
        "sandboxing candidates like local"
    )

    def __init__(
        self, env: Environment, variant: str, workers: int, options: dict[str, Any] | None = None
    ):
        super().__init__(env, variant, workers, options)
        self.settings = self.checked_settings(DEFAULTS)
        if not isinstance(self.settings["local"], dict):
            raise UserError("the ray evaluator's 'local' option must be a table of options")
        self._ray: Any = None
        self._actor_cls: Any = None
        self._started_cluster = False
        self._free: queue.Queue[Any] = queue.Queue()
        self._actors: list[Any] = []
        self._closed = False

    # --- lifecycle -----------------------------------------------------------------------
    def start(self) -> None:
        if self._actors:
            return
        try:
            import ray
        except ImportError:
            raise UserError(
                "the ray evaluator needs ray: pip install 'progressbench[ray]'"
            ) from None
        self._ray = ray
        if not ray.is_initialized():
            try:
                ray.init(
                    address=self.settings["address"],
                    include_dashboard=False,
                    log_to_driver=False,
                    configure_logging=False,
                )
            except (ConnectionError, ValueError, RuntimeError) as exc:
                raise UserError(f"cannot reach the Ray cluster: {_first_line(exc)}") from None
            self._started_cluster = True
        resources = self.env.resources(self.variant)
        self._actor_cls = ray.remote(_Slot).options(
            num_cpus=resources.cpus, num_gpus=resources.gpus, max_restarts=0
        )
        self._actors = [self._spawn() for _ in range(self.workers)]
        try:
            ray.get(
                [a.describe.remote() for a in self._actors],
                timeout=float(self.settings["start_timeout"]),
            )
        except Exception as exc:
            self.close()
            raise UserError(
                f"the ray evaluator's actors did not start: {_first_line(exc)}"
            ) from None
        for actor in self._actors:
            self._free.put(actor)

    def _spawn(self) -> Any:
        return self._actor_cls.remote(
            self.env.name, self.variant, dict(self.settings["local"]), dict(self.env_options)
        )

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        ray = self._ray
        if ray is None:
            return
        for actor in self._actors:
            with contextlib.suppress(Exception):  # the actor may be gone already
                ray.get(actor.close.remote(), timeout=60)
            with contextlib.suppress(Exception):
                ray.kill(actor)
        if self._started_cluster:
            ray.shutdown()

    @property
    def isolation(self) -> dict[str, Any]:
        """What the first actor's sandbox reported, with its host and pid."""
        if not self._actors:
            return {}
        return self._ray.get(self._actors[0].describe.remote(), timeout=60)

    # --- evaluation ----------------------------------------------------------------------
    def evaluate(self, job: EvalJob) -> EvalOutcome:
        actor = self._acquire()
        if actor is None:
            return EvalOutcome(status="worker-lost", error="the evaluator is closed")
        ray = self._ray
        phases = 2 if job.phase == "full" and self.env.verifies else 1
        timeout = phases * job.limits.seconds + float(self.settings["backstop_s"])
        replacing = False
        try:
            reply = ray.get(actor.evaluate.remote(job.model_dump(mode="json")), timeout=timeout)
            return EvalOutcome.model_validate(reply)
        except ValidationError as exc:
            return EvalOutcome(status="error", error=f"the actor's outcome is malformed: {exc}")
        except Exception as exc:  # the actor or its node died, or it stopped answering
            with contextlib.suppress(Exception):
                ray.kill(actor)
            if not self._closed:
                replacing = True
                threading.Thread(target=self._replace, daemon=True).start()
            return EvalOutcome(status="worker-lost", error=f"ray actor lost: {_first_line(exc)}")
        finally:
            if not replacing:
                self._free.put(actor)

    def _acquire(self) -> Any:
        while not self._closed:
            with contextlib.suppress(queue.Empty):
                return self._free.get(timeout=0.2)
        return None

    def _replace(self) -> None:
        """A new actor for a lost one, warm before the next job gets it."""
        actor = self._spawn()
        try:
            self._ray.get(actor.describe.remote(), timeout=float(self.settings["start_timeout"]))
        except Exception:  # noqa: BLE001 - retried on the next loss; the slot stays usable
            pass
        self._actors.append(actor)
        self._free.put(actor)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


# --- registration ------------------------------------------------------------------------
@hookimpl
def register_evaluators(register):
    register(RayEvaluator)
