"""A complete third-party plugin: the ``rosenbrock`` environment and the ``lucky`` strategy.

Installed with pip, it makes ``progressbench run --env rosenbrock --strategy lucky`` work with
no change to progressbench itself.
"""

import math
from pathlib import Path

from progressbench import (
    Assessment,
    Environment,
    Objective,
    Resources,
    SandboxContext,
    Strategy,
    Task,
    hookimpl,
    load_program,
)

BASELINE = """\
# EVOLVE-BLOCK-START
X = -1.2  # knob: [-2.0, 2.0]
Y = 1.0  # knob: [-1.0, 3.0]
# EVOLVE-BLOCK-END


def solve():
    return X, Y
"""


class Rosenbrock(Environment):
    name = "rosenbrock"
    description = "Find (x, y) minimising the Rosenbrock function (1-x)^2 + 100(y-x^2)^2."

    def objective(self, variant):
        return Objective(metric="loss", direction="minimize", target=0.0, records={"optimum": 0.0})

    def baseline(self, variant):
        return BASELINE

    def resources(self, variant):
        return Resources(cpus=1, seconds=10, smoke_seconds=5, memory_mb=512)

    def run(self, program: Path, ctx: SandboxContext):
        x, y = load_program(program).solve()
        return {"x": float(x), "y": float(y)}

    def assess(self, raw, verified, variant):
        x, y = raw.get("x"), raw.get("y")
        if not all(isinstance(v, float) and math.isfinite(v) for v in (x, y)):
            return Assessment(valid=False, reason="solve() must return two finite numbers")
        loss = (1 - x) ** 2 + 100 * (y - x * x) ** 2
        # The score is "higher is better" for every strategy.
        return Assessment(valid=True, score=-loss, metrics={"loss": loss})


class Lucky(Strategy):
    """Always mutate the most recent valid program (a deliberately naive strategy)."""

    name = "lucky"
    last_valid = None

    def next_tasks(self, n):
        parent = self.last_valid or self.ctx.reference_id
        return [Task(parent_id=parent) for _ in range(n)]

    def observe(self, program):
        if program.valid:
            self.last_valid = program.id

    def state(self):
        return {"last_valid": self.last_valid}

    def restore(self, state):
        self.last_valid = state["last_valid"]


@hookimpl
def register_environments(register):
    register(Rosenbrock())


@hookimpl
def register_strategies(register):
    register(Lucky)
