"""best-of-n: independent children of the reference; the best one wins (a baseline)."""

from __future__ import annotations

from typing import Any, ClassVar

from progressbench import Strategy, Task


class BestOfN(Strategy):
    name: ClassVar[str] = "best-of-n"
    description: ClassVar[str] = "every child is an independent edit of the reference program"

    issued = 0

    def next_tasks(self, n: int) -> list[Task]:
        tasks = [Task(parent_id=self.ctx.reference_id, generation=1) for _ in range(n)]
        self.issued += n
        return tasks

    def state(self) -> dict[str, Any]:
        return {"issued": self.issued}

    def restore(self, state: dict[str, Any]) -> None:
        self.issued = state["issued"]

    def describe(self) -> str:
        return f"best-of-n: {self.issued} independent children of the reference"
