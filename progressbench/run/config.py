"""Run configuration: one pydantic model describes a run completely and is stored with it.

Values come from a TOML or YAML file (``--config``) and are overridden by CLI flags. Any
invalid value becomes one line naming the field (``UserError``, exit code 2). A resumed run
keeps its stored config; only the settings in ``RESUMABLE`` may change (``resume_config``).
"""

from __future__ import annotations

import json
import os
import tomllib
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)

from progressbench.contracts.agent import REDACTED, AgentOptions
from progressbench.errors import UserError

if TYPE_CHECKING:
    from progressbench.store import Run, Store

# What ``--resume`` may change: the budget (a larger one extends even a finished run), the
# spending cap and the parallelism. Everything else defines the experiment.
RESUMABLE = frozenset({"budget", "max_cost", "workers"})


class AgentSettings(BaseModel):
    """One agent's own settings (``agent_settings.MODEL``, or a ``[[agents]]`` table), over
    ``agent_options``: where its server is, which key it uses, what its tokens cost."""

    model_config = ConfigDict(extra="forbid")

    api_base: str | None = Field(None, min_length=1, description="the server's URL")
    # Stored as REDACTED: prefer api_key_env, which a resume can read again.
    api_key: SecretStr | None = None
    api_key_env: str | None = Field(
        None, pattern=r"^[A-Za-z_][A-Za-z0-9_]*$", description="environment variable with the key"
    )
    input_cost_per_token: float | None = Field(None, ge=0, description="USD per prompt token")
    output_cost_per_token: float | None = Field(None, ge=0, description="USD per reply token")
    temperature: float | None = None
    max_tokens: int | None = Field(None, ge=1)
    extra: dict[str, Any] = Field(default_factory=dict, description="more litellm arguments")

    @model_validator(mode="after")
    def _one_key(self) -> AgentSettings:
        if self.api_key is not None and self.api_key_env:
            raise ValueError("give api_key or api_key_env, not both")
        if (self.input_cost_per_token is None) != (self.output_cost_per_token is None):
            raise ValueError("give both input_cost_per_token and output_cost_per_token")
        return self

    def apply(self, options: AgentOptions, api_base: str | None) -> AgentOptions:
        """``options`` with these settings over them (``api_base``: the run's default)."""
        own = self.model_dump(exclude={"extra", "temperature", "max_tokens"}, exclude_none=True)
        base = {"api_base": api_base} if api_base else {}
        extra = {**options.extra, **base, **self.extra, **own}
        tuned = {k: v for k in ("temperature", "max_tokens") if (v := getattr(self, k)) is not None}
        return AgentOptions.model_validate({**options.model_dump(), **tuned, "extra": extra})


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
    agent_settings: dict[str, AgentSettings] = Field(
        default_factory=dict, description="per-agent settings, keyed by the agent spec"
    )
    api_base: str | None = Field(
        None, min_length=1, description="the server of every LLM agent without its own api_base"
    )
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
    program: str | None = Field(
        None,
        min_length=1,
        description="the program to evolve from instead of the environment's baseline: a .py "
        "file, or a directory whose main.py is the entry (docs/tasks.md)",
    )
    whole_file: bool = Field(
        False, description="agents may edit all of program, not only its EVOLVE blocks"
    )

    @model_validator(mode="before")
    @classmethod
    def _agent_tables(cls, data: Any) -> Any:
        return expand_agent_tables(data) if isinstance(data, dict) else data

    @field_validator("program")
    @classmethod
    def _absolute_program(cls, v: str | None) -> str | None:
        # Stored with the run as where it came from, whatever directory a resume runs in.
        return os.path.abspath(os.path.expanduser(v)) if v else v

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
        if self.whole_file and self.program is None:
            raise ValueError("whole_file applies to a program: give --program PATH with it")
        return self

    def redacted_keys(self) -> list[str]:
        """The agents whose ``api_key`` was stored redacted (a resumed run's): they need it
        given again."""
        found = [s for s, a in self.agent_settings.items() if _redacted(a.api_key)]
        return found + (
            ["agent_options"] if _redacted(self.agent_options.extra.get("api_key")) else []
        )


def _redacted(key: Any) -> bool:
    return isinstance(key, SecretStr) and key.get_secret_value() == REDACTED


