"""The evaluator contract: run one candidate under an environment's harness, isolated."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar, Literal

from pydantic import BaseModel, Field

from progressbench.errors import UserError

if TYPE_CHECKING:
    from progressbench.contracts.environment import Environment

Status = Literal["ok", "error", "timeout", "memory", "crashed", "output-limit", "worker-lost"]


class Limits(BaseModel):
    seconds: float = 60.0
    memory_mb: int = 2048
    # Cap on each file the candidate writes (its stdout/stderr included).
    file_mb: int = 256
    # Cap on everything in its scratch directory; None: half the free space there.
    disk_mb: int | None = None
    processes: int = 64
    output_chars: int = 4000


class EvalJob(BaseModel):
    """One candidate to run, in one ``phase`` of the harness. ``smoke`` and ``full`` run the environment's ``smoke``/``run``
    (and ``verify``); ``call`` runs ``options["entry"]`` (``"module:function"``, harness code
    the platform names, never the candidate) as ``function(program_path, ctx)`` in a fresh
    sandbox child, for guards that must execute candidate code (``Guard.uses_sandbox``)."""

    program: str
    phase: Literal["smoke", "full", "call"]
    seed: int = 0
    limits: Limits = Field(default_factory=Limits)
    options: dict[str, Any] = Field(default_factory=dict)


class EvalOutcome(BaseModel):
    status: Status
    raw: dict[str, Any] | None = None
    # From the environment's fresh-process verification, when it has one.
    verified: dict[str, Any] | None = None
    error: str = ""
    stdout: str = ""
    stderr: str = ""
    # Seconds inside the candidate's own process(es), and submit-to-outcome in all.
    candidate_s: float = 0.0
    total_s: float = 0.0
    # What the sandbox vouches for of the run phase and of the verify phase: {"cpu_s": every
    # process of the phase, by the kernel; "witness": what the phase's witness process wrote,
    # when it wrote anything (``sandbox.witness``)}; empty where the evaluator keeps nothing.
    # ``assess`` sees them as raw[SANDBOX_KEY] and verified[SANDBOX_KEY].
    counted: dict[str, Any] = {}
    verify_counted: dict[str, Any] = {}

    @property
    def ok(self) -> bool:
        return self.status == "ok"


class Evaluator:
    """Base class for evaluator plugins; register the class through ``register_evaluators``.

    ``evaluate`` must be thread-safe and run up to ``workers`` jobs at once.
    """

    name: ClassVar[str]
    description: ClassVar[str] = ""

    def __init__(
        self, env: Environment, variant: str, workers: int, options: dict[str, Any] | None = None
    ):
        self.env = env
        self.variant = variant
        self.workers = workers
        self.options = options or {}
        # The run's environment options (``--env-option``), set by the platform before
        # ``start``: what candidates must read depends on them (``Environment.readable_paths``).
        self.env_options: dict[str, Any] = {}

    def checked_settings(self, defaults: dict[str, Any]) -> dict[str, Any]:
        """``defaults`` overridden by the user's options; an unknown option or no worker at
        all is a user error."""
        unknown = sorted(set(self.options) - set(defaults))
        if unknown:
            raise UserError(
                f"unknown option(s) for the {self.name} evaluator: {', '.join(unknown)} "
                f"(known: {', '.join(defaults)})"
            )
        if self.workers < 1:
            raise UserError(f"the {self.name} evaluator needs at least one worker")
        return {**defaults, **self.options}

    def start(self) -> None:
        """Acquire workers (may take a while: e.g. warm imports)."""

    def evaluate(self, job: EvalJob) -> EvalOutcome:
        raise NotImplementedError

    def close(self) -> None:
        """Stop every worker and kill whatever candidate is still running."""

    def __enter__(self) -> Evaluator:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
