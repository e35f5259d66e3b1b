"""An environment whose reference program does not even parse: the run must stop with one
line naming the environment's plugin. The sandbox workers import it (``plugin_modules``)."""

from __future__ import annotations

from typing import ClassVar

from verify_env import NoisyEnv

from progressbench import hookimpl


class BrokenReference(NoisyEnv):
    name: ClassVar[str] = "broken-reference-test"

    def baseline(self, variant: str) -> str:
        return "def measure(rng:\n    return 1.0\n"


@hookimpl
def register_environments(register):
    register(BrokenReference())
