"""Platform overhead per evaluation of the ``local`` evaluator (target: median <= 0.25 s),
against running the same torch program directly.

    python bench/overhead.py [--evals 20] [--work 0.3] [--write-docs]

The program times its own work (matmuls, single-threaded, ~``--work`` seconds) and returns it.
Overhead = evaluate() wall time minus that work: job set-up, fork, sandboxing, loading the
program, returning the result, clean-up. "Direct" runs ``python program.py`` in a fresh
process, which pays ``import torch`` every time: the cost warm workers exist to avoid.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any, ClassVar

from progressbench import hookimpl
from progressbench.contracts.environment import (
    Assessment,
    Environment,
    Objective,
    Resources,
    SandboxContext,
)

DOCS = Path(__file__).resolve().parents[1] / "docs" / "performance.md"
SECTION = "## Evaluation overhead"

PROGRAM = """\
import time

import torch

STEPS = {steps}


def main():
    torch.manual_seed(0)
    a = torch.randn(256, 256)
    start = time.perf_counter()
    for _ in range(STEPS):
        a = torch.tanh(a @ a)
    return time.perf_counter() - start


if __name__ == "__main__":
    torch.set_num_threads(1)
    print(main())
"""


class OverheadEnv(Environment):
    """Runs the program's ``main()`` and returns the seconds it says its work took."""

    name: ClassVar[str] = "bench-overhead"
    preload: ClassVar[tuple[str, ...]] = ("torch",)

    def objective(self, variant: str) -> Objective:
        return Objective(metric="work_s", direction="minimize")

    def resources(self, variant: str) -> Resources:
        return Resources(cpus=1, seconds=60, memory_mb=2048)

    def run(self, program: Path, ctx: SandboxContext) -> dict[str, Any]:
        from progressbench.sandbox.loader import load_program

        return {"work_s": load_program(program).main()}

    def assess(
        self, raw: dict[str, Any], verified: dict[str, Any] | None, variant: str
    ) -> Assessment:
        return Assessment(valid=True, score=-raw["work_s"])


@hookimpl
def register_environments(register):
    register(OverheadEnv())


def calibrate(work: float) -> int:
    """Matmul steps that take about ``work`` seconds on one thread here."""
    import torch

    torch.set_num_threads(1)
    a = torch.randn(256, 256)
    start, steps = time.perf_counter(), 0
    while time.perf_counter() - start < 0.5:
        a = torch.tanh(a @ a)
        steps += 1
    return max(1, round(steps * work / (time.perf_counter() - start)))


def quantiles(values: list[float]) -> tuple[float, float]:
    ordered = sorted(values)
    p90 = ordered[min(len(ordered) - 1, round(0.9 * (len(ordered) - 1)))]
    return statistics.median(ordered), p90


def direct(source: str, runs: int) -> dict[str, list[float]]:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "program.py"
        path.write_text(source)
        walls, works = [], []
        for _ in range(runs):
            start = time.perf_counter()
            done = subprocess.run(
                [sys.executable, str(path)], capture_output=True, text=True, check=True
            )
            walls.append(time.perf_counter() - start)
            works.append(float(done.stdout.split()[-1]))
    return {
        "total": walls,
        "work": works,
        "overhead": [w - k for w, k in zip(walls, works, strict=True)],
    }


