"""Resolving agent specs from the config into agents, picking one per call, and answering a
resumed task's requests from the replies its killed session stored."""

from __future__ import annotations

import copy
import os
import random
import threading
from collections.abc import Callable
from typing import ClassVar

from progressbench import plugins
from progressbench.contracts.agent import (
    Agent,
    AgentOptions,
    AgentReply,
    AgentRequest,
    AgentUnavailable,
)
from progressbench.errors import UserError
from progressbench.run.config import AgentSettings, RunConfig

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
        return cls(arg_or_spec, options_for(spec, config))
    except ValueError as exc:  # the agent's own word on a bad argument: one line, exit 2
        raise UserError(f"agent {spec!r}: {exc}") from None


def options_for(spec: str, config: RunConfig) -> AgentOptions:
    """The options agent ``spec`` gets: ``agent_options`` under its own ``agent_settings``
    and the run's ``api_base``."""
    own = config.agent_settings.get(spec, AgentSettings())
    return own.apply(config.agent_options, config.api_base)


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
        for stray in sorted(set(config.agent_settings) - set(specs)):
            say(f"warning: agent_settings for {stray!r} match no agent of this run (ignored)")
        self.agents = [build_agent(s, config) for s in specs]
        self.weights = list(config.agent_weights) or [1.0] * len(self.agents)
        self.online = any(a.online for a in self.agents)
        self._stored: dict[str, str] = {}
        self.calls = CallCounts()
        if config.max_cost is not None:
            _check_prices(self.agents, config.max_cost, say)

    @property
    def label(self) -> str:
        return "+".join(a.label for a in self.agents)

    def pick(self, seed: int) -> Agent:
        if len(self.agents) == 1:
            agent = self.agents[0]
        else:
            agent = random.Random(seed).choices(self.agents, weights=self.weights)[0]
        return Counted(agent, self._stored, self.calls)

    def reusing(self, stored: dict[str, str]) -> AgentPool:
        """This pool for one resumed task: a request whose reply (by key) its killed session
        stored gets that reply again, unasked and unstored a second time."""
        pool = copy.copy(self)
        pool._stored = dict(stored)
        return pool


class CallCounts:
    """This session's model calls that went wrong, for the progress line: attempts retried
    after a rate limit, timeout or server error, and requests that failed in the end."""

    def __init__(self) -> None:
        self.retries = 0
        self.errors = 0
        self._lock = threading.Lock()

    def add(self, reply: AgentReply | None, calls: int) -> None:
        with self._lock:
            self.retries += max(calls - 1, 0)
            self.errors += int(reply is None or bool(reply.error))


class Counted(Agent):
    """``agent`` as the pool hands it out: its calls counted, and the requests whose replies
    are in ``stored`` (key: text; a resumed task's) answered from there."""

    name: ClassVar[str] = "counted"

    def __init__(self, agent: Agent, stored: dict[str, str], counts: CallCounts):
        super().__init__(agent.arg, agent.options)
        self.agent, self.stored, self.counts = agent, stored, counts

    @property
    def label(self) -> str:
        return self.agent.label

    def reply(self, request: AgentRequest) -> AgentReply:
        if request.key in self.stored:
            # No calls: the session stores nothing new and spends nothing twice.
            return AgentReply(text=self.stored[request.key])
        try:
            reply = self.agent.reply(request)
        except AgentUnavailable as exc:
            self.counts.add(None, len(exc.calls))
            raise
        self.counts.add(reply, len(reply.calls))
        return reply


def stored_replies(calls: list) -> dict[str, str]:
    """key -> reply text of the stored ``llm_call`` rows whose final attempt is a usable
    reply; a key that ended in an error is asked again."""
    last = {c.request_key: c for c in calls}
    return {k: c.response for k, c in last.items() if not c.error and c.response.strip()}


def _check_prices(agents: list[Agent], cap: float, say: Callable[[str], None]) -> None:
    """--max-cost counts USD: say which agents it cannot count, and refuse a cap that can
    never be reached."""
    unpriced = [a.label for a in agents if not a.priced]
    if not unpriced:
        return
    if len(unpriced) == len(agents):
        raise UserError(
            f"--max-cost {cap:g} can never be reached: no price is known for "
            f"{', '.join(unpriced)}; set input_cost_per_token and output_cost_per_token in "
            "its agent_settings (docs/agents.md)"
        )
    for label in unpriced:
        say(
            f"warning: no price is known for {label}: its calls count $0 toward --max-cost "
            "(set input_cost_per_token and output_cost_per_token in its agent_settings)"
        )
