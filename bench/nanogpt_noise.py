"""How much noise nanogpt tiny's primary metric has, idle and under load, and how many paired
re-runs ``verify`` needs to call a planted speedup faster at p < 0.01.

    python bench/nanogpt_noise.py [--steps 34] [--k 5] [--pairs 8] [--control-pairs 8]
        [--threads 1] [--no-docs] [--json PATH]

Every run is the tiny reference's training under the harness (``run_training`` in a fresh
child forked from this process, as the warm worker forks evaluations), bounded in steps:

1. **Noise.** The reference, the same seed, K times idle and K times under the bench's own
   load generator (two processes spinning on the two cores, each stopping itself after a
   deadline and killed when the phase ends): the coefficient of variation of the primary
   metric (the estimated unloaded cost of the steps, ``cost.py``) and of the raw wall time.
2. **Planted speedups, under load,** each as pairs interleaved the way ``verify`` runs them
   (candidate, reference, ... on a shared fresh seed), tested with ``verify``'s own paired
   test (``progressbench.analysis.stats.paired_ratio``) after each pair:
   - systems: the reference against a copy doing extra matmuls after every step (the same
     training with more work per step), sized to ~3% and ~10% of a one-thread step (24 and 80
     256x256 matmuls of ~0.29 ms each against ~230 ms);
   - ML: the reference stopped at ~3% and ~10% fewer steps against the full count. Steps to
     the target are deterministic for a program and seed (checkpoints are step-indexed), so
     a schedule that reaches the target in that many fewer steps is, to the metric, this:
     fewer steps at the same per-step cost. The runs are real; the step counts are planted.
3. **Control:** the reference against itself in pairs under load; the paired test on
   resampled sets of 4 pairs, 20 times (and on all of them): no "faster" verdict expected.

The budget in steps (``--steps``) stands for a whole run to the target (~500 steps): the
steps carry no timing noise, so the metric's noise is that of the calibrated CPU time per
step, and a whole run averages ~15x more steps and probe samples than the bench's, so its
relative noise is at most the bench's. The table goes into docs/nanogpt.md between the markers, with the
date, the machine and the load average beside every figure: the machine is shared with
other sessions, so "idle" means only that the bench added no load of its own.
"""

from __future__ import annotations

import argparse
import importlib
import json
import math
import os
import platform
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from progressbench.analysis.stats import paired_ratio
from progressbench_environments.nanogpt.config import make_spec
from progressbench_environments.nanogpt.env import PROGRAMS, NanoGPT
from progressbench_environments.nanogpt.harness import run_training
from progressbench_environments.nanogpt.local import in_child

for _module in NanoGPT.preload:  # as the warm worker does: children inherit the imports
    importlib.import_module(_module)

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs" / "nanogpt.md"
START, END = "<!-- nanogpt_noise:start -->", "<!-- nanogpt_noise:end -->"
ALPHA = 0.01
LOAD_PROCESSES = 2
SPIN = (
    "import sys, time\nend = time.time() + float(sys.argv[1])\nwhile time.time() < end:\n    pass\n"
)
LOOP_END = "        model.zero_grad(set_to_none=True)\n        if step + 1 >= TRAIN_STEPS:"


def load1() -> float:
    return os.getloadavg()[0]


@contextmanager
def spinning(seconds: float) -> Iterator[None]:
    """Two busy processes (both cores), each stopping itself after ``seconds``; stopped at the
    end of the block either way."""
    procs = [
        subprocess.Popen([sys.executable, "-c", SPIN, str(seconds)]) for _ in range(LOAD_PROCESSES)
    ]
    try:
        time.sleep(1.0)  # let the scheduler see them
        yield
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            p.wait(timeout=10)


def burned(matmuls: int) -> Path:
    """The reference with ``matmuls`` 256x256 matmuls of waste after every step."""
    source = (PROGRAMS / "tiny.py").read_text()
    assert LOOP_END in source
    waste = (
        "        model.zero_grad(set_to_none=True)\n"
        "        waste = torch.ones(256, 256)\n"
        f"        for _ in range({matmuls}):\n"
        "            waste = (waste @ waste) * 0.004\n"
        "        if step + 1 >= TRAIN_STEPS:"
    )
    path = Path(tempfile.mkdtemp(prefix="nanogpt-noise-")) / f"burn{matmuls}.py"
    path.write_text(source.replace(LOOP_END, waste))
    return path


def one_run(program: Path, seed: int, steps: int, threads: int) -> dict[str, float]:
    """One training run of ``steps`` steps in a fresh child: the estimated cost and the wall."""
    options = {
        "max_steps": steps,
        "ckpt_every_steps": steps,
        "time_budget_s": 3600,
        "profile": False,
        "threads": threads,
        "val_tokens": 4096,
        "probe_tokens": 2048,
    }
    before = load1()
    with tempfile.TemporaryDirectory() as tmp, tempfile.TemporaryDirectory() as logs:
        spec = make_spec("tiny", "full", seed, Path(tmp), options)
        raw, err, _ = in_child(lambda: run_training(program, spec), 1800, Path(logs) / "run.log")
    if raw is None:
        raise SystemExit(f"a run failed: {err}")
    last = raw["checkpoints"][-1]
    return {
        "steps": last["steps"],
        "cost_s": last["cost_s"],
        "wall_s": last["train_time_s"],
        "probe_ms": raw["telemetry"]["step_cost"]["probe_ms_median"],
        "load": round((before + load1()) / 2, 2),
    }


