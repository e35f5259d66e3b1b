"""A test environment that declares guard rules: a protected name, a function programs may
replace if equivalent (``softmax``), and a quantity its verification must agree on. The
sandbox workers import it too (the local evaluator's ``plugin_modules``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from progressbench import hookimpl
from progressbench.contracts.environment import Assessment, Environment, Objective, SandboxContext
from progressbench.sandbox.loader import load_program

BASELINE = """\
import numpy as np

# EVOLVE-BLOCK-START
SCALE = 1.0  # knob: [0.5, 2.0]
# EVOLVE-BLOCK-END


def main():
    return SCALE
"""


def reference_softmax(x: np.ndarray) -> np.ndarray:
    shifted = x - x.max(axis=-1, keepdims=True)
    e = np.exp(shifted)
    return e / e.sum(axis=-1, keepdims=True)


def softmax_inputs(rng: np.random.Generator) -> tuple[np.ndarray]:
    shape = (int(rng.integers(1, 5)), int(rng.integers(2, 9)))
    return (rng.normal(size=shape) * 20,)


class IntegrityTestEnv(Environment):
    name: ClassVar[str] = "integrity-test"
    verifies: ClassVar[bool] = True

    def objective(self, variant: str) -> Objective:
        return Objective(metric="value", direction="maximize")

    def baseline(self, variant: str) -> str:
        return BASELINE

    def guard_rules(self, variant: str) -> dict[str, Any]:
        return {
            "protected_names": ["harness_value", "time.perf_counter"],
            "equivalence": {
                "softmax": {
                    "reference": f"{__name__}:reference_softmax",
                    "inputs": f"{__name__}:softmax_inputs",
                    "trials": 8,
                    "rtol": 1e-6,
                    "atol": 1e-9,
                }
            },
            "agreement": {"value": {"atol": 1e-6}},
        }

    def run(self, program: Path, ctx: SandboxContext) -> dict[str, Any]:
        return {"value": float(load_program(program).main())}

    def verify(self, program: Path, raw: dict[str, Any], ctx: SandboxContext) -> dict[str, Any]:
        return {"value": float(load_program(program).main())}

    def assess(
        self, raw: dict[str, Any], verified: dict[str, Any] | None, variant: str
    ) -> Assessment:
        return Assessment(valid=True, score=raw["value"], metrics={"value": raw["value"]})


@hookimpl
def register_environments(register):
    register(IntegrityTestEnv())
