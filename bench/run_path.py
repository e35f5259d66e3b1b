"""Children per second of a real ``progressbench run`` (the CLI, circle-packing, offline agent)
with 1 and 2 workers, from several install locations in one invocation (issue 15 §1: 75.5 s
from a venv under /tmp against 7.4 s from /opt for the same 20-child run).

    python bench/run_path.py [--budget 20] [--layouts tmp,opt] [--no-readme] [--write-docs]

Each layout is a throw-away install of this checkout (``overhead.install_under``: the running
venv hard-linked, the source copied) whose own interpreter runs
``progressbench run --strategy greedy --budget B --workers N --db <fresh db>``; the wall time is
the whole command's, start-up included. Then, unless ``--no-readme``, the README's first command
as it stands (``progressbench run``: 100 children, islands, default workers) in an empty folder
of each install (target: <= 10 s on 2 idle cores). Load averages (os.getloadavg()) are printed
beside every figure: on a shared machine they say what the figures are worth.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import re
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from overhead import LAYOUTS, Install, install_under, load, write_docs_section  # noqa: E402

SECTION = "## Runs against install location"
README_TARGET_S = 10.0
RATIO_TARGET = 1.9


def counted(db: Path) -> tuple[int, int, float]:
    """(children, evaluations, the run's own wall seconds) of the run in ``db``: evaluations
    include the reference's and the fast error catcher's retries; the run's own time leaves
    out the command's start-up (imports, the evaluator's workers) and its close."""
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        kids, own = con.execute("select sum(n_children), sum(wall_time_s) from run").fetchone()
        (evaluations,) = con.execute("select count(*) from evaluation").fetchone()
        return int(kids or 0), int(evaluations), float(own or 0.0)
    finally:
        con.close()


def cli_run(install: Install, args: list[str], cwd: Path) -> tuple[float, str]:
    """Wall seconds of ``progressbench run ARGS`` by the install's interpreter, and its last
    output line."""
    command = [str(install.python), "-m", "progressbench.cli", "run", "--agent", "offline", *args]
    start = time.perf_counter()
    done = subprocess.run(command, cwd=cwd, env=install.environ(), capture_output=True,
                          text=True, stdin=subprocess.DEVNULL, timeout=600)  # fmt: skip
    wall = time.perf_counter() - start
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed:\n{done.stdout}\n{done.stderr}")
    finished = [line for line in done.stdout.splitlines() if "finished" in line]
    return wall, (finished or done.stdout.splitlines() or [""])[-1].strip()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--budget", type=int, default=20, help="children per greedy run")
    where = ", ".join(LAYOUTS)
    parser.add_argument("--layouts", default="tmp,opt", help=f"install locations: {where}")
    parser.add_argument("--no-readme", action="store_true", help="skip the 100-child run")
    parser.add_argument("--throughput-jobs", type=int, default=12,
                        help="jobs per setting of bench/throughput.py from each install "
                             "(0: skip it)")  # fmt: skip
    parser.add_argument("--write-docs", action="store_true", help="update docs/performance.md")
    args = parser.parse_args()

    rows: list[tuple[Any, ...]] = []
    readme: list[tuple[Any, ...]] = []
    throughput: list[tuple[str, list[str], str, str]] = []
    notes: list[str] = []
    for name in args.layouts.split(","):
        place = LAYOUTS[name]
        with install_under(place) as install:
            walls = {}
            for workers in (1, 2):
                db = install.root / f"greedy-{workers}.db"
                before = load()
                wall, last = cli_run(
                    install,
                    ["--strategy", "greedy", "--budget", str(args.budget),
                     "--workers", str(workers), "--db", str(db)],
                    install.root,
                )  # fmt: skip
                walls[workers] = wall
                kids, evals, own = counted(db)
                ratio = walls[1] / wall if workers == 2 else None
                rows.append((place, workers, wall, own, kids, evals, ratio, before, load()))
                notes.append(f"{place}, {workers} worker(s): {last}")
                print(f"{place}: {workers} worker(s) {wall:.1f} s ({own:.1f} s in the run), "
                      f"{kids} children, {evals} evaluations, load {before} -> {load()}",
                      flush=True)  # fmt: skip
            if args.throughput_jobs:
                before = load()
                done = subprocess.run(
                    [str(install.python), str(install.src / "bench" / "throughput.py"),
                     str(args.throughput_jobs)],
                    cwd=install.root, env=install.environ(), capture_output=True, text=True,
                    check=True, timeout=600,
                )  # fmt: skip
                found = [line for line in done.stdout.splitlines() if line.strip()]
                throughput.append((place, found, before, load()))
                print("\n".join(f"{place}: {line}" for line in found), flush=True)
            if not args.no_readme:
                folder = install.root / "readme"
                folder.mkdir()
                before = load()
                wall, last = cli_run(install, [], folder)
                kids, _, own = counted(folder / "progressbench.db")
                readme.append((place, wall, own, kids, before, load()))
                notes.append(f"{place}, README run: {last}")
                print(f"{place}: `progressbench run` {wall:.1f} s ({own:.1f} s in the run), "
                      f"load {before} -> {load()}", flush=True)  # fmt: skip
    print()
    out = tables(rows, readme, throughput, args.throughput_jobs)
    verdict = verdicts(readme, throughput)
    print(out)
    print()
    print(verdict)
    for note in notes:
        print("  " + note)
    if args.write_docs:
        cpus = os.cpu_count()
        machine = f"{platform.machine()}, {cpus} cores, Linux {platform.release()}"
        write_docs_section(
            SECTION,
            f"{SECTION}\n\n`python bench/run_path.py --write-docs`: measured "
            f"{datetime.date.today().isoformat()} on {machine}, Python "
            f"{platform.python_version()}; each install a throw-away copy of this checkout and "
            f"its venv under that folder, run by its own interpreter. Greedy runs: --budget "
            f"{args.budget}, offline agent, a fresh database; *wall* is the whole command "
            "(start-up and close included), *in the run* the run's own recorded time; "
            "children/s is children over wall.\n\n"
            f"{out}\n\n{verdict}\n",
        )


def tables(
    rows: list[tuple[Any, ...]],
    readme: list[tuple[Any, ...]],
    throughput: list[tuple[str, list[str], str, str]],
    jobs: int,
) -> str:
    lines = [
        "| code installed under | workers | wall | in the run | children | evaluations "
        "| children/s | 2-vs-1 (wall) | load average before -> after |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for place, workers, wall, own, kids, evals, ratio, before, after in rows:
        speedup = f"**{ratio:.2f}x**" if ratio else ""
        lines.append(f"| `{place}` | {workers} | {wall:.1f} s | {own:.1f} s | {kids} | {evals} "
                     f"| **{kids / wall:.2f}** | {speedup} | {before} -> {after} |")  # fmt: skip
    out = "\n".join(lines)
    if readme:
        out += (
            "\n\n| code installed under | `progressbench run` (README, defaults) wall "
            "| in the run | children | children/s | load average before -> after |\n"
            "|---|---:|---:|---:|---:|---|\n"
        )
        out += "\n".join(f"| `{p}` | **{w:.1f} s** | {o:.1f} s | {k} | {k / w:.2f} | {b} -> {a} |"
                         for p, w, o, k, b, a in readme)  # fmt: skip
    for place, found, before, after in throughput:
        out += (f"\n\n`python bench/throughput.py {jobs}` from `{place}` (load average "
                f"{before} -> {after}):\n\n" + "\n".join(f"    {x}" for x in found))  # fmt: skip
    return out


def verdicts(
    readme: list[tuple[Any, ...]], throughput: list[tuple[str, list[str], str, str]]
) -> str:
    """The figures against the targets, with the load they were measured under."""
    cpus = os.cpu_count() or 1
    said = []
    for place, wall, _own, _kids, before, _after in readme:
        met = "met" if wall <= README_TARGET_S else "not met"
        idle = float(before.split()[0]) < 0.5
        said.append(f"README run from `{place}` <= {README_TARGET_S:.0f} s: {met} ({wall:.1f} s, "
                    f"1-min load {before.split()[0]} on {cpus} cores: "
                    f"{'idle' if idle else 'not idle: not the idle-machine figure'}).")  # fmt: skip
    for place, found, before, _after in throughput:
        short = [
            re.search(r"GROW_ROUNDS=1500: speed-up with 2 workers ([\d.]+)x", x) for x in found
        ]
        ratios = [float(m.group(1)) for m in short if m]
        if ratios:
            met = "met" if ratios[0] >= RATIO_TARGET else "not met"
            said.append(f"2 workers >= {RATIO_TARGET}x one on the short jobs (GROW_ROUNDS=1500) "
                        f"from `{place}`: {met} ({ratios[0]:.2f}x, 1-min load "
                        f"{before.split()[0]}).")  # fmt: skip
    said.append(f"Load now: {load()}.")
    return " ".join(said)


if __name__ == "__main__":
    main()
