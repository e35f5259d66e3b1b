"""``progressbench compare``: contenders (agent x strategy) on one environment, each run with the
same seeds and budget, then their best results side by side with Welch's t-test against the
first contender.

Every run is an ordinary run in the store (the leaderboard shows them). Running the same
comparison again reuses the finished runs whose settings match and resumes unfinished ones,
so an interrupted comparison continues where it stopped.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable
from typing import Any

from pydantic import BaseModel

from progressbench import plugins
from progressbench.analysis.stats import welch
from progressbench.errors import UserError
from progressbench.run.config import RunConfig
from progressbench.store.database import Run, Store

# Settings that do not change what a run computes: a matching run may differ in them.
_INCIDENTAL = ("workers", "max_cost")


class Contender(BaseModel):
    agent: str
    strategy: str
    runs: list[str]
    best: list[float | None]

    @property
    def label(self) -> str:
        return f"{self.agent} / {self.strategy}"


class Comparison(BaseModel):
    env: str
    variant: str
    metric: str
    direction: str
    budget: int
    seeds: list[int]
    reference: float | None
    contenders: list[Contender]

    def _improvement(self, value: float, reference: float) -> float:
        return value - reference if self.direction == "maximize" else reference - value

    def rows(self) -> list[dict[str, Any]]:
        """One summary row per contender; the t-test is against the first contender."""
        first = [b for b in self.contenders[0].best if b is not None] if self.contenders else []
        rows = []
        for i, c in enumerate(self.contenders):
            values = [b for b in c.best if b is not None]
            row: dict[str, Any] = {
                "agent": c.agent,
                "strategy": c.strategy,
                "runs": len(c.runs),
                "with a result": len(values),
                "mean best": statistics.fmean(values) if values else None,
                "std": statistics.stdev(values) if len(values) > 1 else None,
                "min": min(values) if values else None,
                "max": max(values) if values else None,
                "vs reference": (
                    self._improvement(statistics.fmean(values), self.reference)
                    if values and self.reference is not None
                    else None
                ),
                "p (better than first)": None,
            }
            if i > 0 and len(values) >= 2 and len(first) >= 2:
                row["p (better than first)"] = welch(values, first, self.direction).p  # type: ignore[arg-type]
            rows.append(row)
        return rows


def _identity(config: RunConfig) -> dict[str, Any]:
    data = config.model_dump(mode="json")
    for key in _INCIDENTAL:
        data.pop(key, None)
    return data


def _matching(store: Store, config: RunConfig) -> Run | None:
    """The most recent run with exactly these settings, if any."""
    wanted = _identity(config)
    found = None
    for run in store.runs(config.env):
        try:
            stored = RunConfig.model_validate(run.config)
        except ValueError:  # a run stored by another version: never a match
            continue
        if _identity(stored) == wanted and run.status != "failed":
            found = run
    return found


def compare(
    store: Store,
    base: RunConfig,
    agents: list[str],
    strategies: list[str],
    seeds: int,
    execute: Callable[[RunConfig, Run | None], Run],
    say: Callable[[str], None] = print,
) -> Comparison:
    """Run (or reuse, or resume) every contender on seeds 0..seeds-1; ``execute`` runs one
    config (resuming the given run when there is one) and returns the finished run."""
    if seeds < 1:
        raise UserError("--seeds must be at least 1")
    env = plugins.get_environment(base.env)
    variant = env.pick_variant(base.variant)
    problem = env.unavailable(variant)
    if problem:
        raise UserError(problem)
    base = base.model_copy(update={"variant": variant})
    objective = env.objective(variant)
    pairs = [(a, s) for a in agents for s in strategies]
    if len(set(pairs)) != len(pairs):
        raise UserError("each agent and strategy may be named once")
    contenders = []
    reference: float | None = None
    total, done = len(pairs) * seeds, 0
    for agent, strategy in pairs:
        contender = Contender(agent=agent, strategy=strategy, runs=[], best=[])
        for seed in range(seeds):
            config = RunConfig.model_validate(
                {
                    **base.model_dump(),
                    "agents": [agent],
                    "agent_weights": [],
                    "strategy": strategy,
                    "seed": seed,
                }
            )
            existing = _matching(store, config)
            done += 1
            where = f"[{done}/{total}] {agent} / {strategy}, seed {seed}"
            if existing is not None and existing.status == "finished":
                run = existing
                say(f"{where}: reusing finished run {run.id}")
            else:
                if existing is not None:
                    say(f"{where}: resuming run {existing.id}")
                else:
                    say(f"{where}: new run")
                run = execute(config, existing)
            best = run.best_metric
            contender.runs.append(run.id)
            contender.best.append(best if best is not None and math.isfinite(best) else None)
            if reference is None:
                reference = run.reference_metric
            shown = f"{best:.6g}" if best is not None else "none"
            say(f"{where}: best {objective.metric} {shown} (run {run.id}, {run.status})")
        contenders.append(contender)
    return Comparison(
        env=base.env,
        variant=variant,
        metric=objective.metric,
        direction=objective.direction,
        budget=base.budget,
        seeds=list(range(seeds)),
        reference=reference,
        contenders=contenders,
    )
