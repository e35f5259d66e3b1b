"""Throughput against workers on circle-packing (target: 2 workers on 2 cores >= 1.8x one).

Each job is the circle-packing reference with its slack-filling loop turned up (GROW_ROUNDS) so
that one evaluation is ~0.1 s and ~0.35 s of real work, evaluated through the `local` evaluator
exactly as a run does.

    python bench/throughput.py [JOBS]
"""

from __future__ import annotations

import sys
import time
from concurrent.futures import ThreadPoolExecutor

from progressbench import plugins
from progressbench.contracts.evaluator import EvalJob, Limits


def rate(workers: int, jobs: int, rounds: int) -> float:
    env = plugins.get_environment("circle-packing")
    cls = plugins.get("evaluators", "local")
    code = env.baseline("n26").replace("GROW_ROUNDS = 0  #", f"GROW_ROUNDS = {rounds}  #")
    job = EvalJob(program=code, phase="full", limits=Limits(seconds=60, memory_mb=1024))
    with cls(env, "n26", workers) as evaluator:
        evaluator.evaluate(job)  # warm-up: the first fork after start
        t = time.perf_counter()
        with ThreadPoolExecutor(workers) as pool:
            outcomes = list(pool.map(lambda _: evaluator.evaluate(job), range(jobs)))
        elapsed = time.perf_counter() - t
    assert all(o.ok for o in outcomes), [o.error for o in outcomes if not o.ok][:1]
    per = sum(o.candidate_s for o in outcomes) / jobs
    print(
        f"{workers} worker(s): {jobs / elapsed:.2f} evaluations/s ({per:.2f} s of candidate work each)"
    )
    return jobs / elapsed


def main(jobs: int = 16) -> None:
    for rounds in (1500, 5000):
        one = rate(1, jobs, rounds)
        two = rate(2, jobs, rounds)
        print(f"GROW_ROUNDS={rounds}: speed-up with 2 workers {two / one:.2f}x (target >= 1.8x)\n")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 16)
