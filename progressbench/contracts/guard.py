"""The guard contract: checks that reject programs gaming the metric.

A ``static`` guard sees the code before it runs; a ``result`` guard sees what the evaluation
produced. Every verdict is stored and its reason is fed back to the agent.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from pydantic import BaseModel, Field

if TYPE_CHECKING:
    from progressbench.contracts.environment import Assessment, Environment
    from progressbench.contracts.evaluator import EvalJob, EvalOutcome

# The run's evaluator, for guards that must execute candidate code (``Guard.uses_sandbox``).
Sandbox = Callable[["EvalJob"], "EvalOutcome"]


class Verdict(BaseModel):
    guard: str
    passed: bool
    reason: str = ""
    rule: str = ""
    line: int | None = None
    details: dict[str, Any] = Field(default_factory=dict)


class Guard:
    name: ClassVar[str]
    stage: ClassVar[Literal["static", "result"]]
    description: ClassVar[str] = ""
    # False: the guard runs only when a run names it in ``guards`` (e.g. one that costs money).
    default_enabled: ClassVar[bool] = True
    # True: the static stage passes ``sandbox``, the run's evaluator, so the guard can run
    # candidate code isolated (an ``EvalJob`` with mode "call"), never in the platform.
    uses_sandbox: ClassVar[bool] = False

    def applies(self, env: Environment, variant: str) -> bool:
        return True

    def check_program(
        self,
        code: str,
        reference: str,
        env: Environment,
        variant: str,
        sandbox: Sandbox | None = None,
    ) -> Verdict:
        """Static stage: ``reference`` is the environment's baseline program; ``sandbox`` is
        given to guards with ``uses_sandbox`` only."""
        return self.ok()

    def check_result(
        self,
        code: str,
        outcome: EvalOutcome,
        assessment: Assessment,
        env: Environment,
        variant: str,
    ) -> Verdict:
        return self.ok()

    def ok(self) -> Verdict:
        return Verdict(guard=self.name, passed=True)

    def reject(
        self, reason: str, rule: str = "", line: int | None = None, **details: Any
    ) -> Verdict:
        return Verdict(
            guard=self.name, passed=False, reason=reason, rule=rule, line=line, details=details
        )
