"""Platform overhead per evaluation of the ``local`` evaluator (target: median <= 0.02 s),
against running the same torch program directly, from several install locations at once.

    python bench/overhead.py [--evals 20] [--work 0.3] [--layouts tmp,opt] [--write-docs]

The program times its own work (matmuls, single-threaded, ~``--work`` seconds) and returns it.
Overhead = evaluate() wall time minus that work: job set-up, fork, sandboxing, loading the
program, returning the result, clean-up. "Direct" runs ``python program.py`` in a fresh
process, which pays ``import torch`` every time: the cost warm workers exist to avoid.

Where the code is installed matters to the sandbox (code under /tmp is bound back into each
worker's private /tmp; issue 15 §1 measured 1.6 s per evaluation from a venv under /tmp, 0.004 s
from /opt), so each layout is a throw-away install of this checkout (``install_under``: the
running venv hard-linked, the source copied, the editable install pointed at the copy) under
/tmp, /opt, ... and is measured by its own interpreter; ``--here`` measures only the running
install. Everything created is removed at the end.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import sysconfig
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
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

REPO = Path(__file__).resolve().parents[1]
DOCS = REPO / "docs" / "performance.md"
SECTION = "## Evaluation overhead"
TARGET_S = 0.02
# Install locations: the name on the command line, the folder the throw-away install goes in.
LAYOUTS = {"tmp": "/tmp", "opt": "/opt", "var": "/var/lib"}
# The checkout's folders an install needs (the editable install maps its packages to the first
# four; the benches import themselves from the last).
SOURCE = ("progressbench", "plugins", "environments", "strategies", "bench")

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


@dataclass(frozen=True)
class Install:
    """A throw-away install of this checkout: ``root`` holds ``venv`` and ``src``."""

    root: Path
    python: Path
    src: Path

    def environ(self) -> dict[str, str]:
        """The environment to run its interpreter in: nothing pointing back at this one."""
        drop = ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME")
        env = {k: v for k, v in os.environ.items() if k not in drop}
        env = {k: v for k, v in env.items() if not k.startswith("PROGRESSBENCH_")}
        env["PATH"] = os.pathsep.join([str(self.python.parent), env.get("PATH", "")])
        return env


def load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


@contextlib.contextmanager
def install_under(base: str) -> Iterator[Install]:
    """This checkout installed afresh in a new folder under ``base``: the running venv
    hard-linked (copied where a link cannot cross file systems; a new inode is all Python ever
    writes, so the original stays untouched), the source folders copied, and the editable
    install's finder rewritten to map the packages to the copy. Removed on exit."""
    if sys.prefix == sys.base_prefix:
        raise SystemExit("run this from the project's venv (it is what gets installed)")
    root = Path(tempfile.mkdtemp(prefix="progressbench-bench-", dir=base))
    try:
        os.chmod(root, 0o755)
        venv, src = root / "venv", root / "src"
        linked = subprocess.run(["cp", "-al", sys.prefix, str(venv)], capture_output=True)
        if linked.returncode != 0:
            shutil.rmtree(venv, ignore_errors=True)
            subprocess.run(["cp", "-a", sys.prefix, str(venv)], check=True)
        for name in SOURCE:
            shutil.copytree(REPO / name, src / name, ignore=shutil.ignore_patterns("__pycache__"))
        site = venv / Path(sysconfig.get_path("purelib")).relative_to(sys.prefix)
        for finder in site.glob("__editable__*_finder.py"):
            text = finder.read_text().replace(f"'{REPO}/", f"'{src}/")
            finder.unlink()  # a hard link: the original's file must stay as it is
            finder.write_text(text)
            for cached in (site / "__pycache__").glob(f"{finder.stem}.*"):
                cached.unlink()
        python = venv / "bin" / "python"
        where = subprocess.run(
            [str(python), "-c", "import progressbench; print(progressbench.__file__)"],
            capture_output=True, text=True, check=True, cwd=root,
            env=Install(root, python, src).environ(),
        ).stdout.strip()  # fmt: skip
        if not where.startswith(str(root) + "/"):
            raise RuntimeError(f"the install under {root} imports progressbench from {where}")
        yield Install(root, python, src)
    finally:
        shutil.rmtree(root, ignore_errors=True)


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
    job = EvalJob(program=source, phase="full")
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


