"""A test environment for ``verify``'s paired "faster" verdict: a program's cost is its steps to
the target (set by the seed, as nanogpt's are for a program and seed) times its per-step cost,
with a little measurement noise, drawn from the seed and the program's text (so that a test
that fixes the seeds is deterministic, and two copies of one program differ only by noise).
The seed's steps vary far more than the noise: only a test that pairs program and reference
on one seed sees a small planted speedup. The sandbox workers import it
(``plugin_modules``)."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any, ClassVar

from progressbench import hookimpl
from progressbench.contracts.environment import Assessment, Environment, Objective, SandboxContext
from progressbench.sandbox.loader import load_program

TARGET = 1.5
BASELINE = """\
# EVOLVE-BLOCK-START
STEP_COST = 0.1
STEPS_FACTOR = 1.0
NOISE = 0.005
# EVOLVE-BLOCK-END


def measure(seed, rng):
    steps = round(STEPS_FACTOR * (400 + seed % 200))
    return steps, steps * STEP_COST * (1 + rng.gauss(0, NOISE))
"""


class PairedEnv(Environment):
    name: ClassVar[str] = "paired-test"

    def objective(self, variant: str) -> Objective:
        return Objective(metric="cost", direction="minimize")

    def verification(self, variant: str) -> dict[str, Any]:
        return {
            "metric": "loss",
            "target": TARGET,
            "direction": "minimize",
            "compare": ["cost", "steps"],
            "faster": "cost",
        }

    def baseline(self, variant: str) -> str:
        return BASELINE

    def run(self, program: Path, ctx: SandboxContext) -> dict[str, Any]:
        noise = random.Random(f"{ctx.seed}:{Path(program).read_text()}")
        steps, cost = load_program(program).measure(ctx.seed, noise)
        return {"steps": steps, "cost": cost}

    def assess(
        self, raw: dict[str, Any], verified: dict[str, Any] | None, variant: str
    ) -> Assessment:
        metrics = {"loss": 1.4, "cost": float(raw["cost"]), "steps": float(raw["steps"])}
        return Assessment(valid=True, score=-metrics["cost"], metrics=metrics)


@hookimpl
def register_environments(register):
    register(PairedEnv())
