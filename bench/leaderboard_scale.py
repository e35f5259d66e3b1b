"""Leaderboard time over a database of many programs (target: <= 1 s for 10,000 programs).

Fills a fresh SQLite database with RUNS runs of PROGRAMS/RUNS programs each (with evaluations),
then times `progressbench leaderboard` end to end in a fresh process.

    python bench/leaderboard_scale.py [PROGRAMS] [RUNS]
"""

from __future__ import annotations

import json
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from progressbench.contracts.environment import Objective
from progressbench.store import Evaluation, Program, Store, code_hash

OBJECTIVE = Objective(
    metric="sum_radii", direction="maximize", records={"ShinkaEvolve": 2.63598}
).model_dump_json()


def fill(db: Path, programs: int, runs: int) -> None:
    store = Store(str(db))
    rng = random.Random(0)
    per_run = programs // runs
    for r in range(runs):
        run = store.create_run(
            env="circle-packing",
            variant="n26",
            strategy=rng.choice(["islands", "greedy"]),
            objective_json=OBJECTIVE,
            agent=f"agent-{r % 5}",
            budget=per_run,
            config_json="{}",
        )
        rows = [
            Program(
                run_id=run.id,
                code=f"# program {r}-{i}\n" + "x = 1\n" * 40,
                code_hash=code_hash(f"{r}-{i}"),
                status="valid",
                score=rng.random() * 2.6,
            )
            for i in range(per_run)
        ]
        store.add_all(rows)
        progs = store.programs(run.id)
        store.add_all(
            [
                Evaluation(
                    run_id=run.id,
                    program_id=p.id,
                    status="ok",
                    valid=True,
                    score=p.score,
                    metrics_json=json.dumps({"sum_radii": p.score}),
                )
                for p in progs
            ]
        )
        best = max(progs, key=lambda p: p.score)
        store.update_run(
            run.id,
            n_children=per_run,
            n_valid=per_run,
            best_program_id=best.id,
            best_score=best.score,
            best_metric=best.score,
            reference_metric=1.66,
            status="finished",
        )


def main(programs: int = 10_000, runs: int = 20) -> None:
    with tempfile.TemporaryDirectory() as d:
        db = Path(d) / "big.db"
        t = time.perf_counter()
        fill(db, programs, runs)
        print(f"filled {programs} programs in {runs} runs in {time.perf_counter() - t:.1f} s")
        times = []
        for _ in range(5):
            t = time.perf_counter()
            subprocess.run(
                [sys.executable, "-m", "progressbench.cli", "leaderboard", "--db", str(db)],
                check=True,
                capture_output=True,
            )
            times.append(time.perf_counter() - t)
        print(
            f"leaderboard over {programs} programs: median {statistics.median(times):.3f} s "
            f"(fresh process, imports included; target <= 1 s)"
        )


if __name__ == "__main__":
    args = [int(a) for a in sys.argv[1:3]]
    main(*args)
