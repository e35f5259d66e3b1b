"""Islands vs greedy vs best-of-n on circle-packing with the offline agent, equal budgets,
several seeds: best score and its spread per strategy.

    python bench/strategies.py [BUDGET] [SEEDS]
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

STRATEGIES = ("islands", "greedy", "best-of-n")


def main(budget: int = 100, seeds: int = 3) -> None:
    results: dict[str, list[float]] = {s: [] for s in STRATEGIES}
    walls: dict[str, list[float]] = {s: [] for s in STRATEGIES}
    with tempfile.TemporaryDirectory() as d:
        db = Path(d) / "bench.db"
        for strategy in STRATEGIES:
            for seed in range(seeds):
                t = time.perf_counter()
                subprocess.run(
                    [
                        sys.executable,
                        "-m",
                        "progressbench.cli",
                        "run",
                        "--env",
                        "circle-packing",
                        "--strategy",
                        strategy,
                        "--budget",
                        str(budget),
                        "--seed",
                        str(seed),
                        "--agent",
                        "offline",
                        "--db",
                        str(db),
                    ],
                    check=True,
                    capture_output=True,
                )
                walls[strategy].append(time.perf_counter() - t)
        rows = json.loads(
            subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "progressbench.cli",
                    "leaderboard",
                    "--format",
                    "json",
                    "--db",
                    str(db),
                ],
                check=True,
                capture_output=True,
                text=True,
            ).stdout
        )
        reference = rows[0]["reference"]
        for row in rows:
            results[row["strategy"]].append(row["best"])
    print(
        f"circle-packing, offline agent, budget {budget}, seeds 0..{seeds - 1}; "
        f"reference {reference:.4f}\n"
    )
    print("| strategy | mean best | std | min | max | mean wall (s) |")
    print("|---|---|---|---|---|---|")
    for s in STRATEGIES:
        v = results[s]
        std = statistics.stdev(v) if len(v) > 1 else 0.0
        print(
            f"| {s} | {statistics.mean(v):.4f} | {std:.4f} | {min(v):.4f} | {max(v):.4f} | "
            f"{statistics.mean(walls[s]):.1f} |"
        )


if __name__ == "__main__":
    args = [int(a) for a in sys.argv[1:3]]
    main(*args)
