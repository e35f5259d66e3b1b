"""Telemetry overhead: the same program under the harness with telemetry on (sections,
training-loss capture, the profiler window) and off, alternating in fresh forked children.

Two figures, each the median over pairs of adjacent runs: by wall time, 1 - (tokens/s with
telemetry) / (tokens/s without); by CPU time, (CPU seconds per token with) / (without) - 1.
On a shared machine both swing by a few percent from run to run, so a decomposition follows,
measured inside one process: training steps alternate with the per-step probes on and off
(sections, backward wrapper, optimizer hooks, loss capture), then a profiler window of the
harness's length runs; the overhead a run of the given length would see is computed from them.

    python bench/nanogpt_telemetry.py [--seconds 20] [--repeats 3] [--threads 2] [--program PATH]
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import json
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from progressbench.sandbox.loader import load_program
from progressbench_environments.nanogpt import corpus, telemetry
from progressbench_environments.nanogpt.config import TINY, make_spec
from progressbench_environments.nanogpt.env import PROGRAMS, NanoGPT
from progressbench_environments.nanogpt.harness import run_training
from progressbench_environments.nanogpt.local import in_child

for _module in NanoGPT.preload:  # as the warm worker does: children inherit the imports
    importlib.import_module(_module)


def one(
    program: Path, seconds: float, profile: bool, threads: int, scratch: Path
) -> dict[str, Any]:
    # The profiler window opens a quarter into the budget: past the first steps, before the end.
    options = {
        "time_budget_s": seconds,
        "ckpt_every_steps": 1_000_000,
        "profile": profile,
        "threads": threads,
        "val_tokens": 4096,
        "probe_tokens": 4096,
    }
    raw = run_training(program, make_spec("tiny", "full", 0, scratch, options))
    profiled = bool((raw["telemetry"].get("profile") or {}).get("top"))
    return {
        "tokens_per_s": raw["tokens"] / raw["train_time_s"],
        "cpu_s_per_mtok": 1e6 * raw["telemetry"]["cpu_s"] / raw["tokens"],
        "profiled": profiled,
    }


class AlternatingHandle:
    """An ``h`` whose batches switch the per-step probes on and off in turn and time every
    step (fetch to fetch, process CPU time), then run the last ``profiled`` under the profiler."""

    def __init__(self, steps: int, profiled: int):
        self.device = torch.device("cpu")
        self.world_size, self.rank, self.smoke = 1, 0, False
        self.steps, self.profiled = steps, profiled
        self.times: dict[str, list[float]] = {"off": [], "on": [], "profiled": []}

    def warmup(self) -> contextlib.nullcontext:
        return contextlib.nullcontext()

    def random_batch(self, batch_size: int, seq_len: int):
        tokens = torch.randint(0, 32, (batch_size, seq_len + 1))
        return tokens[:, :-1].contiguous(), tokens[:, 1:].contiguous()

    def batches(self, batch_size: int, seq_len: int):
        n = batch_size * seq_len
        total = self.steps + self.profiled
        tokens = torch.from_numpy(corpus.split_tokens("train", total * n + 1).astype(np.int64))
        sections = telemetry.Sections(time.perf_counter, None)
        sections.resume()
        window = telemetry.ProfileWindow(False, self.profiled)
        undo = None
        last, kind = None, None
        for i in range(total):
            now = time.process_time()
            if last is not None:
                self.times[kind].append(now - last)
            if undo is not None:
                undo()
                undo = None
            if i == self.steps:
                window.start(i, 0)
            kind = "profiled" if i >= self.steps else ("on" if i % 2 else "off")
            if kind == "on":
                undo = telemetry.install_probes(sections, lambda t: t.detach())
            x = tokens[i * n : (i + 1) * n].view(batch_size, seq_len)
            y = tokens[i * n + 1 : (i + 1) * n + 1].view(batch_size, seq_len)
            last = time.process_time()
            yield x, y
        self.times[kind].append(time.process_time() - last)
        window.stop(total, 1)


def decompose(program: Path, steps: int, threads: int) -> dict[str, Any]:
    torch.set_num_threads(threads)
    module = load_program(program)
    model = module.build_model(TINY.vocab_size)
    handle = AlternatingHandle(steps, TINY.profile_steps)
    module.train(model, handle)
    off, on, profiled = (handle.times[k] for k in ("off", "on", "profiled"))
    # Adjacent steps see the same load: the median of their differences is the probes' cost.
    return {
        "step_ms": 1000 * statistics.median(off),
        "probes_ms": 1000 * statistics.median(b - a for a, b in zip(off, on, strict=False)),
        "profiled_extra_ms": 1000 * (statistics.mean(profiled) - statistics.median(off)),
        "steps": len(off) + len(on),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument(
        "--micro-steps", type=int, default=120, help="alternating steps in the decomposition"
    )
    parser.add_argument(
        "--run-steps", type=int, default=500, help="run length the overhead is computed for"
    )
    parser.add_argument("--program", type=Path, default=PROGRAMS / "tiny.py")
    args = parser.parse_args()
    rows = []
    for i in range(args.repeats):
        pair = {}
        order = (True, False) if i % 2 == 0 else (False, True)
        for profile in order:
            with tempfile.TemporaryDirectory() as tmp, tempfile.TemporaryDirectory() as logs:
                result, error, _ = in_child(
                    lambda p=profile: one(args.program, args.seconds, p, args.threads, Path(tmp)),
                    3600,
                    Path(logs) / "log",
                )
            if result is None:
                raise SystemExit(error)
            pair[profile] = result
        on, off = pair[True], pair[False]
        wall = 1 - on["tokens_per_s"] / off["tokens_per_s"]
        cpu = on["cpu_s_per_mtok"] / off["cpu_s_per_mtok"] - 1
        rows.append({"on": on, "off": off, "wall_overhead": wall, "cpu_overhead": cpu})
        print(
            f"on {on['tokens_per_s']:7.0f} tok/s, {on['cpu_s_per_mtok']:6.1f} CPU-s/Mtok "
            f"(profiled: {on['profiled']}) | "
            f"off {off['tokens_per_s']:7.0f} tok/s, {off['cpu_s_per_mtok']:6.1f} CPU-s/Mtok | "
            f"overhead: wall {100 * wall:+.2f}%, CPU {100 * cpu:+.2f}%",
            flush=True,
        )
    summary = {
        "median_wall_overhead": round(statistics.median(r["wall_overhead"] for r in rows), 4),
        "median_cpu_overhead": round(statistics.median(r["cpu_overhead"] for r in rows), 4),
        "seconds": args.seconds,
        "threads": args.threads,
    }
    print(json.dumps(summary))
    with tempfile.TemporaryDirectory() as logs:
        parts, error, _ = in_child(
            lambda: decompose(args.program, args.micro_steps, args.threads),
            3600,
            Path(logs) / "log",
        )
    if parts is None:
        raise SystemExit(error)
    # A tiny evaluation's reference run takes ~500 steps; the profiler window is always 4.
    run_steps = args.run_steps
    share = (parts["probes_ms"] * run_steps + parts["profiled_extra_ms"] * TINY.profile_steps) / (
        parts["step_ms"] * run_steps
    )
    print(
        f"decomposition over {parts['steps']} alternating steps of {parts['step_ms']:.1f} ms "
        "(CPU): "
        f"probes {parts['probes_ms']:+.3f} ms/step, profiled steps "
        f"{parts['profiled_extra_ms']:+.1f} ms each "
        f"-> {100 * share:.2f}% of a {run_steps}-step run"
    )
    print(json.dumps({**parts, "run_steps": run_steps, "implied_overhead": round(share, 5)}))


if __name__ == "__main__":
    main()