def cv(values: list[float]) -> float:
    return statistics.stdev(values) / statistics.fmean(values) if len(values) > 1 else math.nan


def noise(args: argparse.Namespace, loaded: bool) -> dict[str, Any]:
    runs = []
    for _ in range(args.k):
        runs.append(one_run(PROGRAMS / "tiny.py", 0, args.steps, args.threads))
        print(f"  {'loaded' if loaded else 'idle'}: {runs[-1]}", flush=True)
    return {
        "cv_cost": cv([r["cost_s"] for r in runs]),
        "cv_wall": cv([r["wall_s"] for r in runs]),
        "cost_s": statistics.fmean([r["cost_s"] for r in runs]),
        "wall_s": statistics.fmean([r["wall_s"] for r in runs]),
        "probe_ms": statistics.median([r["probe_ms"] for r in runs]),
        "load": statistics.fmean([r["load"] for r in runs]),
        "runs": runs,
    }


def pairs_needed(ratios_cost: list[tuple[float, float]]) -> int | None:
    """The first pair count at which the paired test says faster (p < alpha)."""
    for n in range(2, len(ratios_cost) + 1):
        a, b = zip(*ratios_cost[:n], strict=True)
        if paired_ratio(list(a), list(b), ALPHA).p < ALPHA:
            return n
    return None


def paired(
    name: str,
    candidate: Callable[[int], dict[str, float]],
    reference: Callable[[int], dict[str, float]],
    n: int,
) -> dict[str, Any]:
    cost, wall, loads = [], [], []
    for _ in range(n):
        seed = random.randrange(2**31)
        a, b = candidate(seed), reference(seed)
        cost.append((a["cost_s"], b["cost_s"]))
        wall.append((a["wall_s"], b["wall_s"]))
        loads += [a["load"], b["load"]]
        print(
            f"  {name}: cost {a['cost_s'] / b['cost_s']:.4f}, wall {a['wall_s'] / b['wall_s']:.4f}"
        )
    test = paired_ratio([c[0] for c in cost], [c[1] for c in cost], ALPHA)
    wall_test = paired_ratio([w[0] for w in wall], [w[1] for w in wall], ALPHA)
    return {
        "name": name,
        "pairs": n,
        "ratio": test.ratio,
        "ci": [test.low, test.high],
        "p": test.p,
        "needed": pairs_needed(cost),
        "wall_ratio": wall_test.ratio,
        "wall_p": wall_test.p,
        "wall_needed": pairs_needed(wall),
        "load": statistics.fmean(loads),
        "cost_pairs": cost,
    }


def control(cost_pairs: list[tuple[float, float]], repeats: int = 20) -> dict[str, Any]:
    rng = random.Random(0)
    false = 0
    for _ in range(repeats):
        chosen = rng.sample(cost_pairs, min(4, len(cost_pairs)))
        a, b = zip(*chosen, strict=True)
        false += paired_ratio(list(a), list(b), ALPHA).p < ALPHA
    a, b = zip(*cost_pairs, strict=True)
    test = paired_ratio(list(a), list(b), ALPHA)
    return {
        "false_faster": false,
        "repeats": repeats,
        "ratio": test.ratio,
        "ci": [test.low, test.high],
        "p": test.p,
    }


def machine() -> str:
    model = "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    import torch

    return f"{socket.gethostname()}: {model}, {os.cpu_count()} cores, {platform.python_version()}, torch {torch.__version__}"