def via_evaluator(source: str, workers: int, evals: int) -> dict[str, Any]:
    from progressbench import plugins
    from progressbench.contracts.evaluator import EvalJob
    from progressbench_plugins.evaluators.local import LocalEvaluator

    env = plugins.get_environment(OverheadEnv.name)
    job = EvalJob(program=source, mode="full")
    start = time.perf_counter()
    evaluator = LocalEvaluator(env, "default", workers, {"plugin_modules": ["overhead"]})
    evaluator.start()
    warm_up = time.perf_counter() - start
    outcomes = []
    lock = threading.Lock()

    def submit(count: int) -> None:
        for _ in range(count):
            outcome = evaluator.evaluate(job)
            if not outcome.ok:
                raise RuntimeError(f"evaluation failed: {outcome.status}: {outcome.error}")
            with lock:
                outcomes.append(outcome)

    try:
        threads = [
            threading.Thread(target=submit, args=(evals // workers,)) for _ in range(workers)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        evaluator.close()
    works = [o.raw["work_s"] for o in outcomes]
    return {
        "start": warm_up,
        "total": [o.total_s for o in outcomes],
        "work": works,
        "overhead": [o.total_s - w for o, w in zip(outcomes, works, strict=True)],
        "ipc": [o.total_s - o.candidate_s for o in outcomes],
    }


def table(rows: list[tuple[str, dict[str, Any]]]) -> str:
    lines = [
        "| how | n | work (median) | wall (median) | overhead median | overhead p90 |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for label, data in rows:
        median, p90 = quantiles(data["overhead"])
        lines.append(
            f"| {label} | {len(data['overhead'])} | {statistics.median(data['work']):.3f} s "
            f"| {statistics.median(data['total']):.3f} s | **{median:.3f} s** | {p90:.3f} s |"
        )
    return "\n".join(lines)


def write_docs(text: str) -> None:
    """Replace (or add) this benchmark's section of docs/performance.md, leaving the rest."""
    current = DOCS.read_text() if DOCS.exists() else "# Performance\n"
    pattern = re.compile(rf"^{re.escape(SECTION)}\n.*?(?=^## |\Z)", re.M | re.S)
    block = text.rstrip() + "\n\n"
    if pattern.search(current):
        updated = pattern.sub(lambda _: block, current, count=1)
    else:
        updated = current.rstrip() + "\n\n" + block
    DOCS.parent.mkdir(exist_ok=True)
    DOCS.write_text(updated.rstrip() + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--evals", type=int, default=20, help="evaluations per setting")
    parser.add_argument("--direct-runs", type=int, default=5)
    parser.add_argument("--work", type=float, default=0.3, help="seconds of work per program")
    parser.add_argument("--write-docs", action="store_true", help="update docs/performance.md")
    args = parser.parse_args()

    from progressbench import plugins

    # Workers import this file as the module "overhead" (it lies on their PYTHONPATH through
    # the evaluator's plugin_modules option); this process registers itself.
    plugins.pm.register(sys.modules[__name__], name="overhead")
    source = PROGRAM.format(steps=calibrate(args.work))
    rows = [("`python program.py` (fresh process, 1 thread)", direct(source, args.direct_runs))]
    starts = {}
    for workers in (1, 2):
        data = via_evaluator(source, workers, args.evals)
        starts[workers] = data["start"]
        label = f"local evaluator, {workers} worker{'s' if workers > 1 else ''}"
        rows.append((label + (f", {workers} jobs at once" if workers > 1 else ""), data))
    cpus = os.cpu_count()
    out = table(rows)
    median, _ = quantiles(rows[1][1]["overhead"])
    ipc, _ = quantiles(rows[1][1]["ipc"])
    summary = (
        f"Evaluator start-up (workers importing torch in parallel): {starts[1]:.2f} s with 1 "
        f"worker, {starts[2]:.2f} s with 2. Of the 1-worker median overhead of {median:.3f} s, "
        f"{ipc:.3f} s is outside the candidate's child (platform, worker, job directory); the "
        "rest is inside it (fork, sandbox set-up, loading the program, returning the result)."
    )
    print(out)
    print()
    print(summary)
    if args.write_docs:
        from progressbench.sandbox.core import capabilities

        caps = capabilities()
        machine = f"{platform.machine()}, {cpus} cores, Linux {platform.release()}"
        conditions = (
            f"Candidates ran as {caps['candidate_user']}; network namespace: "
            f"{'yes' if caps['network_namespace'] else 'no'}. 1-minute load average at the end: "
            f"{os.getloadavg()[0]:.1f} (the machine is shared; the work time of concurrent "
            "jobs grows with it, the overhead hardly does)."
        )
        write_docs(
            f"{SECTION}\n\n"
            f"Measured {datetime.date.today().isoformat()} on {machine}; Python "
            f"{platform.python_version()}, torch CPU. Target: median overhead <= 0.25 s.\n\n"
            "The program does ~0.3 s of single-threaded torch matmuls and reports that time "
            "itself; overhead is evaluate()'s wall time minus it (for the direct run: the "
            "process's wall time minus it, i.e. mostly `import torch`).\n\n"
            f"{out}\n\n{summary}\n\n{conditions}\n\n"
            "Reproduce: `python bench/overhead.py --evals 20 --write-docs`\n"
        )


if __name__ == "__main__":
    main()