def write_docs_section(section: str, text: str) -> None:
    """Replace (or add) a benchmark's section of docs/performance.md, leaving the rest."""
    current = DOCS.read_text() if DOCS.exists() else "# Performance\n"
    pattern = re.compile(rf"^{re.escape(section)}\n.*?(?=^## |\Z)", re.M | re.S)
    block = text.rstrip() + "\n\n"
    if pattern.search(current):
        updated = pattern.sub(lambda _: block, current, count=1)
    else:
        updated = current.rstrip() + "\n\n" + block
    DOCS.parent.mkdir(exist_ok=True)
    DOCS.write_text(updated.rstrip() + "\n")


def write_docs(text: str) -> None:
    write_docs_section(SECTION, text)


def measure(steps: int, evals: int, direct_runs: int) -> dict[str, Any]:
    """The measurements of this install (run by its own interpreter)."""
    from progressbench import plugins

    # Workers import this file as the module "overhead" (it lies on their PYTHONPATH through
    # the evaluator's plugin_modules option); this process registers itself.
    plugins.pm.register(sys.modules[__name__], name="overhead")
    import progressbench

    source = PROGRAM.format(steps=steps)
    data: dict[str, Any] = {"code": os.path.dirname(progressbench.__file__)}
    data["load_before"] = load()
    data["direct"] = direct(source, direct_runs)
    for workers in (1, 2):
        data[f"workers{workers}"] = via_evaluator(source, workers, evals)
    data["load_after"] = load()
    return data


def report(data: dict[str, Any]) -> tuple[str, str]:
    """The table of one install's measurements, and what the start-up and the 1-worker
    overhead split into."""
    rows = [("`python program.py` (fresh process, 1 thread)", data["direct"])]
    for workers in (1, 2):
        label = f"local evaluator, {workers} worker{'s' if workers > 1 else ''}"
        rows.append((label + (f", {workers} jobs at once" if workers > 1 else ""),
                     data[f"workers{workers}"]))  # fmt: skip
    median, _ = quantiles(data["workers1"]["overhead"])
    ipc, _ = quantiles(data["workers1"]["ipc"])
    summary = (
        f"Evaluator start-up (workers importing torch in parallel): "
        f"{data['workers1']['start']:.2f} s with 1 worker, {data['workers2']['start']:.2f} s "
        f"with 2. Of the 1-worker median overhead of {median:.3f} s, {ipc:.3f} s is outside the "
        "candidate's child (platform, worker, job directory); the rest is inside it (handing "
        "the job to the child forked ahead, the job's sandbox set-up, loading the program and "
        "its first touches of the memory it shares with the worker, returning the result)."
    )
    return table(rows), summary


