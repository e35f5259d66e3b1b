"""What an environment tells the integrity guards, read from its optional ``guard_rules``.

An environment opts in by overriding ``Environment.guard_rules(variant) -> dict`` (declared
on the contract, default ``{}``), so an environment needs no dependency on these guards.
Every key is optional; docs/integrity.md describes each one. The dict is validated here, so
a misspelt key fails loudly instead of silently weakening a guard.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from progressbench import Environment, PluginError
from progressbench.run.packages import import_names


class EquivalenceSpec(BaseModel):
    """A protected function a program may replace with its own implementation, if it computes
    the same thing: ``reference`` and ``inputs`` are ``module:callable`` import paths;
    ``inputs(rng)`` (a ``numpy.random.Generator``) returns the argument tuple of one trial."""

    model_config = ConfigDict(extra="forbid")

    reference: str
    inputs: str
    trials: int = Field(16, ge=1, le=1000)
    rtol: float = Field(1e-5, ge=0)
    atol: float = Field(1e-6, ge=0)


class AgreementSpec(BaseModel):
    """A quantity both ``run`` and the fresh-process ``verify`` return under the same key,
    which must agree within ``atol + rtol * |verified|``."""

    model_config = ConfigDict(extra="forbid")

    atol: float = Field(0.0, ge=0)
    rtol: float = Field(0.0, ge=0)


class GuardRules(BaseModel):
    model_config = ConfigDict(extra="forbid")

    # Identifiers the program may not define, bind, shadow or set as an attribute anywhere;
    # dotted names ("time.perf_counter") may not be assigned, deleted or setattr'd.
    protected_names: list[str] = Field(default_factory=list)
    # When given, the only modules (and their submodules) a program may import. It never
    # lifts the deny-list (``static.FORBIDDEN_MODULES``): allowing the whole standard library
    # must not allow subprocess or socket.
    allowed_modules: list[str] | None = None
    # Modules on the deny-list this environment lets programs import anyway: each one a
    # deliberate decision, named on its own.
    allowed_forbidden_modules: list[str] = Field(default_factory=list)
    forbidden_modules: list[str] = Field(default_factory=list)
    # Dotted names, fnmatch patterns allowed ("torch.manual_seed", "random.seed*").
    forbidden_attributes: list[str] = Field(default_factory=list)
    allowed_attributes: list[str] = Field(default_factory=list)
    equivalence: dict[str, EquivalenceSpec] = Field(default_factory=dict)
    agreement: dict[str, AgreementSpec] = Field(default_factory=dict)
    # The top-level modules of ``Environment.packages`` (``rules_for`` fills it in): with the
    # standard library, the only modules a program may import; None: no declaration.
    packages: list[str] | None = None


def rules_for(env: Environment, variant: str) -> GuardRules:
    """The environment's guard rules for ``variant`` (empty rules when it declares none)."""
    try:
        rules = GuardRules.model_validate(env.guard_rules(variant) or {})
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err["loc"]) or "guard_rules"
        raise PluginError(
            f"environment {env.name!r} returned invalid guard_rules({variant!r}): "
            f"{where}: {err['msg']}"
        ) from None
    if env.packages:
        rules.packages = sorted({m for p in env.packages for m in import_names(p)})
    return rules
