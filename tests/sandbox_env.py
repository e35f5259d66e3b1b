"""Test environments for tests/sandbox/test_sandbox.py, importable by the sandbox workers
too (the local evaluator's ``plugin_modules`` option makes them import and register this
module)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar

from progressbench import hookimpl, spawn_witness, write_witness
from progressbench.contracts.environment import (
    Assessment,
    Environment,
    Objective,
    Resources,
    SandboxContext,
)
from progressbench.sandbox.loader import load_program


def probe(program: Path, ctx: SandboxContext) -> dict[str, Any]:
    """A ``call`` job's entry: what the child it runs in looks like."""
    return {"uid": os.getuid(), "mode": ctx.phase, "args": ctx.options.get("args"),
            "program": program.read_text()}  # fmt: skip


class SandboxTestEnv(Environment):
    """``run`` returns ``{"value": main()}`` of the candidate program."""

    name: ClassVar[str] = "sandbox-test"

    def objective(self, variant: str) -> Objective:
        return Objective(metric="value", direction="maximize")

    def baseline(self, variant: str) -> str:
        return "def main():\n    return 1\n"

    def run(self, program: Path, ctx: SandboxContext) -> dict[str, Any]:
        return {"value": load_program(program).main()}

    def assess(
        self, raw: dict[str, Any], verified: dict[str, Any] | None, variant: str
    ) -> Assessment:
        return Assessment(valid=True, score=float(raw["value"]))


class SandboxVerifyEnv(SandboxTestEnv):
    """Also verifies: reports its own pid and what ``run`` left in scratch."""

    name: ClassVar[str] = "sandbox-test-verify"
    verifies: ClassVar[bool] = True

    def run(self, program: Path, ctx: SandboxContext) -> dict[str, Any]:
        return {"value": load_program(program).main(), "pid": os.getpid()}

    def verify(self, program: Path, raw: dict[str, Any], ctx: SandboxContext) -> dict[str, Any]:
        artifact = ctx.scratch / "artifact.txt"
        return {
            "pid": os.getpid(),
            "mode": ctx.phase,
            "artifact": artifact.read_text() if artifact.exists() else None,
            "raw_value": raw.get("value"),
        }


class SandboxRawEnv(SandboxTestEnv):
    """``run`` returns ``main()`` itself as the raw result."""

    name: ClassVar[str] = "sandbox-test-raw"

    def run(self, program: Path, ctx: SandboxContext) -> dict[str, Any]:
        return dict(load_program(program).main())


class SandboxWitnessEnv(SandboxTestEnv):
    """Its ``run`` forks a witness before the program runs, which writes its record once the
    program is done; ``verify`` returns what it sees under the sandbox's key."""

    name: ClassVar[str] = "sandbox-test-witness"
    verifies: ClassVar[bool] = True

    def run(self, program: Path, ctx: SandboxContext) -> dict[str, Any]:
        done_r, done_w = os.pipe()

        def main(witness: int | None) -> None:
            os.read(done_r, 1)
            if witness is not None:
                write_witness(witness, {"by": "witness", "pid": os.getpid()})

        pid = spawn_witness(main, keep=(done_r,))
        os.close(done_r)
        value = load_program(program).main()
        os.write(done_w, b"x")
        os.waitpid(pid, 0)
        return {"value": value, "witness_pid": pid, "sandbox": {"witness": {"by": "program"}}}

    def verify(self, program: Path, raw: dict[str, Any], ctx: SandboxContext) -> dict[str, Any]:
        return {"seen": raw.get("sandbox")}


class SandboxGpuEnv(SandboxTestEnv):
    """Declares a GPU and the task limit GPU training needs."""

    name: ClassVar[str] = "sandbox-test-gpu"

    def resources(self, variant: str) -> Resources:
        return Resources(gpus=1, processes=300)


class SandboxDataEnv(SandboxTestEnv):
    """Its data lives where the run's ``data_dir`` option says."""

    name: ClassVar[str] = "sandbox-test-data"

    def readable_paths(self, variant: str, options: Mapping[str, Any] | None = None) -> list[str]:
        return [str((options or {})["data_dir"])] if (options or {}).get("data_dir") else []


class SandboxTorchEnv(SandboxTestEnv):
    name: ClassVar[str] = "sandbox-test-torch"
    preload: ClassVar[tuple[str, ...]] = ("torch",)


class SandboxBrokenEnv(SandboxTestEnv):
    """Its workers cannot start: a preload module that does not exist."""

    name: ClassVar[str] = "sandbox-test-broken"
    preload: ClassVar[tuple[str, ...]] = ("progressbench_no_such_module",)


@hookimpl
def register_environments(register):
    register(SandboxTestEnv())
    register(SandboxVerifyEnv())
    register(SandboxRawEnv())
    register(SandboxWitnessEnv())
    register(SandboxGpuEnv())
    register(SandboxDataEnv())
    register(SandboxTorchEnv())
    register(SandboxBrokenEnv())
