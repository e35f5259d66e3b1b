"""Evaluate programs under the nanogpt harness without the platform: smoke, run and verify each
in a fresh child forked from this (pristine) process, then assess. For program authors,
benches and tests; the platform's evaluator adds the sandbox (limits, uid, no network).

    python -m progressbench_environments.nanogpt.local PROGRAM.py [...] [--variant tiny]
        [--seed 0] [--option key=value ...] [--no-smoke] [--json]
"""

from __future__ import annotations

import argparse
import fcntl
import importlib
import json
import os
import signal
import sys
import tempfile
import time
import traceback
from pathlib import Path
from typing import Any

from progressbench import (
    SANDBOX_KEY,
    Assessment,
    SandboxContext,
    adopt_orphans,
    end_children,
    install_witness,
    open_witness,
    read_witness,
)

from .env import NanoGPT

LOG_CHARS = 4000


def in_child(fn: Any, timeout: float, log: Path) -> tuple[dict[str, Any] | None, str, float]:
    """Run ``fn()`` in a forked child, its output into ``log``: (its dict, or None; the error
    text; seconds). The dict gets the CPU of every process the phase ran under
    ``SANDBOX_KEY``, counted as the sandbox counts it: the child adopts what its descendants
    orphan and ends whatever is left before it reports, so all of it is reaped below it; and
    the record of the phase's witness, as the sandbox hands it over (``open_witness``)."""
    read_end, write_end = os.pipe()
    witness = open_witness()
    started = time.perf_counter()
    pid = os.fork()
    if pid == 0:
        os.close(read_end)
        write_end = fcntl.fcntl(write_end, fcntl.F_DUPFD_CLOEXEC, 64)  # clear of the witness's
        install_witness(witness)
        adopt_orphans()
        out = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        os.dup2(out, 1)
        os.dup2(out, 2)
        signal.alarm(max(1, int(timeout)))
        try:
            payload = json.dumps({"ok": fn()})
        except BaseException:
            payload = json.dumps({"error": traceback.format_exc()[-4000:]})
        end_children()
        with os.fdopen(write_end, "w") as out:
            out.write(payload)
        os._exit(0)
    os.close(write_end)
    with os.fdopen(read_end) as inp:
        text = inp.read()
    _, status, usage = os.wait4(pid, 0)
    seconds = time.perf_counter() - started
    record = read_witness(witness)
    os.close(witness)
    if not text:
        return None, f"child died (status {status})", seconds
    message = json.loads(text)
    result = message.get("ok")
    if isinstance(result, dict):
        result[SANDBOX_KEY] = {"cpu_s": round(usage.ru_utime + usage.ru_stime, 4)}
        if record is not None:
            result[SANDBOX_KEY]["witness"] = record
    return result, message.get("error", ""), seconds


def evaluate(
    program: Path,
    variant: str = "tiny",
    seed: int = 0,
    options: dict[str, Any] | None = None,
    smoke: bool = True,
) -> dict[str, Any]:
    """One evaluation as the platform runs it; returns the phases' outputs and the assessment."""
    env = NanoGPT()
    for module in env.preload:  # as the platform's warm worker does, before any fork
        importlib.import_module(module)
    options = options or {}
    resources = env.resources(variant)
    out: dict[str, Any] = {"program": str(program)}
    with (
        tempfile.TemporaryDirectory(prefix="nanogpt-") as tmp,
        tempfile.TemporaryDirectory() as logs,
    ):
        scratch = Path(tmp)
        home = os.environ.get("HOME")

        def context(mode: str) -> SandboxContext:
            return SandboxContext(
                variant=variant,
                phase=mode,
                seed=seed,
                scratch=scratch,
                time_limit=resources.seconds,
                options=options,
            )

        def phase(mode: str, call: Any, limit: float) -> dict[str, Any] | None:
            def inside() -> dict[str, Any]:
                os.chdir(scratch)
                os.environ["HOME"] = str(scratch)
                return call(context(mode))

            log = Path(logs) / f"{mode}.log"
            result, error, seconds = in_child(inside, limit, log)
            out[f"{mode}_s"] = round(seconds, 3)
            out[f"{mode}_log"] = log.read_text(errors="replace")[-LOG_CHARS:]
            if error:
                out[f"{mode}_error"] = error
            return result

        try:
            if smoke:
                out["smoke"] = phase(
                    "smoke", lambda ctx: env.smoke(program, ctx), resources.smoke_seconds
                )
                if out["smoke"] is None:
                    out["assessment"] = Assessment(
                        valid=False, reason=f"smoke failed: {out['smoke_error']}"
                    ).model_dump()
                    return out
            raw = phase("full", lambda ctx: env.run(program, ctx), resources.seconds)
            verified = None
            if raw is not None:
                verified = phase(
                    "verify", lambda ctx: env.verify(program, raw, ctx), resources.seconds
                )
            out["raw"], out["verified"] = raw, verified
            if raw is None:
                assessment = Assessment(
                    valid=False, reason=f"run failed: {out.get('full_error', '')}"
                )
            else:
                assessment = env.assess(raw, verified, variant)
            out["assessment"] = assessment.model_dump()
        finally:
            if home is not None:
                os.environ["HOME"] = home
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m progressbench_environments.nanogpt.local")
    parser.add_argument("programs", nargs="+", type=Path)
    parser.add_argument("--variant", default="tiny")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--option", action="append", default=[], help="key=value (JSON value)")
    parser.add_argument("--no-smoke", action="store_true")
    parser.add_argument("--json", action="store_true", help="one JSON object per program")
    args = parser.parse_args(argv)
    options = {}
    for item in args.option:
        key, _, value = item.partition("=")
        try:
            options[key] = json.loads(value)
        except ValueError:
            options[key] = value
    env = NanoGPT()
    for program in args.programs:
        result = evaluate(
            program.resolve(), args.variant, args.seed, options, smoke=not args.no_smoke
        )
        if args.json:
            print(json.dumps(result), flush=True)
            continue
        a = result["assessment"]
        print(f"{program}: {'valid' if a['valid'] else 'INVALID'} score={a['score']} {a['reason']}")
        for key in sorted(a["metrics"]):
            print(f"  {key} = {a['metrics'][key]:.6g}")
        print(env.format_telemetry(a["telemetry"]))
        print(
            f"  phases: smoke {result.get('smoke_s')}s, run {result.get('full_s')}s, verify "
            f"{result.get('verify_s')}s"
        )
        for mode in ("smoke", "full", "verify"):
            if f"{mode}_error" in result:
                print(f"  {mode} error: {result[f'{mode}_error']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
