"""The nanogpt harness's own cost per training step, against a bare loop of the same program.

Both sides run the tiny reference program's own ``train`` on the same model, optimizer and
batch shapes, each in a fresh child forked from this process, alternating so that load from
other processes hits both alike:

- bare: ``train(model, h)`` with a stand-in ``h`` that yields pre-made batches from memory (no
  clock, stream, checkpoints, telemetry, sentinel or patch watch);
- harness: ``run_training`` as an evaluation runs it (stream, clock, checkpoint checks, static
  scan, sentinel, patch watch), with telemetry off: bench/nanogpt_telemetry.py measures that.

The figures are the harness's time per step minus the bare loop's, in wall time and in CPU time
(with ``--threads 1`` the CPU figure is immune to load from other processes); the harness's
off-clock time (checkpoints, probes, corpus generation) is reported beside them.

    python bench/nanogpt_harness.py [--steps 200] [--repeats 3] [--threads 2] [--program PATH]

With a very small program (tests/environments/nanogpt/nanogpt_data/small_gpt.py, a few ms per step) the harness's
fixed cost per step stands out; with the reference it is lost in the noise.
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
from progressbench_environments.nanogpt import corpus
from progressbench_environments.nanogpt.config import make_spec
from progressbench_environments.nanogpt.env import PROGRAMS, NanoGPT
from progressbench_environments.nanogpt.harness import run_training
from progressbench_environments.nanogpt.local import in_child

for _module in NanoGPT.preload:  # as the warm worker does: children inherit the imports
    importlib.import_module(_module)


class BareHandle:
    """The smallest ``h`` a program's train() needs: batches from memory, no clock."""

    def __init__(self, batches: list[tuple[torch.Tensor, torch.Tensor]]):
        self._batches = batches
        self.device = torch.device("cpu")
        self.world_size, self.rank, self.smoke = 1, 0, False

    def batches(self, batch_size: int, seq_len: int):
        for x, y in self._batches:
            yield x.view(batch_size, seq_len), y.view(batch_size, seq_len)

    def warmup(self) -> contextlib.nullcontext:
        return contextlib.nullcontext()

    def random_batch(self, batch_size: int, seq_len: int) -> tuple[torch.Tensor, torch.Tensor]:
        tokens = torch.randint(0, 32, (batch_size, seq_len + 1))
        return tokens[:, :-1].contiguous(), tokens[:, 1:].contiguous()


def bare(program: Path, steps: int, threads: int) -> dict[str, Any]:
    torch.set_num_threads(threads)
    module = load_program(program)
    torch.manual_seed(0)
    model = module.build_model(32)
    n = module.BATCH_SIZE * module.SEQ_LEN
    tokens = torch.from_numpy(corpus.split_tokens("train", steps * n + 1).astype(np.int64))
    batches = [
        (tokens[i * n : (i + 1) * n].clone(), tokens[i * n + 1 : (i + 1) * n + 1].clone())
        for i in range(steps)
    ]
    start, cpu = time.perf_counter(), time.process_time()
    module.train(model, BareHandle(batches))
    return {
        "seconds": time.perf_counter() - start,
        "cpu_s": time.process_time() - cpu,
        "steps": steps,
    }


def harnessed(program: Path, steps: int, threads: int, scratch: Path) -> dict[str, Any]:
    options = {
        "max_steps": steps,
        "time_budget_s": 3600,
        "ckpt_every_steps": 1_000_000,
        "threads": threads,
        "profile": False,
        "val_tokens": 4096,
        "probe_tokens": 4096,
    }
    raw = run_training(program, make_spec("tiny", "full", 0, scratch, options))
    return {
        "seconds": raw["train_time_s"],
        "cpu_s": raw["telemetry"]["cpu_s"],
        "steps": raw["steps"],
        "excluded_s": raw["excluded_s"],
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--program", type=Path, default=PROGRAMS / "tiny.py")
    args = parser.parse_args()
    rows = []
    for _ in range(args.repeats):
        with tempfile.TemporaryDirectory() as tmp, tempfile.TemporaryDirectory() as logs:
            b, err_b, _ = in_child(
                lambda: bare(args.program, args.steps, args.threads), 3600, Path(logs) / "bare.log"
            )
            h, err_h, _ = in_child(
                lambda: harnessed(args.program, args.steps, args.threads, Path(tmp)),
                3600,
                Path(logs) / "h.log",
            )
        if b is None or h is None:
            raise SystemExit(err_b or err_h)
        row = {
            "bare_ms": 1000 * b["seconds"] / b["steps"],
            "harness_ms": 1000 * h["seconds"] / h["steps"],
            "bare_cpu_ms": 1000 * b["cpu_s"] / b["steps"],
            "harness_cpu_ms": 1000 * h["cpu_s"] / h["steps"],
            "off_clock_s": h["excluded_s"],
        }
        rows.append(row)
        print(
            f"wall: bare {row['bare_ms']:7.2f} ms/step, harness {row['harness_ms']:7.2f} "
            f"({row['harness_ms'] - row['bare_ms']:+.2f} ms) | CPU: bare "
            f"{row['bare_cpu_ms']:7.2f} ms/step, "
            f"harness {row['harness_cpu_ms']:7.2f} "
            f"({row['harness_cpu_ms'] - row['bare_cpu_ms']:+.2f} ms, "
            f"{100 * (row['harness_cpu_ms'] / row['bare_cpu_ms'] - 1):+.1f}%) | off-clock "
            f"{row['off_clock_s']:.2f} s",
            flush=True,
        )
    summary = {
        "median_wall_overhead_ms_per_step": round(
            statistics.median(r["harness_ms"] - r["bare_ms"] for r in rows), 3
        ),
        "median_cpu_overhead_ms_per_step": round(
            statistics.median(r["harness_cpu_ms"] - r["bare_cpu_ms"] for r in rows), 3
        ),
        "median_cpu_overhead_share": round(
            statistics.median(r["harness_cpu_ms"] / r["bare_cpu_ms"] - 1 for r in rows), 4
        ),
        "steps": args.steps,
        "threads": args.threads,
    }
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
