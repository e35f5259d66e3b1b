"""greedy: hill-climb from the best valid program found so far (a baseline for comparisons).

It climbs in rounds of ``batch`` children of the current best and moves only once the whole
round is back, so what it does depends on the seed alone: not on how many workers evaluate
the round, nor on the order in which their results arrive (a tie goes to the earlier child).
"""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field

from progressbench import ProgramView, Strategy, StrategyContext, Task


class GreedyOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    batch: int = Field(4, ge=1, le=1000, description="children of the current best per round")


class Greedy(Strategy):
    name: ClassVar[str] = "greedy"
    description: ClassVar[str] = "every child is an edit of the best valid program so far"
    Options: ClassVar[type[BaseModel]] = GreedyOptions

    def __init__(self, ctx: StrategyContext):
        super().__init__(ctx)
        self.batch: int = self.options.batch
        self.best_id = ctx.reference_id
        self.best_score: float | None = None
        self.issued = 0
        self.observed = 0
        # Where the current round began (in issued children), and its best child so far as
        # [score, -generation, id]: the largest wins, so ties go to the earlier child.
        self.round_start = 0
        self.round_best: list[Any] | None = None
        self.improvements = 0

    def next_tasks(self, n: int) -> list[Task]:
        count = min(n, self.batch - (self.issued - self.round_start))
        tasks = [Task(parent_id=self.best_id, generation=self.issued + i + 1) for i in range(count)]
        self.issued += len(tasks)
        return tasks

    def observe(self, program: ProgramView) -> None:
        if program.id == self.ctx.reference_id:
            return
        self.observed += 1
        if program.valid and program.score is not None:
            mine = [program.score, -program.generation, program.id]
            if self.round_best is None or mine[:2] > self.round_best[:2]:
                self.round_best = mine
        if self.observed == self.round_start + self.batch:
            self._next_round()

    def _next_round(self) -> None:
        found, self.round_best = self.round_best, None
        self.round_start += self.batch
        if found is not None and (self.best_score is None or found[0] > self.best_score):
            if self.best_score is not None:
                self.improvements += 1
            self.best_score, self.best_id = found[0], found[2]

    def state(self) -> dict[str, Any]:
        return {
            "best_id": self.best_id,
            "best_score": self.best_score,
            "issued": self.issued,
            "observed": self.observed,
            "round_start": self.round_start,
            "round_best": self.round_best,
            "improvements": self.improvements,
        }

    def restore(self, state: dict[str, Any]) -> None:
        self.best_id = state["best_id"]
        self.best_score = state["best_score"]
        self.issued = state["issued"]
        # A state from before rounds: every issued child counts as observed, a round begins.
        self.observed = state.get("observed", self.issued)
        self.round_start = state.get("round_start", self.issued)
        self.round_best = state.get("round_best")
        self.improvements = state["improvements"]

    def describe(self) -> str:
        return (
            f"greedy: climbing from program {self.best_id} (score {self.best_score}) in rounds "
            f"of {self.batch}; {self.improvements} improvements over {self.issued} children"
        )