def table(res: dict[str, Any], args: argparse.Namespace) -> str:
    idle, loaded = res["idle"], res["loaded"]
    lines = [
        START,
        f"Measured {res['date']} on {res['machine']} by `python bench/nanogpt_noise.py "
        f"{' '.join(res['argv'])}` ({res['minutes']:.1f} min). **Reduced sitting**: "
        f"{args.steps}-step runs stand for whole runs (steps carry no timing noise), "
        f"K = {args.k}, {args.pairs} pairs per plant, {args.control_pairs} control pairs. "
        "Load = the 1-minute load average (2 cores) around each run: the machine is shared "
        'with other sessions, so "idle" means only that the bench added no load.',
        "",
        "| | primary metric (estimated cost) | raw wall time | load |",
        "|---|---|---|---|",
        f"| CV idle, same seed, K = {args.k} | {100 * idle['cv_cost']:.1f}% | "
        f"{100 * idle['cv_wall']:.1f}% | {idle['load']:.2f} |",
        f"| CV under the 2-core load | {100 * loaded['cv_cost']:.1f}% | "
        f"{100 * loaded['cv_wall']:.1f}% | {loaded['load']:.2f} |",
        f"| mean over the K runs, idle / loaded | {idle['cost_s']:.2f} / {loaded['cost_s']:.2f} s"
        f" | {idle['wall_s']:.2f} / {loaded['wall_s']:.2f} s | |",
        "",
        "| plant (under load) | planted | cost ratio (99% CI) | p | pairs needed | wall ratio | "
        "wall p | wall pairs needed | load |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for p in res["plants"]:
        needed = p["needed"] or f"> {p['pairs']}"
        wall_needed = p["wall_needed"] or f"> {p['pairs']}"
        lines.append(
            f"| {p['name']} | {p['planted']} | {p['ratio']:.4f} ({p['ci'][0]:.4f}-{p['ci'][1]:.4f}) "
            f"| {p['p']:.2g} | {needed} | {p['wall_ratio']:.4f} | {p['wall_p']:.2g} | "
            f"{wall_needed} | {p['load']:.2f} |"
        )
    c = res["control"]
    lines += [
        "",
        f"Control (the reference against itself, {args.control_pairs} pairs under load, load "
        f"{c['load']:.2f}): ratio {c['ratio']:.4f} (99% CI {c['ci'][0]:.4f}-{c['ci'][1]:.4f}, "
        f'p = {c["p"]:.2g}); **{c["false_faster"]} false "faster" verdicts in {c["repeats"]}** '
        "paired tests on resampled sets of 4 pairs (resampled from the pairs measured, not "
        "20 fresh sittings).",
        f"The speed probe's median CPU time: {idle['probe_ms']:.2f} ms idle, "
        f"{loaded['probe_ms']:.2f} ms loaded.",
        END,
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=34, help="steps per run (the budget)")
    parser.add_argument("--k", type=int, default=5, help="runs per noise condition")
    parser.add_argument("--pairs", type=int, default=8, help="pairs per planted speedup")
    parser.add_argument("--control-pairs", type=int, default=8)
    parser.add_argument("--threads", type=int, default=1, help="tiny trains on one")
    parser.add_argument("--burn3", type=int, default=24, help="matmuls for the ~3%% plant")
    parser.add_argument("--burn10", type=int, default=80, help="matmuls for the ~10%% plant")
    parser.add_argument("--no-docs", action="store_true", help="do not write docs/nanogpt.md")
    parser.add_argument("--json", type=Path)
    parser.add_argument(
        "--noise-only", action="store_true", help="part 1 only (as bench/noise_against.py runs it)"
    )
    args = parser.parse_args()
    started = time.time()
    ref = PROGRAMS / "tiny.py"
    res: dict[str, Any] = {
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "machine": machine(),
        "argv": sys.argv[1:],
    }
    print("noise, idle", flush=True)
    res["idle"] = noise(args, loaded=False)
    # Bounded: the whole loaded part, at a generous 60 s per run, then the spinners stop.
    loaded_runs = args.k + (0 if args.noise_only else 8 * args.pairs + 2 * args.control_pairs)
    with spinning(60.0 * loaded_runs):
        print("noise, loaded", flush=True)
        res["loaded"] = noise(args, loaded=True)
        if args.noise_only:
            if args.json:
                args.json.write_text(json.dumps(res, indent=1, default=str))
            return

        def run(program: Path, steps: int) -> Callable[[int], dict[str, float]]:
            return lambda seed: one_run(program, seed, steps, args.threads)

        s = args.steps
        ml3, ml10 = round(s * 0.97), round(s * 0.9)
        plants = [
            (
                "systems ~10%",
                run(ref, s),
                run(burned(args.burn10), s),
                f"{args.burn10} matmuls/step",
            ),
            ("systems ~3%", run(ref, s), run(burned(args.burn3), s), f"{args.burn3} matmuls/step"),
            ("ML ~10%", run(ref, ml10), run(ref, s), f"{ml10}/{s} steps = {ml10 / s:.3f}"),
            ("ML ~3%", run(ref, ml3), run(ref, s), f"{ml3}/{s} steps = {ml3 / s:.3f}"),
        ]
        res["plants"] = []
        for name, candidate, reference, planted in plants:
            print(name, flush=True)
            res["plants"].append(
                {**paired(name, candidate, reference, args.pairs), "planted": planted}
            )
        print("control", flush=True)
        same = paired("control", run(ref, s), run(ref, s), args.control_pairs)
        res["control"] = {**control(same["cost_pairs"]), "load": same["load"]}
    res["minutes"] = (time.time() - started) / 60
    text = table(res, args)
    print(text)
    if args.json:
        args.json.write_text(json.dumps(res, indent=1, default=str))
    if not args.no_docs:
        docs = DOCS.read_text()
        if START in docs:
            head, rest = docs.split(START, 1)
            docs = head + text + rest.split(END, 1)[1]
        else:
            docs += "\n" + text + "\n"
        DOCS.write_text(docs)


if __name__ == "__main__":
    main()
