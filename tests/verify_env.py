"""A noisy test environment for ``progressbench verify``: a program's ``measure(rng)`` returns
one noisy loss per run, seeded by the evaluation's seed. Its objective ranks ``time`` (like
nanogpt's time to target) while ``verification()`` tests ``loss`` against a target, so the
protocol hook is exercised too. The sandbox workers import it (``plugin_modules``)."""

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
MEAN = 1.6
SPREAD = 0.01
FAIL_RATE = 0.0
# EVOLVE-BLOCK-END


def measure(rng):
    if rng.random() < FAIL_RATE:
        raise RuntimeError("flaky")
    return rng.gauss(MEAN, SPREAD)
"""


class NoisyEnv(Environment):
    name: ClassVar[str] = "noisy-test"

    def objective(self, variant: str) -> Objective:
        return Objective(metric="time", direction="minimize")

    def verification(self, variant: str) -> dict[str, Any]:
        return {"metric": "loss", "target": TARGET, "direction": "minimize", "compare": ["time"]}

    def baseline(self, variant: str) -> str:
        return BASELINE

    def run(self, program: Path, ctx: SandboxContext) -> dict[str, Any]:
        loss = load_program(program).measure(random.Random(ctx.seed))
        return {"loss": loss, "time": 10.0 * loss}

    def assess(
        self, raw: dict[str, Any], verified: dict[str, Any] | None, variant: str
    ) -> Assessment:
        loss = float(raw["loss"])
        return Assessment(valid=True, score=-loss, metrics={"loss": loss, "time": raw["time"]})


@hookimpl
def register_environments(register):
    register(NoisyEnv())
