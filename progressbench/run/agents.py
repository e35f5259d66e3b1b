"""Resolving agent specs from the config into agents, and picking one per call."""

from __future__ import annotations

import os
import random
from collections.abc import Callable

from progressbench import plugins
from progressbench.contracts.agent import Agent
from progressbench.errors import UserError
from progressbench.run.config import RunConfig

# Environment variables whose presence means a hosted model could be used.
PROVIDER_KEYS = (
    "OPENAI_API_KEY",
    "ANTHROPIC_API_KEY",
    "GEMINI_API_KEY",
    "MISTRAL_API_KEY",
    "GROQ_API_KEY",
    "DEEPSEEK_API_KEY",
    "OPENROUTER_API_KEY",
    "TOGETHER_API_KEY",
    "XAI_API_KEY",
)
OFFLINE = "offline"


def build_agent(spec: str, config: RunConfig) -> Agent:
    """``NAME`` or ``NAME:ARG`` of a registered agent, else a model string for the agent that
    accepts them (the LLM agent)."""
    registered = {name: reg.obj for name, reg in plugins.registry("agents").items()}
    if not spec.strip():
        raise UserError(
            f"--agent needs a value: {', '.join(sorted(registered))} or a model (provider/model)"
        )
    name, _, arg = spec.partition(":")
    if name in registered:
        cls, arg_or_spec = registered[name], arg or None
    else:
        takers = [c for c in registered.values() if c.accepts_model_strings]
        if not takers:
            raise UserError(
                f"unknown agent {spec!r} (available: {', '.join(sorted(registered))}; no "
                "installed agent accepts model strings)"
            )
        cls, arg_or_spec = takers[0], spec
    try:
        return cls(arg_or_spec, config.agent_options)
    except ValueError as exc:  # the agent's own word on a bad argument: one line, exit 2
        raise UserError(f"agent {spec!r}: {exc}") from None


class AgentPool:
    """The run's agents; an ensemble picks one per call, seeded, by weight."""

    def __init__(self, config: RunConfig, say: Callable[[str], None]):
        specs = list(config.agents)
        if not specs:
            keys = [k for k in PROVIDER_KEYS if os.environ.get(k)]
            hint = (
                f" ({keys[0]} is set: pass --agent PROVIDER/MODEL to use a model)"
                if keys
                else " (no --agent given and no provider API key set)"
            )
            say(f"using the offline agent{hint}")
            specs = [OFFLINE]
        self.agents = [build_agent(s, config) for s in specs]
        self.weights = list(config.agent_weights) or [1.0] * len(self.agents)
        self.online = any(a.online for a in self.agents)

    @property
    def label(self) -> str:
        return "+".join(a.label for a in self.agents)

    def pick(self, seed: int) -> Agent:
        if len(self.agents) == 1:
            return self.agents[0]
        return random.Random(seed).choices(self.agents, weights=self.weights)[0]
