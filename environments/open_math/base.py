"""What every open-math environment shares: the problem card, the harness, the assessment.

A problem is a :class:`Problem` card (statement, metric and direction in the literature's
units, published records with their sources, MAP-Elites features, baseline program, exact
``certify`` function). An environment is a family of such cards, one per variant. The
candidate defines ``construct()``; the harness (sandbox side) only turns what it returns into
plain JSON numbers; ``assess`` (platform side) re-verifies that JSON with exact arithmetic and
stores what the verifier certified, rounded outward, never what the program claimed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from fractions import Fraction
from importlib import resources
from pathlib import Path
from typing import Any, ClassVar, Literal

from progressbench import (
    Assessment,
    Environment,
    Feature,
    Objective,
    Resources,
    SandboxContext,
    Variant,
    load_program,
)

from .exact import Infeasible, outward

ENTRY = "construct"
# The deepest nesting a construction needs (a list of rows of numbers) plus slack.
_MAX_DEPTH = 4


@dataclass(frozen=True)
class Record:
    """One published result: who, the value in the problem's units, where, when (the fields
    of the platform's ``Objective`` records, written positionally in the cards)."""

    holder: str
    value: float
    source: str
    # None where the source gives no year for the result itself.
    year: int | None = None


@dataclass(frozen=True)
class Certificate:
    """What the verifier proved: the exact value, plus descriptive metrics and features."""

    value: Fraction
    metrics: dict[str, float] = field(default_factory=dict)
    features: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class Problem:
    """One open problem as a variant of an environment."""

    variant: str
    title: str
    statement: str
    returns: str
    metric: str
    direction: Literal["maximize", "minimize"]
    unit: str
    records: tuple[Record, ...]
    features: tuple[Feature, ...]
    baseline: str
    certify: Callable[[Any], Certificate]
    verifier: str
    # Text substitutions that turn the family's baseline module into this variant's program.
    substitutions: tuple[tuple[str, str], ...] = ()
    seconds: float = 60.0

    def beats(self, value: Fraction, published_value: float) -> bool:
        """Whether a certified ``value`` is strictly better than a record as published (its
        decimal digits, exactly)."""
        published = Fraction(str(published_value))
        return value > published if self.direction == "maximize" else value < published


def plain(value: Any, depth: int = 0) -> Any:
    """What ``construct()`` returned as JSON data: numbers and (nested) lists only."""
    if depth > _MAX_DEPTH:
        raise ValueError("construct() returned data nested too deeply")
    if hasattr(value, "tolist") and not isinstance(value, int | float):
        value = value.tolist()  # numpy arrays and scalars
    if isinstance(value, list | tuple):
        return [plain(v, depth + 1) for v in value]
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return float(value)
    raise TypeError(
        f"construct() returned a {type(value).__name__}; return numbers, lists or numpy arrays"
    )


class OpenMathEnvironment(Environment):
    """Base class of the open-math environments: subclasses set ``name``, ``description``
    and ``problems`` (variant name -> card)."""

    problems: ClassVar[dict[str, Problem]]
    preload: ClassVar[tuple[str, ...]] = ("numpy",)
    packages: ClassVar[tuple[str, ...]] = ("numpy", "scipy")
    install_hint: ClassVar[str] = "pip install numpy scipy"

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls.variants = {
            key: Variant(name=key, description=p.title) for key, p in cls.problems.items()
        }
        cls.default_variant = next(iter(cls.problems))

    def problem(self, variant: str) -> Problem:
        return self.problems[variant]

    def objective(self, variant: str) -> Objective:
        p = self.problem(variant)
        return Objective(
            metric=p.metric,
            direction=p.direction,
            unit=p.unit,
            records=[asdict(r) for r in p.records],
        )

    def baseline(self, variant: str) -> str:
        p = self.problem(variant)
        code = (resources.files(__package__) / f"{p.baseline}.py").read_text()
        for old, new in p.substitutions:
            if code.count(old) != 1:
                raise RuntimeError(f"baseline {p.baseline}: {old!r} must occur exactly once")
            code = code.replace(old, new)
        return code

    def resources(self, variant: str) -> Resources:
        seconds = self.problem(variant).seconds
        return Resources(cpus=1, seconds=seconds, smoke_seconds=seconds, memory_mb=1024)

    def features(self, variant: str) -> list[Feature]:
        return list(self.problem(variant).features)

    def task_description(self, variant: str) -> str:
        p = self.problem(variant)
        better = "larger" if p.direction == "maximize" else "smaller"
        lines = [
            f"{p.title}. {p.statement}",
            f"Define construct() returning {p.returns}. Besides the standard library the "
            "program may import numpy and scipy.",
            f"Score: {p.metric} ({p.unit}), {better} is better. {p.verifier} Feasibility has "
            "tolerance 0: one violation, however small, makes the program invalid, so leave "
            "a safety margin of your own.",
        ]
        records = self.objective(variant).records
        if records:
            lines.append(
                "Published records: " + "; ".join(f"{r.value!r} {r.key}" for r in records) + "."
            )
        return "\n".join(lines)

    # --- sandbox side: only the numbers the program produces ---------------------------
    def smoke(self, program: Path, ctx: SandboxContext) -> dict[str, Any]:
        return self.run(program, ctx)

    def run(self, program: Path, ctx: SandboxContext) -> dict[str, Any]:
        module = load_program(program)
        build = getattr(module, ENTRY, None)
        if not callable(build):
            raise AttributeError(f"the program defines no {ENTRY}() function")
        return {"construction": plain(build())}

    # --- platform side: trusted checks -------------------------------------------------
    def assess(
        self, raw: dict[str, Any], verified: dict[str, Any] | None, variant: str
    ) -> Assessment:
        p = self.problem(variant)
        try:
            cert = p.certify(raw.get("construction") if isinstance(raw, dict) else None)
        except Infeasible as exc:
            return Assessment(valid=False, reason=f"not certified: {exc}")
        value = outward(cert.value, up=p.direction == "minimize")
        record = self.objective(variant).leader()
        metrics = {p.metric: value, **cert.metrics}
        if record is not None:
            metrics["new_record"] = float(p.beats(cert.value, record.value))
        return Assessment(
            valid=True,
            score=value if p.direction == "maximize" else -value,
            metrics=metrics,
            features=cert.features,
        )
