"""The run's counters, as the progress line and the run row show them."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from progressbench.run.session import CostMeter
from progressbench.store.tables import Program


@dataclass
class Stats:
    done: int = 0
    valid: int = 0
    failed: int = 0
    retries: int = 0
    env_errors: int = 0
    best_id: int | None = None
    best_score: float | None = None
    best_metric: float | None = None
    meter: CostMeter = field(default_factory=CostMeter, repr=False)

    @property
    def cost(self) -> float:
        """LLM spend so far (USD)."""
        return self.meter.spent

    def count(
        self, program: Program, status: str, valid: bool, score: float | None, metric: float | None
    ) -> dict[str, Any]:
        """One more child in the counters; the run's fields that show them."""
        self.done += 1
        self.valid += int(valid)
        self.failed += int(status in ("failed", "rejected"))
        self.retries += program.retries
        if valid and score is not None and (self.best_score is None or score > self.best_score):
            self.best_id, self.best_score, self.best_metric = program.id, score, metric
        return dict(
            n_children=self.done,
            n_valid=self.valid,
            n_failed=self.failed,
            n_retries=self.retries,
            cost_usd=self.cost,
            best_program_id=self.best_id,
            best_score=self.best_score,
            best_metric=self.best_metric,
        )
