"""greedy: hill-climb from the best valid program found so far (a baseline for comparisons)."""

from __future__ import annotations

from typing import Any, ClassVar

from progressbench import ProgramView, Strategy, StrategyContext, Task


class Greedy(Strategy):
    name: ClassVar[str] = "greedy"
    description: ClassVar[str] = "every child is an edit of the best valid program so far"

    def __init__(self, ctx: StrategyContext):
        super().__init__(ctx)
        self.best_id = ctx.reference_id
        self.best_score: float | None = None
        self.issued = 0
        self.improvements = 0

    def next_tasks(self, n: int) -> list[Task]:
        tasks = [Task(parent_id=self.best_id, generation=self.issued + i + 1) for i in range(n)]
        self.issued += n
        return tasks

    def observe(self, program: ProgramView) -> None:
        if not program.valid or program.score is None:
            return
        if self.best_score is None or program.score > self.best_score:
            if self.best_score is not None:
                self.improvements += 1
            self.best_id, self.best_score = program.id, program.score

    def state(self) -> dict[str, Any]:
        return {
            "best_id": self.best_id,
            "best_score": self.best_score,
            "issued": self.issued,
            "improvements": self.improvements,
        }

    def restore(self, state: dict[str, Any]) -> None:
        self.best_id = state["best_id"]
        self.best_score = state["best_score"]
        self.issued = state["issued"]
        self.improvements = state["improvements"]

    def describe(self) -> str:
        return (
            f"greedy: climbing from program {self.best_id} (score {self.best_score}); "
            f"{self.improvements} improvements over {self.issued} children"
        )
