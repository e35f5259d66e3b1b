"""The guard contract: checks that reject programs gaming the metric.

A ``static`` guard sees the code before it runs; a ``result`` guard sees what the evaluation
produced. Every verdict is stored and its reason is fed back to the agent.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar, Literal

from pydantic import BaseModel, Field

if TYPE_CHECKING:
    from progressbench.environment import Assessment, Environment
    from progressbench.evaluator import EvalOutcome


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

    def applies(self, env: Environment, variant: str) -> bool:
        return True

    def check_program(self, code: str, reference: str, env: Environment, variant: str) -> Verdict:
        """Static stage: ``reference`` is the environment's baseline program."""
        return self.ok()

    def check_result(
        self, code: str, outcome: EvalOutcome, assessment: Assessment, env: Environment, variant: str
    ) -> Verdict:
        return self.ok()

    def ok(self) -> Verdict:
        return Verdict(guard=self.name, passed=True)

    def reject(self, reason: str, rule: str = "", line: int | None = None, **details: Any) -> Verdict:
        return Verdict(guard=self.name, passed=False, reason=reason, rule=rule, line=line, details=details)
