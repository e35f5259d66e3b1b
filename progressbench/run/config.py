"""Run configuration: one pydantic model describes a run completely and is stored with it.

Values come from a TOML or YAML file (``--config``) and are overridden by CLI flags. Any
invalid value becomes one line naming the field (``UserError``, exit code 2). A resumed run
keeps its stored config; only the settings in ``RESUMABLE`` may change (``resume_config``).
"""

from __future__ import annotations

import json
import tomllib
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from progressbench.contracts.agent import AgentOptions
from progressbench.errors import UserError

if TYPE_CHECKING:
    from progressbench.store import Run, Store

# What ``--resume`` may change: the budget (a larger one extends even a finished run), the
# spending cap and the parallelism. Everything else defines the experiment.
RESUMABLE = frozenset({"budget", "max_cost", "workers"})


class RunConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    env: str = Field("circle-packing", description="environment to evolve programs for")
    variant: str | None = Field(None, description="environment variant (default: the env's choice)")
    strategy: str = Field("islands", description="search strategy")
    strategy_options: dict[str, Any] = Field(default_factory=dict)
    agents: list[str] = Field(
        default_factory=list,
        description="agent specs: a registered agent (offline, replay:RUN_ID) or any litellm model "
        "(provider/model); empty = the offline agent",
    )
    agent_weights: list[float] = Field(default_factory=list, description="ensemble weights")
    agent_options: AgentOptions = Field(default_factory=AgentOptions)
    budget: int = Field(100, ge=1, le=1_000_000, description="child programs to evaluate")
    workers: int | None = Field(None, ge=1, le=256, description="parallel evaluations")
    # SQLite stores integers in 64 bits.
    seed: int = Field(0, ge=0, le=2**63 - 1)
    max_cost: float | None = Field(None, gt=0, description="stop when LLM spend reaches this (USD)")
    n_fast: int = Field(3, ge=0, le=10, description="fast error catcher retries")
    evaluator: str = "local"
    evaluator_options: dict[str, Any] = Field(default_factory=dict)
    env_options: dict[str, Any] = Field(default_factory=dict)
    timeout_s: float | None = Field(None, gt=0, le=86_400, description="wall time per evaluation")
    memory_mb: int | None = Field(None, ge=64, le=1_048_576)
    disk_mb: int | None = Field(
        None, ge=1, description="scratch space of one evaluation (default: the environment's)"
    )
    prompt_dir: str | None = None
    guards: list[str] | None = Field(None, description="guards to apply (default: all that apply)")

    @field_validator("agent_weights")
    @classmethod
    def _positive_weights(cls, v: list[float]) -> list[float]:
        if any(w <= 0 for w in v):
            raise ValueError("weights must be positive")
        return v

    @model_validator(mode="after")
    def _weights_match_agents(self) -> RunConfig:
        if self.agent_weights and len(self.agent_weights) != len(self.agents):
            raise ValueError(
                f"agent_weights has {len(self.agent_weights)} values for {len(self.agents)} agents"
            )
        return self


def read_config_file(path: str | Path) -> dict[str, Any]:
    """Parse a TOML or YAML config file into a dict (a one-line error if it is not one)."""
    p = Path(path)
    if not p.is_file():
        raise UserError(f"config file {str(p)!r} does not exist")
    text = p.read_text()
    try:
        if p.suffix.lower() in (".yaml", ".yml"):
            import yaml

            data = yaml.safe_load(text) or {}
        else:
            data = tomllib.loads(text)
    except Exception as exc:  # both parsers' errors become one line
        msg = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise UserError(f"config file {str(p)!r} is not valid {_kind(p)}: {msg}") from None
    if not isinstance(data, dict):
        raise UserError(f"config file {str(p)!r} must hold a table of settings at top level")
    # A [run] table is accepted too, so one file can hold other tools' sections.
    return dict(data.get("run", data))


def _kind(p: Path) -> str:
    return "YAML" if p.suffix.lower() in (".yaml", ".yml") else "TOML"


def build_config(file_values: dict[str, Any], overrides: dict[str, Any]) -> RunConfig:
    """File values, then CLI overrides (only the flags the user gave), validated."""
    merged = {**file_values, **{k: v for k, v in overrides.items() if v is not None}}
    return validate_config(merged)


def parse_pairs(pairs: tuple[str, ...] | list[str], flag: str) -> dict[str, Any]:
    """KEY=VALUE pairs; values are read as JSON when they parse, else kept as text."""
    out: dict[str, Any] = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        if not sep or not key:
            raise UserError(f"{flag} expects KEY=VALUE, got {pair!r}")
        try:
            out[key] = json.loads(raw)
        except json.JSONDecodeError:
            out[key] = raw
    return out


def flag_overrides(
    flags: dict[str, Any],
    strategy_options: tuple[str, ...] = (),
    env_options: tuple[str, ...] = (),
    **lists: tuple[Any, ...],
) -> dict[str, Any]:
    """The settings given as command-line flags: plain ones as they are (None: not given),
    repeated ones as lists when given, ``--strategy-option``/``--env-option`` pairs parsed."""
    overrides = dict(flags)
    overrides.update({key: list(values) for key, values in lists.items() if values})
    if strategy_options:
        overrides["strategy_options"] = parse_pairs(strategy_options, "--strategy-option")
    if env_options:
        overrides["env_options"] = parse_pairs(env_options, "--env-option")
    return overrides


def load_config(config_file: str | Path | None, overrides: dict[str, Any]) -> RunConfig:
    """A new run's config: the file's settings (when one is given), then the flags given."""
    return build_config(read_config_file(config_file) if config_file else {}, overrides)


def resume_config(
    store: Store, run_id: str, overrides: dict[str, Any], config_file: str | Path | None = None
) -> tuple[RunConfig, Run]:
    """The stored config of run ``run_id`` with the ``RESUMABLE`` settings of ``overrides``
    applied, and the run. A finished run resumes only with a larger budget, which is stored
    at once (it extends the run); any other change is a one-line error."""
    existing = store.get_run(run_id)
    fixed = sorted(k for k, v in overrides.items() if v is not None and k not in RESUMABLE)
    if fixed or config_file:
        what = ", ".join(fixed) or "--config"
        raise UserError(f"cannot change {what} of an existing run when resuming")
    values = {**existing.config, **{k: v for k, v in overrides.items() if v is not None}}
    config = validate_config(values)
    if existing.status == "finished" and config.budget <= existing.n_children:
        raise UserError(
            f"run {existing.id} already finished its budget of {existing.budget}; "
            "pass a larger --budget to extend it"
        )
    if config.budget != existing.budget:
        store.update_run(existing.id, budget=config.budget, config_json=config.model_dump_json())
        existing = store.get_run(existing.id)
    return config, existing


def validate_config(values: dict[str, Any]) -> RunConfig:
    try:
        return RunConfig.model_validate(values)
    except ValidationError as exc:
        raise UserError(describe_validation_error(exc)) from None


def describe_validation_error(exc: ValidationError) -> str:
    err = exc.errors()[0]
    field = ".".join(str(p) for p in err["loc"]) or "config"
    msg = err["msg"]
    if err["type"] == "extra_forbidden":
        msg = "unknown setting"
    got = err.get("input")
    shown = "" if isinstance(got, dict) or err["type"] == "missing" else f" (got {got!r})"
    more = f" (+{len(exc.errors()) - 1} more)" if len(exc.errors()) > 1 else ""
    return f"invalid config: {field}: {msg}{shown}{more}"
