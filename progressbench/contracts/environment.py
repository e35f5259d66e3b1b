"""The environment contract: an open objective, its reference program and its protected harness.

Methods run in two places. ``smoke``, ``run`` and ``verify`` execute inside an isolated
sandbox child (forked from a warm worker that imported ``preload``), next to hostile code, and
return plain JSON data. ``assess`` runs in the platform process on that JSON data only and is
the sole source of the metrics and score that get stored.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from progressbench.errors import UserError
from progressbench.run.config import describe_validation_error


class Record(BaseModel):
    """One published result for an objective's metric: its value in the metric's units, who
    set it, the year and where it is published (the record tables of ``leaderboard`` and
    ``show`` print all four)."""

    holder: str
    value: float
    # None where the source gives no year for the result itself.
    year: int | None = None
    source: str = ""

    @property
    def key(self) -> str:
        """How reports and prompts name it: the holder, with the year when known."""
        return self.holder if self.year is None else f"{self.holder} ({self.year})"


class Objective(BaseModel):
    """What is being optimised and what "good" means."""

    metric: str
    direction: Literal["maximize", "minimize"]
    target: float | None = None
    unit: str = ""
    # Known public records for this metric, each with its source (shown beside scores).
    records: list[Record] = Field(default_factory=list)

    @field_validator("records", mode="before")
    @classmethod
    def _named_values(cls, value: Any) -> Any:
        # The older form, {holder: value}, is what runs stored before records had sources
        # (and what plugins written then return): records without a year or a source.
        if isinstance(value, dict):
            return [{"holder": str(k), "value": v} for k, v in value.items()]
        return value

    def leader(self) -> Record | None:
        """The best published record, or None when none is known."""
        if not self.records:
            return None
        pick = max if self.direction == "maximize" else min
        return pick(self.records, key=lambda r: r.value)

    def best_record(self) -> tuple[str, float] | None:
        """The best record as (name, value)."""
        best = self.leader()
        return None if best is None else (best.key, best.value)

    def improvement(self, value: float, reference: float) -> float:
        """Signed progress of ``value`` over ``reference``: positive is better."""
        return value - reference if self.direction == "maximize" else reference - value

    def record_gap(self, value: float) -> float | None:
        """How far ``value`` is behind the best record, in the metric's units and direction
        (record - value when maximised, value - record when minimised, as for an upper bound):
        positive behind, 0 equal, negative ahead; None when no record is known."""
        best = self.leader()
        # The record's progress over the value (not minus the value's over the record: an
        # equal value must show 0, not -0).
        return None if best is None else self.improvement(best.value, value)

    def standing(self, value: float) -> str | None:
        """Where ``value`` stands against the records: "new record" only when it strictly
        beats every published one, else "equals record" or "behind record"; None when no
        record is known."""
        gap = self.record_gap(value)
        if gap is None:
            return None
        return "new record" if gap < 0 else "equals record" if gap == 0 else "behind record"


def format_score(value: float | None, missing: str = "-", signed: bool = False) -> str:
    """A score or metric as reports and prompts show it: six significant digits (with a sign
    when ``signed``, for a difference); ``missing`` when there is none."""
    if value is None:
        return missing
    if isinstance(value, bool) or not isinstance(value, int | float):
        return str(value)
    return f"{value:+.6g}" if signed else f"{value:.6g}"


# The key of a phase's raw result (``run``'s and ``verify``'s) that the sandbox writes after
# every process of the phase is gone, replacing whatever the program put there:
# {"cpu_s": CPU seconds of every process of the phase, as the kernel counted them,
#  "witness": the record the phase's witness process wrote, if it wrote one (a process the
#  harness forks before any program code runs: ``sandbox.witness``)}. Absent where the
# evaluator measures nothing (e.g. an evaluator without the sandbox).
SANDBOX_KEY = "sandbox"


class Resources(BaseModel):
    """What one evaluation needs; evaluators use it for limits and placement."""

    cpus: float = 1.0
    gpus: int = 0
    seconds: float = 60.0
    smoke_seconds: float = 20.0
    memory_mb: int = 2048
    # Largest single file and total scratch space one evaluation may write (checkpoints);
    # None: the evaluator's defaults (256 MB a file; half the free disk space in all).
    file_mb: int | None = None
    disk_mb: int | None = None
    # Tasks (processes and threads together, what RLIMIT_NPROC counts) one evaluation may run
    # at once; None: the evaluator's default (64). GPU training needs far more: every rank's
    # CUDA, NCCL and autograd threads, and compile workers.
    processes: int | None = None


class Feature(BaseModel):
    """A behavioural descriptor the strategy may use (e.g. MAP-Elites axes)."""

    name: str
    low: float
    high: float
    bins: int = 10


class Variant(BaseModel):
    name: str
    description: str = ""
    requires_gpu: bool = False


class Assessment(BaseModel):
    """The trusted verdict on one run of one program."""

    valid: bool
    # Fitness for strategies and ranking: higher is always better.
    score: float | None = None
    metrics: dict[str, float] = Field(default_factory=dict)
    features: dict[str, float] = Field(default_factory=dict)
    telemetry: dict[str, Any] = Field(default_factory=dict)
    reason: str = ""


class SandboxContext(BaseModel):
    """What the harness gets inside the sandbox child; ``phase`` says which method runs."""

    variant: str
    phase: Literal["smoke", "full", "verify", "call"]
    seed: int
    scratch: Path
    time_limit: float
    options: dict[str, Any] = Field(default_factory=dict)


class NoOptions(BaseModel):
    """The ``--env-option`` values of an environment that takes none."""

    model_config = ConfigDict(extra="forbid")


class Environment:
    """Base class for environment plugins. Subclass, fill the class attributes, and register
    an instance through the ``register_environments`` hook."""

    name: ClassVar[str]
    description: ClassVar[str] = ""
    variants: ClassVar[dict[str, Variant]] = {"default": Variant(name="default")}
    default_variant: ClassVar[str] = "default"
    # Modules a warm worker imports once, before forking a child per candidate.
    preload: ClassVar[tuple[str, ...]] = ()
    # Whether ``verify`` re-checks the result in a fresh process after ``run``.
    verifies: ClassVar[bool] = False
    # Two metric names (x, y), both minimised, whose Pareto front over a run's programs
    # ``show --frontier`` prints (nanogpt: training time vs validation loss).
    frontier: ClassVar[tuple[str, str] | None] = None
    # Metrics ``show`` prints beside the objective for the top programs (nanogpt: steps and
    # cost per step to the target, which tell a step-count change from a per-step one).
    show_metrics: ClassVar[tuple[str, ...]] = ()
    # The ``--env-option`` values the harness understands (``ctx.options``): declare a
    # pydantic model with ``extra="forbid"`` so that a misspelt option is refused, not ignored.
    Options: ClassVar[type[BaseModel]] = NoOptions
    # Third-party packages candidates may import besides the standard library, as pip names
    # them (the static guard allows their import names; ``run`` and ``eval`` check at start
    # that each one imports in the sandbox). Empty: no declaration, no allow-list.
    packages: ClassVar[tuple[str, ...]] = ()
    # The command that installs them, named when one is missing; empty: the platform's guess
    # (``pip install 'progressbench[ENV]'`` for a built-in, else ``pip install NAME``).
    install_hint: ClassVar[str] = ""
    # How far a result can be trusted, as ``plugins``, ``show`` and the leaderboard label it:
    # "protected-harness" (harness code owns the measurement and ``assess`` re-checks it) or
    # "evaluator-in-sandbox" (the scoring code shares the candidate's process).
    trust: ClassVar[str] = "protected-harness"

    @classmethod
    def check_options(cls, options: dict[str, Any]) -> None:
        """A one-line ``UserError`` for an option ``Options`` refuses; the run loop calls it
        before a run is created."""
        try:
            cls.Options.model_validate(options)
        except ValidationError as exc:
            msg = describe_validation_error(exc).replace("invalid config: ", "", 1)
            raise UserError(f"invalid --env-option for environment {cls.name!r}: {msg}") from None

    # --- platform side -----------------------------------------------------------------
    def pick_variant(self, requested: str | None) -> str:
        """The variant to use when the user names none (may depend on the hardware)."""
        return requested or self.default_variant

    def unavailable(self, variant: str, options: Mapping[str, Any] | None = None) -> str | None:
        """Why ``variant`` cannot run on this machine with the run's environment ``options``
        (e.g. where its data is), or None when it can."""
        return None

    def objective(self, variant: str) -> Objective:
        raise NotImplementedError

    def baseline(self, variant: str) -> str:
        """Source code of the reference program."""
        raise NotImplementedError

    def resources(self, variant: str) -> Resources:
        return Resources()

    def features(self, variant: str) -> list[Feature]:
        return []

    def task_description(self, variant: str) -> str:
        """The problem statement shown to agents."""
        return self.description

    def assess(
        self, raw: dict[str, Any], verified: dict[str, Any] | None, variant: str
    ) -> Assessment:
        """Turn the sandbox's JSON output into trusted metrics; never trust the program's
        own claims."""
        raise NotImplementedError

    def fetch_data(self, variant: str, dest: Path | None, options: dict[str, Any]) -> str:
        """Download or generate what ``variant`` needs (``progressbench data ENV``); returns a
        one-line summary of what is where."""
        return f"{self.name} needs no data"

    def format_telemetry(self, telemetry: dict[str, Any]) -> str:
        """A compact text form of telemetry for prompts."""
        return ""

    def format_telemetry_diff(self, telemetry: dict[str, Any], parent: dict[str, Any]) -> str:
        """How ``telemetry`` differs from that of the program's parent (``parent``), compactly,
        for prompts: which part got faster or slower, by how much. Default: nothing."""
        return ""

    def guard_rules(self, variant: str) -> dict[str, Any]:
        """What the platform's integrity guards enforce for ``variant`` beyond their defaults:
        protected names, allowed or forbidden modules and attributes, equivalence and
        agreement checks (the fields of ``GuardRules`` in docs/integrity.md). Default: none."""
        return {}

    def verification(self, variant: str) -> dict[str, Any]:
        """Overrides of what ``progressbench verify`` tests (metric, direction, target, alpha,
        compare); default: the objective's metric against its target."""
        return {}

    def readable_paths(self, variant: str, options: Mapping[str, Any] | None = None) -> list[str]:
        """Paths outside the interpreter and packages that sandboxed code must be able to
        read (e.g. data under the platform user's hidden home), given the run's environment
        options (a ``data_dir`` option moves the data). Default: none."""
        return []

    # --- sandbox side ------------------------------------------------------------------
    def smoke(self, program: Path, ctx: SandboxContext) -> dict[str, Any]:
        """A quick check that the program loads and runs at all (default: import it)."""
        from progressbench.sandbox.loader import load_program

        load_program(program)
        return {}

    def run(self, program: Path, ctx: SandboxContext) -> dict[str, Any]:
        """Run the program under the harness and return JSON-able raw results."""
        raise NotImplementedError

    def verify(self, program: Path, raw: dict[str, Any], ctx: SandboxContext) -> dict[str, Any]:
        """Recompute the result in a fresh process from ``run``'s artifacts in ctx.scratch."""
        return {}
