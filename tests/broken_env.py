"""Environments with a plugin author's bug: a reference program that does not even parse, and
an ``assess`` that raises on every result after the reference's. Either way the run must stop
with one line naming the environment's plugin. The sandbox workers import it
(``plugin_modules``)."""

from __future__ import annotations

from typing import Any, ClassVar

from verify_env import NoisyEnv

from progressbench import hookimpl
from progressbench.contracts.environment import Assessment


class BrokenReference(NoisyEnv):
    name: ClassVar[str] = "broken-reference-test"

    def baseline(self, variant: str) -> str:
        return "def measure(rng:\n    return 1.0\n"


class AssessRaises(NoisyEnv):
    """Judges the reference, then raises: ``assess`` runs in the run's own process, so the
    count is the number of results it was given."""

    name: ClassVar[str] = "assess-raises-test"
    calls: int = 0

    def assess(
        self, raw: dict[str, Any], verified: dict[str, Any] | None, variant: str
    ) -> Assessment:
        self.calls += 1
        if self.calls > 1:
            raise KeyError("val_loss")
        return super().assess(raw, verified, variant)


@hookimpl
def register_environments(register):
    register(BrokenReference())
    register(AssessRaises())