def expand_agent_tables(data: dict[str, Any]) -> dict[str, Any]:
    """``agents`` may hold tables (``[[agents]]``: ``model``, ``weight`` and any
    ``AgentSettings``) beside plain specs; they become ``agents``, ``agent_weights`` and
    ``agent_settings``, so a stored config has one shape."""
    entries = data.get("agents")
    if not isinstance(entries, list) or not any(isinstance(e, dict) for e in entries):
        return data
    out = dict(data)
    settings = dict(out.get("agent_settings") or {})
    specs: list[Any] = []
    weights: list[Any] = []
    for entry in entries:
        table = dict(entry) if isinstance(entry, dict) else {"model": entry}
        spec = table.pop("model", None)
        if not isinstance(spec, str) or not spec.strip():
            raise UserError("invalid config: agents: each [[agents]] table needs a model")
        if spec in specs:
            raise UserError(f"invalid config: agents: {spec!r} is listed twice")
        weights.append(table.pop("weight", 1.0))
        if table:
            settings[spec] = table
        specs.append(spec)
    if out.get("agent_weights") and any(isinstance(e, dict) and "weight" in e for e in entries):
        raise UserError(
            "invalid config: give agent weights in the [[agents]] tables or in agent_weights, not both"
        )
    out["agents"], out["agent_settings"] = specs, settings
    if not out.get("agent_weights") and any(w != 1.0 for w in weights):
        out["agent_weights"] = weights
    return out


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
    """File values, then CLI overrides (only the flags the user gave), validated. Agents
    named by flags keep the file's ``agent_settings`` (keyed by spec) but not its weights."""
    given = {k: v for k, v in overrides.items() if v is not None}
    base = expand_agent_tables(file_values)
    if "agents" in given and "agent_weights" not in given:
        base.pop("agent_weights", None)
    return validate_config({**base, **given})


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
    if fixed:
        raise UserError(f"cannot change {', '.join(fixed)} of an existing run when resuming")
    stored = validate_config(existing.config)
    if config_file:  # the run's own file again, for the secrets its stored config lacks
        stored = _with_secrets(stored, load_config(config_file, {}), existing.id)
    given = {k: v for k, v in overrides.items() if v is not None}
    config = validate_config({**stored.model_dump(), **given})
    if config.redacted_keys():
        raise UserError(
            f"run {existing.id} was given the api_key of {config.redacted_keys()[0]} in its "
            f"config, which is not stored: resume with --config FILE holding it (api_key_env "
            "in a config avoids this)"
        )
    if existing.status == "finished" and config.budget <= existing.n_children:
        raise UserError(
            f"run {existing.id} already finished its budget of {existing.budget}; "
            "pass a larger --budget to extend it"
        )
    if config.budget != existing.budget:
        store.update_run(existing.id, budget=config.budget, config_json=config.model_dump_json())
        existing = store.get_run(existing.id)
    return config, existing


def _with_secrets(stored: RunConfig, given: RunConfig, run_id: str) -> RunConfig:
    """``given`` (a config file read on resume) when it matches ``stored`` in everything but
    secrets and the ``RESUMABLE`` settings, with the stored ones of those."""
    mine, theirs = json.loads(stored.model_dump_json()), json.loads(given.model_dump_json())
    changed = sorted(k for k in mine.keys() - RESUMABLE if mine[k] != theirs.get(k))
    if changed:
        raise UserError(
            f"--config differs from run {run_id}'s settings in {', '.join(changed)}: on resume "
            "it may only give the secrets the run did not store"
        )
    return given.model_copy(update={k: getattr(stored, k) for k in RESUMABLE})


def validate_config(values: dict[str, Any]) -> RunConfig:
    try:
        return RunConfig.model_validate(values)
    except ValidationError as exc:
        raise UserError(describe_validation_error(exc)) from None


def describe_validation_error(exc: ValidationError) -> str:
    err = exc.errors()[0]
    field = ".".join(str(p) for p in err["loc"]) or "config"
    msg = err["msg"].removeprefix("Value error, ")  # pydantic's word for a validator's own
    if err["type"] == "extra_forbidden":
        msg = "unknown setting"
    got = err.get("input")
    shown = "" if isinstance(got, dict) or err["type"] == "missing" else f" (got {got!r})"
    more = f" (+{len(exc.errors()) - 1} more)" if len(exc.errors()) > 1 else ""
    return f"invalid config: {field}: {msg}{shown}{more}"
