"""The agent contract: turn a prompt about a parent program into a reply holding edits.

Replies are plain text in the SEARCH/REPLACE format of ``progressbench.run.edits`` (or a whole
program in one fenced block); the core parses and applies them, so every agent, LLM or not,
is held to the same rules.
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from pydantic import BaseModel, Field, SecretStr, field_validator

Purpose = Literal["edit", "idea", "implement", "fix"]
# What a secret (an ``api_key``) becomes when a config is stored (pydantic's SecretStr text).
REDACTED = "**********"
SECRET_KEYS = frozenset({"api_key"})


class LLMCall(BaseModel):
    """One call to a model (or to the offline agent), stored as it happens."""

    agent: str
    model: str
    purpose: str
    messages: list[dict[str, str]]
    response: str = ""
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float = 0.0
    latency_s: float = 0.0
    error: str = ""


class AgentRequest(BaseModel):
    purpose: Purpose
    system: str
    prompt: str
    parent_code: str
    # Per-request seed: agents that sample use it so a run is reproducible.
    seed: int
    idea: str | None = None
    error: str | None = None
    # Stable identity of this request within its run; the replay agent keys on it.
    key: str = ""

    def messages(self) -> list[dict[str, str]]:
        return [
            {"role": "system", "content": self.system},
            {"role": "user", "content": self.prompt},
        ]


class AgentReply(BaseModel):
    text: str = ""
    calls: list[LLMCall] = Field(default_factory=list)
    # Set when no usable reply came back (after the agent's own retries).
    error: str = ""


class AgentOptions(BaseModel):
    temperature: float = 0.7
    max_tokens: int = 4096
    timeout_s: float = 120.0
    retries: int = 4
    # Free-form per-agent settings from the config (e.g. api_base). A secret among them
    # (``api_key``) is a SecretStr, so a stored config holds ``REDACTED`` in its place.
    extra: dict[str, Any] = Field(default_factory=dict)

    @field_validator("extra")
    @classmethod
    def _hide_secrets(cls, v: dict[str, Any]) -> dict[str, Any]:
        return {
            k: SecretStr(x) if k in SECRET_KEYS and isinstance(x, str) else x for k, x in v.items()
        }


class AgentUnavailable(Exception):
    """Raise from ``Agent.reply`` when no request can succeed (a refused or missing API key,
    an unknown model, a request the provider rejects whatever the prompt): the run stops.

    ``calls`` are the attempts made for this request; the platform stores them before it
    stops the run, and the message (one line, naming the model and the cause) becomes the
    run's. A resume, once the cause is fixed, asks the same request again.
    """

    def __init__(self, message: str, calls: list[LLMCall] | None = None):
        super().__init__(message)
        self.calls: list[LLMCall] = list(calls or [])


class Agent:
    """Base class for agent plugins; register the class through ``register_agents``.

    An agent spec on the command line is ``NAME`` or ``NAME:ARG`` for a registered agent;
    any other string goes to the agent that sets ``accepts_model_strings`` (the LLM agent),
    so ``--agent openai/gpt-5`` works for any provider.
    """

    name: ClassVar[str]
    description: ClassVar[str] = ""
    accepts_model_strings: ClassVar[bool] = False
    # Whether this agent needs network access / provider keys.
    online: ClassVar[bool] = False

    @property
    def priced(self) -> bool:
        """Whether the USD cost of this agent's calls is known (a free agent's is: 0), so
        ``--max-cost`` can count them; an LLM agent whose model has no price says False."""
        return True

    def __init__(self, arg: str | None, options: AgentOptions):
        """``arg`` is what follows ``NAME:`` (or the whole model string); raise ValueError
        with a readable message when it is unusable: the platform shows it as one line."""
        self.arg = arg
        self.options = options

    @property
    def label(self) -> str:
        """How the agent appears in the store and on the leaderboard."""
        return f"{self.name}:{self.arg}" if self.arg else self.name

    def bind(self, store: Any) -> None:
        """Called once before the run starts, with the run's ``progressbench.store.database.Store``
        (agents that read recorded runs, like ``replay``, need it)."""

    def reply(self, request: AgentRequest) -> AgentReply:
        """The reply to ``request``, with every call made for it. A failure that is this
        request's (a timeout after the retries, an empty reply) is ``AgentReply.error``; one
        that no request can get past is ``AgentUnavailable``, which stops the run."""
        raise NotImplementedError