def side_by_side(results: list[tuple[str, dict[str, Any]]]) -> str:
    lines = [
        "| code installed under | overhead median, 1 worker | p90 | overhead median, 2 workers "
        "| p90 | direct run overhead | load average before -> after |",
        "|---|---:|---:|---:|---:|---:|---|",
    ]
    for label, data in results:
        one, one90 = quantiles(data["workers1"]["overhead"])
        two, two90 = quantiles(data["workers2"]["overhead"])
        direct_median, _ = quantiles(data["direct"]["overhead"])
        lines.append(
            f"| {label} | **{one:.3f} s** | {one90:.3f} s | **{two:.3f} s** | {two90:.3f} s "
            f"| {direct_median:.3f} s | {data['load_before']} -> {data['load_after']} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--evals", type=int, default=20, help="evaluations per setting")
    parser.add_argument("--direct-runs", type=int, default=5)
    parser.add_argument("--work", type=float, default=0.3, help="seconds of work per program")
    where = ", ".join(LAYOUTS)
    parser.add_argument("--layouts", default="tmp,opt", help=f"install locations: {where}")
    parser.add_argument("--here", action="store_true", help="measure the running install only")
    parser.add_argument("--write-docs", action="store_true", help="update docs/performance.md")
    parser.add_argument("--measure", type=int, metavar="STEPS", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.measure is not None:  # one install's interpreter, started by the layout loop
        data = measure(args.measure, args.evals, args.direct_runs)
        Path(args.out).write_text(json.dumps(data))
        return
    steps = calibrate(args.work)
    results: list[tuple[str, dict[str, Any]]] = []
    if args.here:
        results.append((f"{sys.prefix} (as installed)",
                        measure(steps, args.evals, args.direct_runs)))  # fmt: skip
    else:
        for name in args.layouts.split(","):
            with install_under(LAYOUTS[name]) as install:
                out = install.root / "overhead.json"
                subprocess.run(
                    [str(install.python), str(install.src / "bench" / "overhead.py"),
                     "--measure", str(steps), "--evals", str(args.evals),
                     "--direct-runs", str(args.direct_runs), "--out", str(out)],
                    check=True, cwd=install.root, env=install.environ(),
                )  # fmt: skip
                data = json.loads(out.read_text())
            results.append((f"`{LAYOUTS[name]}` (`{data['code']}`)", data))
    blocks = []
    for label, data in results:
        out_table, summary = report(data)
        blocks.append(f"Code under {label}; load average {data['load_before']} before, "
                      f"{data['load_after']} after:\n\n{out_table}\n\n{summary}")  # fmt: skip
    both = side_by_side(results)
    said = []
    for label, data in results:
        medians = [quantiles(data[f"workers{n}"]["overhead"])[0] for n in (1, 2)]
        met = "met" if max(medians) <= TARGET_S else "not met"
        said.append(f"{label}: {met} (1 worker {medians[0]:.3f} s, 2 workers "
                    f"{medians[1]:.3f} s; 1-min load {data['load_after'].split()[0]} on "
                    f"{os.cpu_count()} cores).")  # fmt: skip
    verdict = f"Target median overhead <= {TARGET_S} s in every layout: " + " ".join(said)
    print("\n\n".join(blocks))
    print()
    print(both)
    print()
    print(verdict)
    print(f"\n(target: overhead median <= {TARGET_S} s in every layout; os.getloadavg() on "
          f"{os.cpu_count()} cores: {load()})")  # fmt: skip
    if args.write_docs:
        from progressbench.sandbox.doctor import capabilities

        caps = capabilities()
        machine = f"{platform.machine()}, {os.cpu_count()} cores, Linux {platform.release()}"
        conditions = (
            f"Candidates ran as {caps['candidate_user']}; network namespace: "
            f"{'yes' if caps['network_namespace'] else 'no'}. Load averages (1, 5, 15 min) are "
            "os.getloadavg() before and after each install's measurements: the machine is "
            "shared, and with more runnable processes than cores every figure here (the work "
            "time of concurrent jobs, the overhead, the direct run's `import torch`) grows."
        )
        body = "\n\n".join(blocks)
        write_docs(
            f"{SECTION}\n\n"
            f"Measured {datetime.date.today().isoformat()} on {machine}; Python "
            f"{platform.python_version()}, torch CPU. Target: median overhead <= {TARGET_S} s "
            "in every install location.\n\n"
            "The program does ~0.3 s of single-threaded torch matmuls and reports that time "
            "itself; overhead is evaluate()'s wall time minus it (for the direct run: the "
            "process's wall time minus it, i.e. mostly `import torch`). Each install is a "
            "throw-away copy of this checkout and its venv under that folder, measured by its "
            "own interpreter in the same invocation.\n\n"
            f"{both}\n\n{verdict}\n\n{body}\n\n{conditions}\n\n"
            "Reproduce: `python bench/overhead.py --evals 20 --write-docs`\n"
        )


if __name__ == "__main__":
    main()
