"""A test environment for tests/sandbox/test_round_two.py, importable by the sandbox workers
(``plugin_modules``): its ``run`` leaves a file in /tmp and a SysV shared memory segment, and
its ``verify`` (a phase of its own, in a fresh child) reports whether it still sees them."""

from __future__ import annotations

import ctypes
import os
from pathlib import Path
from typing import Any, ClassVar

from progressbench import hookimpl
from progressbench.contracts.environment import Assessment, Environment, Objective, SandboxContext
from progressbench.sandbox.loader import load_program

SHM_KEY = 0x5EED77
MARKER = "/tmp/round-two-marker"


def shm_segment(key: int, create: bool) -> int:
    """shmget(key, 1 MB, IPC_CREAT if ``create``): the id, or -1 when there is none."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.shmget.argtypes = (ctypes.c_int, ctypes.c_size_t, ctypes.c_int)
    return int(libc.shmget(key, 1 << 20 if create else 0, (0o1000 | 0o600) if create else 0))


class LeftoversEnv(Environment):
    name: ClassVar[str] = "sandbox-test-leftovers"
    verifies: ClassVar[bool] = True

    def objective(self, variant: str) -> Objective:
        return Objective(metric="value", direction="maximize")

    def baseline(self, variant: str) -> str:
        return "def main():\n    return 1\n"

    def run(self, program: Path, ctx: SandboxContext) -> dict[str, Any]:
        Path(MARKER).write_text("left by the run")
        return {"value": load_program(program).main(), "shm": shm_segment(SHM_KEY, True)}

    def verify(self, program: Path, raw: dict[str, Any], ctx: SandboxContext) -> dict[str, Any]:
        return {"tmp_file": os.path.exists(MARKER), "shm": shm_segment(SHM_KEY, False)}

    def assess(
        self, raw: dict[str, Any], verified: dict[str, Any] | None, variant: str
    ) -> Assessment:
        return Assessment(valid=True, score=float(raw["value"]))


@hookimpl
def register_environments(register):
    register(LeftoversEnv())
