"""``progressbench compare``: contenders (agent x strategy) on one environment, each run with the
same seeds and budget, then their best results side by side with Welch's t-test against the
first contender.

Every run is an ordinary run in the store (the leaderboard shows them). Running the same
comparison again reuses the finished runs whose settings match and resumes unfinished ones,
so an interrupted comparison continues where it stopped.
"""

from __future__ import annotations

import json
import math
import statistics
from collections.abc import Callable, Sequence
from typing import Any, Literal

from pydantic import BaseModel

from progressbench import plugins
from progressbench.analysis.stats import welch
from progressbench.contracts.environment import Objective, format_score
from progressbench.errors import UserError
from progressbench.run.agents import OFFLINE
from progressbench.run.config import RunConfig
from progressbench.store import Run, Store

# Settings that do not change what a run computes: a matching run may differ in them.
_INCIDENTAL = ("workers", "max_cost")
# What an interrupted comparison prints: the same command continues it.
RESUME_HINT = (
    "\ninterrupted; run the same command again to continue (finished runs are reused, the "
    "interrupted one resumes)"
)


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
    direction: Literal["maximize", "minimize"]
    budget: int
    seeds: list[int]
    reference: float | None
    contenders: list[Contender]

    def rows(self) -> list[dict[str, Any]]:
        """One summary row per contender; the t-test is against the first contender."""
        objective = Objective(metric=self.metric, direction=self.direction)
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
                    objective.improvement(statistics.fmean(values), self.reference)
                    if values and self.reference is not None
                    else None
                ),
                "p (better than first)": None,
            }
            if i > 0 and len(values) >= 2 and len(first) >= 2:
                row["p (better than first)"] = welch(values, first, self.direction).p
            rows.append(row)
        return rows


def _identity(config: RunConfig, variant: str | None) -> dict[str, Any]:
    """What a run computes, as settings: defaults spelt out (the variant the run used, the
    offline agent when none was named), so `progressbench run`'s runs match too."""
    data = config.model_dump(mode="json")
    for key in _INCIDENTAL:
        data.pop(key, None)
    data["variant"] = data["variant"] or variant
    data["agents"] = data["agents"] or [OFFLINE]
    return data


def _matching(store: Store, config: RunConfig) -> Run | None:
    """The most recent run with exactly these settings, if any."""
    wanted = _identity(config, config.variant)
    found = None
    for run in store.runs(config.env):
        try:
            stored = RunConfig.model_validate(run.config)
        except ValueError:  # a run stored by another version: never a match
            continue
        if _identity(stored, run.variant) == wanted and run.status != "failed":
            found = run
    return found


def contenders(
    base: RunConfig, agents: Sequence[str], strategies: Sequence[str]
) -> tuple[list[str], list[str]]:
    """The agents and strategies to pit against each other: those named, else the config's
    (its agents, or the offline one; its strategy)."""
    return list(agents) or base.agents or ["offline"], list(strategies) or [base.strategy]


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
    problem = env.unavailable(variant, base.env_options)
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
            config = _contender_config(base, agent, strategy, seed)
            done += 1
            where = f"[{done}/{total}] {agent} / {strategy}, seed {seed}"
            run = _run_once(store, config, execute, say, where)
            best = run.best_metric
            contender.runs.append(run.id)
            contender.best.append(best if best is not None and math.isfinite(best) else None)
            if reference is None:
                reference = run.reference_metric
            shown = format_score(best, missing="none")
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


def _contender_config(base: RunConfig, agent: str, strategy: str, seed: int) -> RunConfig:
    """``base`` with one agent (no ensemble weights), one strategy and one seed."""
    changes = {"agents": [agent], "agent_weights": [], "strategy": strategy, "seed": seed}
    return RunConfig.model_validate({**base.model_dump(), **changes})


def _run_once(
    store: Store,
    config: RunConfig,
    execute: Callable[[RunConfig, Run | None], Run],
    say: Callable[[str], None],
    where: str,
) -> Run:
    """The finished run with exactly this config: reused when stored, else resumed or new."""
    existing = _matching(store, config)
    if existing is not None and existing.status == "finished":
        say(f"{where}: reusing finished run {existing.id}")
        return existing
    if existing is not None:
        say(f"{where}: resuming run {existing.id}")
    else:
        say(f"{where}: new run")
    return execute(config, existing)


def render(result: Comparison, fmt: str) -> str:
    """The comparison as JSON (every run and the summary rows), or a headed table."""
    if fmt == "json":
        return json.dumps({**result.model_dump(), "summary": result.rows()}, indent=2, default=str)
    from tabulate import tabulate

    head = (
        f"{result.env} ({result.variant}) - best {result.metric} "
        f"({result.direction}d), budget {result.budget}, seeds {len(result.seeds)}, "
        f"reference {format_score(result.reference)}"
    )
    table = tabulate(
        result.rows(),
        headers="keys",
        tablefmt="github" if fmt == "markdown" else "simple",
        floatfmt=".6g",
        missingval="-",
    )
    return f"{head}\n{table}"
