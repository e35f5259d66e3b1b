"""The noise of nanogpt tiny's primary metric for this checkout against a git revision, in one
invocation, the two sides measured in turns (this machine is shared: only figures taken in the
same minutes compare).

    python bench/noise_against.py REV [--rounds 2] [--k 3] [--steps 34]

REV is checked out in a temporary worktree and run by a hard-linked copy of this venv whose
editable install points at it; this checkout runs from the venv itself. Each round runs
``bench/nanogpt_noise.py --noise-only`` (K runs of the reference idle, then K under the
two-core load) on one side and then the other, alternating which goes first; the summary gives
each side's coefficient of variation of the estimated cost and of the wall time, idle and
loaded, pooled over the rounds, and the mean cost (same seed, same steps: the same work).
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import sysconfig
import tempfile
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
BENCH = REPO / "bench" / "nanogpt_noise.py"


def install_revision(rev: str, root: Path) -> Path:
    """A worktree of ``rev`` under ``root`` and a venv whose editable finder maps there."""
    tree, venv = root / "tree", root / "venv"
    subprocess.run(["git", "-C", str(REPO), "worktree", "add", "--detach", str(tree), rev],
                   check=True, capture_output=True)  # fmt: skip
    subprocess.run(["cp", "-al", sys.prefix, str(venv)], check=True)
    site = venv / Path(sysconfig.get_path("purelib")).relative_to(sys.prefix)
    for finder in site.glob("__editable__*_finder.py"):
        text = finder.read_text().replace(f"'{REPO}/", f"'{tree}/")
        finder.unlink()  # a hard link: the original must stay as it is
        finder.write_text(text)
        for cached in (site / "__pycache__").glob(f"{finder.stem}.*"):
            cached.unlink()
    return venv / "bin" / "python"


def side(python: Path, out: Path, args: argparse.Namespace) -> dict[str, Any]:
    command = [str(python), str(BENCH), "--noise-only", "--no-docs", "--json", str(out),
               "--k", str(args.k), "--steps", str(args.steps)]  # fmt: skip
    subprocess.run(command, check=True, cwd=REPO, stdout=subprocess.DEVNULL)
    result: dict[str, Any] = json.loads(out.read_text())
    return result


def cv(values: list[float]) -> float:
    return statistics.stdev(values) / statistics.fmean(values) if len(values) > 1 else float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("rev")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--k", type=int, default=3)
    parser.add_argument("--steps", type=int, default=34)
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="progressbench-against-"))
    try:
        sides = {"this checkout": Path(sys.executable), args.rev: install_revision(args.rev, root)}
        runs: dict[str, dict[str, list[dict[str, Any]]]] = {
            name: {"idle": [], "loaded": []} for name in sides
        }
        for r in range(args.rounds):
            order = list(sides) if r % 2 == 0 else list(sides)[::-1]
            for name in order:
                got = side(sides[name], root / f"{r}-{order.index(name)}.json", args)
                for cond in ("idle", "loaded"):
                    runs[name][cond] += got[cond]["runs"]
                    print(f"round {r + 1}, {name}, {cond}: cost CV "
                          f"{100 * got[cond]['cv_cost']:.1f}%, load {got[cond]['load']:.2f}",
                          flush=True)  # fmt: skip
        print(f"\n{args.rounds} rounds x K = {args.k}, {args.steps} steps, pooled:")
        for name, conds in runs.items():
            for cond, items in conds.items():
                costs, walls = [i["cost_s"] for i in items], [i["wall_s"] for i in items]
                probe = statistics.median(i["probe_ms"] for i in items)
                print(f"  {name:>14} {cond:>6}: cost CV {100 * cv(costs):.1f}% (mean "
                      f"{statistics.fmean(costs):.2f} s), wall CV {100 * cv(walls):.1f}%, "
                      f"probe median {probe:.2f} ms, n = {len(items)}")  # fmt: skip
    finally:
        subprocess.run(["git", "-C", str(REPO), "worktree", "remove", "--force",
                        str(root / "tree")], capture_output=True)  # fmt: skip
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
