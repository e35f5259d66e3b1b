"""Throughput against workers on circle-packing (target: 2 workers on 2 cores >= 1.9x one on the ~0.1 s jobs).

Each job is the circle-packing reference with its slack-filling loop turned up (GROW_ROUNDS) so
that one evaluation is ~0.1 s and ~0.35 s of real work, evaluated through the `local` evaluator
exactly as a run does. A 1-worker and a 2-worker evaluator are started once and measured in
turns (1, 2, 1, 2, ...), REPEATS rounds of JOBS evaluations each, so that a burst of load from
elsewhere on a shared machine lands on both sides; the speed-up printed is the median of the
rounds' ratios, with their range beside it (the noise the figure carries).

In the same rounds the same program runs bare (``run_packing()`` in one or two plain forked
processes, no platform at all): the machine's own speed-up for two such jobs at once, the
ceiling the platform's figure is to be read against (two vCPUs of a shared host do not give
2x even to a bare loop).

    python bench/throughput.py [JOBS] [REPEATS]
"""

from __future__ import annotations

import statistics
import sys
import time
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from typing import Any

from progressbench import plugins
from progressbench.contracts.evaluator import EvalJob, Limits


def rate(evaluator: Any, workers: int, job: EvalJob, jobs: int) -> tuple[float, float]:
    """(evaluations per second, candidate seconds per evaluation) of ``jobs`` evaluations."""
    t = time.perf_counter()
    with ThreadPoolExecutor(workers) as pool:
        outcomes = list(pool.map(lambda _: evaluator.evaluate(job), range(jobs)))
    elapsed = time.perf_counter() - t
    assert all(o.ok for o in outcomes), [o.error for o in outcomes if not o.ok][:1]
    return jobs / elapsed, sum(o.candidate_s for o in outcomes) / jobs


def _bare(code: str) -> None:
    namespace: dict[str, Any] = {"__name__": "bare"}
    exec(compile(code, "<program>", "exec"), namespace)
    namespace["run_packing"]()


def bare_rate(pool: ProcessPoolExecutor, code: str, jobs: int) -> float:
    t = time.perf_counter()
    list(pool.map(_bare, [code] * jobs))
    return jobs / (time.perf_counter() - t)


def main(jobs: int = 16, repeats: int = 5) -> None:
    env = plugins.get_environment("circle-packing")
    cls = plugins.get("evaluators", "local")
    for grow in (1500, 5000):
        code = env.baseline("n26").replace("GROW_ROUNDS = 0  #", f"GROW_ROUNDS = {grow}  #")
        job = EvalJob(program=code, phase="full", limits=Limits(seconds=60, memory_mb=1024))
        rates: dict[int, list[float]] = {1: [], 2: []}
        work: dict[int, list[float]] = {1: [], 2: []}
        bare: dict[int, list[float]] = {1: [], 2: []}
        with (
            cls(env, "n26", 1) as one,
            cls(env, "n26", 2) as two,
            ProcessPoolExecutor(1) as bare_one,
            ProcessPoolExecutor(2) as bare_two,
        ):
            for evaluator in (one, two):
                evaluator.evaluate(job)  # warm-up: the first fork after start
            for pool in (bare_one, bare_two):
                bare_rate(pool, code, 2)  # warm-up: the pools' processes and imports
            for _ in range(repeats):
                for workers, evaluator in ((1, one), (2, two)):
                    per_s, each = rate(evaluator, workers, job, jobs)
                    rates[workers].append(per_s)
                    work[workers].append(each)
                for workers, pool in ((1, bare_one), (2, bare_two)):
                    bare[workers].append(bare_rate(pool, code, jobs))
        for workers in (1, 2):
            print(
                f"{workers} worker(s): {statistics.median(rates[workers]):.2f} evaluations/s "
                f"({statistics.median(work[workers]):.2f} s of candidate work each; median of "
                f"{repeats} rounds)"
            )
        ratios = [b / a for a, b in zip(rates[1], rates[2], strict=True)]
        ceiling = [b / a for a, b in zip(bare[1], bare[2], strict=True)]
        print(
            f"GROW_ROUNDS={grow}: speed-up with 2 workers {statistics.median(ratios):.2f}x "
            f"(rounds {min(ratios):.2f}-{max(ratios):.2f}x) (target >= 1.9x); "
            f"the same program bare, 2 processes against 1: {statistics.median(ceiling):.2f}x "
            f"(rounds {min(ceiling):.2f}-{max(ceiling):.2f}x)\n"
        )


if __name__ == "__main__":
    main(*(int(a) for a in sys.argv[1:3]))
