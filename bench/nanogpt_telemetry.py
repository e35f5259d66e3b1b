"""Telemetry overhead: the same program under the harness with telemetry on (sections,
training-loss capture, the profiler window) and off, alternating in fresh forked children.

Two figures, each the median over pairs of adjacent runs: by wall time, 1 - (tokens/s with
telemetry) / (tokens/s without); by CPU time, (CPU seconds per token with) / (without) - 1.
On a shared machine the wall-time figure swings with other processes' load; the CPU-time one,
with one thread (``--threads 1``), does not.

    python bench/nanogpt_telemetry.py [--seconds 20] [--repeats 3] [--threads 2] [--program PATH]
"""

from __future__ import annotations

import argparse
import importlib
import json
import statistics
import tempfile
from pathlib import Path
from typing import Any

from progressbench_environments.nanogpt.env import PROGRAMS, NanoGPT
from progressbench_environments.nanogpt.local import _in_child

for _module in NanoGPT.preload:  # as the warm worker does: children inherit the imports
    importlib.import_module(_module)

from progressbench_environments.nanogpt.config import make_spec  # noqa: E402
from progressbench_environments.nanogpt.harness import run_training  # noqa: E402


def one(
    program: Path, seconds: float, profile: bool, threads: int, scratch: Path
) -> dict[str, Any]:
    # The profiler window opens a quarter into the budget: past the first steps, before the end.
    options = {
        "time_budget_s": seconds,
        "ckpt_every_s": 3600,
        "profile": profile,
        "threads": threads,
        "val_tokens": 4096,
        "probe_tokens": 4096,
    }
    raw = run_training(program, make_spec("tiny", "full", 0, scratch, options))
    profiled = bool((raw["telemetry"].get("profile") or {}).get("top"))
    return {
        "tokens_per_s": raw["tokens"] / raw["train_time_s"],
        "cpu_s_per_mtok": 1e6 * raw["telemetry"]["cpu_s"] / raw["tokens"],
        "profiled": profiled,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--program", type=Path, default=PROGRAMS / "tiny.py")
    args = parser.parse_args()
    rows = []
    for i in range(args.repeats):
        pair = {}
        order = (True, False) if i % 2 == 0 else (False, True)
        for profile in order:
            with tempfile.TemporaryDirectory() as tmp, tempfile.TemporaryDirectory() as logs:
                result, error, _ = _in_child(
                    lambda p=profile: one(args.program, args.seconds, p, args.threads, Path(tmp)),
                    3600,
                    Path(logs) / "log",
                )
            if result is None:
                raise SystemExit(error)
            pair[profile] = result
        on, off = pair[True], pair[False]
        wall = 1 - on["tokens_per_s"] / off["tokens_per_s"]
        cpu = on["cpu_s_per_mtok"] / off["cpu_s_per_mtok"] - 1
        rows.append({"on": on, "off": off, "wall_overhead": wall, "cpu_overhead": cpu})
        print(
            f"on {on['tokens_per_s']:7.0f} tok/s, {on['cpu_s_per_mtok']:6.1f} CPU-s/Mtok (profiled: {on['profiled']}) | "
            f"off {off['tokens_per_s']:7.0f} tok/s, {off['cpu_s_per_mtok']:6.1f} CPU-s/Mtok | "
            f"overhead: wall {100 * wall:+.2f}%, CPU {100 * cpu:+.2f}%",
            flush=True,
        )
    summary = {
        "median_wall_overhead": round(statistics.median(r["wall_overhead"] for r in rows), 4),
        "median_cpu_overhead": round(statistics.median(r["cpu_overhead"] for r in rows), 4),
        "seconds": args.seconds,
        "threads": args.threads,
    }
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
