"""Whole evaluations of the tiny reference program, as the platform runs them (smoke, run and
verify in fresh children forked from a process that preloaded what the warm worker does):
time to target, the final numbers, and how long each phase took.

    python bench/nanogpt_reference.py [--seeds 0 1 2] [--program PATH]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

from progressbench_environments.nanogpt.env import PROGRAMS, NanoGPT
from progressbench_environments.nanogpt.local import evaluate


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--program", type=Path, default=PROGRAMS / "tiny.py")
    args = parser.parse_args()
    rows = []
    for seed in args.seeds:
        started = time.perf_counter()
        result = evaluate(args.program.resolve(), "tiny", seed)
        total = time.perf_counter() - started
        a, raw = result["assessment"], result["raw"] or {}
        tel = raw.get("telemetry", {})
        row = {
            "seed": seed,
            "valid": a["valid"],
            "cost_to_target_s": a["metrics"].get("cost_to_target_s"),
            "time_to_target_s": a["metrics"].get("time_to_target_s"),
            "steps_to_target": a["metrics"].get("steps_to_target"),
            "val_loss": a["metrics"].get("val_loss"),
            "best_val_loss": a["metrics"].get("best_val_loss"),
            "tokens_per_s": tel.get("tokens_per_s"),
            "cpu_cores_busy": tel["cpu_s"] / raw["train_time_s"] if tel.get("cpu_s") else None,
            "smoke_s": result.get("smoke_s"),
            "run_s": result.get("full_s"),
            "verify_s": result.get("verify_s"),
            "evaluation_s": total,
        }
        rows.append(row)
        print(NanoGPT().format_telemetry(a["telemetry"]))
        print(
            json.dumps({k: round(v, 3) if isinstance(v, float) else v for k, v in row.items()}),
            flush=True,
        )
    reached = [r["time_to_target_s"] for r in rows if r["time_to_target_s"] is not None]
    print(
        json.dumps(
            {
                "reached": f"{len(reached)}/{len(rows)}",
                "median_time_to_target_s": statistics.median(reached) if reached else None,
                "median_cost_to_target_s": statistics.median(
                    r["cost_to_target_s"] for r in rows if r["cost_to_target_s"] is not None
                )
                if reached
                else None,
                "median_evaluation_s": statistics.median(r["evaluation_s"] for r in rows),
            }
        )
    )


if __name__ == "__main__":
    main()
