"""The strategy contract: the search over programs.

The run loop asks the strategy for tasks (which parent, which island, which kind of prompt),
lets it drive the agent for each task through a ``ProposalSession``, evaluates the result,
and reports it back with ``observe``. ``state``/``restore`` make a run resumable: the state is
stored with every observation.
"""

from __future__ import annotations

from typing import Any, ClassVar, Protocol

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from progressbench.contracts.agent import AgentReply, Purpose
from progressbench.contracts.environment import Feature, Objective
from progressbench.contracts.program import ProgramView
from progressbench.errors import UserError
from progressbench.run import prompts
from progressbench.run.config import describe_validation_error

__all__ = [
    "NoOptions",
    "ProgramView",
    "Proposal",
    "ProposalSession",
    "Strategy",
    "StrategyContext",
    "Task",
]


class Task(BaseModel):
    parent_id: int
    inspiration_ids: list[int] = Field(default_factory=list)
    island: int = 0
    generation: int = 0
    # Strategy-defined tag of the prompting mode ("template", "meta", ...), stored.
    mode: str = "template"
    meta: dict[str, Any] = Field(default_factory=dict)


class Proposal(BaseModel):
    """The agent's final reply for a task, plus the idea behind it, if any."""

    reply: AgentReply
    idea: str = ""


class ProposalSession(Protocol):
    """What the run loop offers a strategy while it proposes one child."""

    task: Task
    task_description: str

    def program(self, program_id: int) -> ProgramView: ...

    def ask(
        self,
        purpose: Purpose,
        system: str,
        prompt: str,
        idea: str | None = None,
        error: str | None = None,
    ) -> AgentReply: ...


class StrategyContext(BaseModel):
    objective: Objective
    features: list[Feature] = Field(default_factory=list)
    seed: int = 0
    budget: int
    workers: int = 1
    options: dict[str, Any] = Field(default_factory=dict)
    reference_id: int
    env: str = ""
    # Where a user's prompt templates for this environment live, if any.
    prompt_dir: str | None = None


class NoOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Strategy:
    """Base class for strategy plugins; register the class through ``register_strategies``."""

    name: ClassVar[str]
    description: ClassVar[str] = ""
    # Validates ``options`` from the config (strategy-specific knobs); fails loudly on typos.
    Options: ClassVar[type[BaseModel]] = NoOptions

    def __init__(self, ctx: StrategyContext):
        self.ctx = ctx
        self.options = self.check_options(ctx.options)

    @classmethod
    def check_options(cls, options: dict[str, Any]) -> BaseModel:
        """``options`` validated by ``Options``, or a one-line ``UserError`` naming the bad
        one; the run loop calls it before a run is created, so a typo costs nothing."""
        try:
            return cls.Options.model_validate(options)
        except ValidationError as exc:
            msg = describe_validation_error(exc).replace("invalid config: ", "", 1)
            raise UserError(f"invalid option for strategy {cls.name!r}: {msg}") from None

    def next_tasks(self, n: int) -> list[Task]:
        """Up to ``n`` new tasks; fewer (or none) means "wait for results first"."""
        raise NotImplementedError

    def observe(self, program: ProgramView) -> None:
        """A program reached a final status (valid, invalid or failed)."""

    def propose(self, session: ProposalSession) -> Proposal:
        """Drive the agent for one task. Default: one templated edit prompt."""
        parent = session.program(session.task.parent_id)
        inspirations = [session.program(i) for i in session.task.inspiration_ids]
        system, prompt = prompts.edit_prompt(
            session.task_description,
            parent,
            inspirations,
            self.ctx.objective,
            self.ctx.prompt_dir,
            self.ctx.env,
        )
        return Proposal(reply=session.ask("edit", system, prompt))

    def state(self) -> dict[str, Any]:
        return {}

    def restore(self, state: dict[str, Any]) -> None:
        """Reload ``state()`` output after a resume."""

    def describe(self) -> str:
        """One paragraph on what the strategy is doing now (shown by ``show``)."""
        return ""
