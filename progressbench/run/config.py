"""Run configuration: one pydantic model describes a run completely and is stored with it.

Values come from a TOML or YAML file (``--config``) and are overridden by CLI flags. Any
invalid value becomes one line naming the field (``UserError``, exit code 2).
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from progressbench.contracts.agent import AgentOptions
from progressbench.errors import UserError


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
    seed: int = Field(0, ge=0)
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
