"""The nanogpt environment: evolve a GPT training script to reach a validation loss fastest.

Imports stay light at module level (the platform loads plugins for ``--help``); torch and the
harness load inside the sandbox-side methods, or in the warm worker through ``preload``.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar

from progressbench import (
    Assessment,
    Environment,
    Feature,
    Objective,
    Resources,
    SandboxContext,
    UserError,
    Variant,
)

from . import config
from .config import COMPILE_WORKERS, SPEEDRUN_HF_REPO, TINY, VARIANTS, RunSpec, make_spec

PROGRAMS = Path(__file__).resolve().parent / "programs"
PACKAGE = __name__.rpartition(".")[0]


def visible_gpus() -> int:
    """CUDA devices this process may use, without importing torch when it is not loaded."""
    torch = sys.modules.get("torch")
    if torch is not None:
        return int(torch.cuda.device_count())
    try:
        count = len(os.listdir("/proc/driver/nvidia/gpus"))
    except OSError:
        return 0
    mask = os.environ.get("CUDA_VISIBLE_DEVICES")
    if mask is not None:
        ids = [x for x in mask.split(",") if x.strip() and x.strip() != "-1"]
        count = min(count, len(ids))
    return count


class NanoGPT(Environment):
    name = "nanogpt"
    description = (
        "Train a GPT language model to a target validation loss as fast as possible "
        "(the modded-nanogpt speedrun, with a self-generated CPU variant)."
    )
    variants: ClassVar[dict[str, Variant]] = {
        v.name: Variant(name=v.name, description=v.description, requires_gpu=v.requires_gpu)
        for v in VARIANTS.values()
    }
    default_variant = TINY.name
    # torch._dynamo: torch.optim imports it on first use (~2 s), so the warm worker pays once.
    preload = ("torch", "torch._dynamo", "numpy", f"{PACKAGE}.harness", f"{PACKAGE}.verify")
    verifies = True
    packages = ("torch", "numpy", "triton")
    frontier = ("train_cost_s", "val_loss")
    show_metrics = ("steps_to_target", "cost_per_step_ms")
    Options = config.Options

    # --- platform side -----------------------------------------------------------------------
    def pick_variant(self, requested: str | None) -> str:
        if requested:
            return requested
        return "speedrun" if visible_gpus() else TINY.name

    def unavailable(self, variant: str, options: Mapping[str, Any] | None = None) -> str | None:
        """``options``: the run's, whose ``data_dir`` says where the shards are."""
        if variant not in VARIANTS:
            return f"nanogpt has no variant {variant!r} (choose from {', '.join(VARIANTS)})"
        if variant == "speedrun":
            if not visible_gpus():
                return (
                    "the nanogpt speedrun variant needs at least one CUDA GPU and this machine has "
                    "none; use --variant tiny for the CPU version"
                )
            from .data import shards_missing

            return shards_missing((options or {}).get("data_dir"))
        return None

    def objective(self, variant: str) -> Objective:
        v = VARIANTS[variant]
        # cost_to_target_s: the estimated unloaded training time on tiny (cost.py), the wall
        # time on the speedrun; time_to_target_s (wall) is stored beside it.
        return Objective(
            metric="cost_to_target_s", direction="minimize", unit="s", records=dict(v.records)
        )

    def baseline(self, variant: str) -> str:
        return (PROGRAMS / f"{VARIANTS[variant].name}.py").read_text()

    def resources(self, variant: str) -> Resources:
        v = VARIANTS[variant]
        gpus = max(1, visible_gpus()) if v.requires_gpu else 0
        return Resources(
            cpus=v.cpus,
            gpus=gpus,
            seconds=v.budget_s * v.wall_cap_factor + v.warmup_cap_s + v.run_slack_s,
            smoke_seconds=v.smoke_seconds,
            memory_mb=v.memory_mb,
            file_mb=v.file_mb,
            disk_mb=v.disk_mb,
            # Every rank: CUDA's, NCCL's and autograd's threads, a data thread, compile workers
            # (each a process with threads of its own); torchrun and its agent besides.
            processes=None if gpus == 0 else 64 + gpus * (96 + 16 * COMPILE_WORKERS),
        )

    def readable_paths(self, variant: str, options: Mapping[str, Any] | None = None) -> list[str]:
        """The speedrun's shards (where the run's ``data_dir`` option, if any, puts them), which
        may lie under the platform user's home (hidden from candidates otherwise); the harness
        alone opens them, the sentinel refuses the program."""
        if variant != "speedrun":
            return []
        from .data import locate

        return [str(locate((options or {}).get("data_dir")))]

    def features(self, variant: str) -> list[Feature]:
        if variant == "speedrun":
            return [
                Feature(name="log10_params", low=7.0, high=9.0),
                Feature(name="log10_tokens_per_s", low=5.0, high=7.5),
            ]
        return [
            Feature(name="log10_params", low=4.0, high=7.0),
            Feature(name="log10_tokens_per_s", low=3.0, high=6.0),
        ]

    def task_description(self, variant: str) -> str:
        v = VARIANTS[variant]
        floor = (
            f" The corpus comes from a known probabilistic grammar whose Bayes-optimal loss (the "
            f"entropy floor) is {v.entropy_floor:.3f} nats/token."
            if v.entropy_floor
            else ""
        )
        return (
            f"{v.description}\n\n"
            f"Objective: reach a validation loss of {v.target} (mean cross-entropy in nats over "
            "the "
            f"first {v.val_tokens:,} validation tokens, in windows of {v.eval_seq_len} tokens) in "
            "as "
            f"little training time as possible; training stops at {v.budget_s:g}s. "
            + (
                "Training time is estimated as on an unloaded machine: the training's CPU time "
                "on its one thread, calibrated against a fixed speed probe, so fewer steps and "
                "cheaper steps both count, and a parallel speed-up does not (one thread); "
                "checkpoints come at fixed step counts. "
                if v.cost_clock
                else ""
            )
            + "A run that "
            f"never reaches the target is ranked by its best validation loss.{floor}\n\n"
            "The program defines build_model(vocab_size) -> nn.Module, whose forward maps token "
            "ids "
            "[B, T] to logits [B, T, >= vocab_size] and must be causal, and train(model, h), the "
            "training loop. The harness h provides the train stream (h.batches(batch_size, "
            "seq_len) yields (x, y) on h.device), the clock (h.elapsed()), and h.warmup() for "
            "compilation with h.random_batch(), before the first batch; the clock excludes "
            "warm-up (up to "
            f"{v.warmup_cap_s:g}s) and the harness's checkpoints. The harness computes every "
            "reported "
            "loss itself, from the saved weights, in a separate process; the training loss, "
            "optimizer, schedule, architecture and kernels are yours to change.\n\n"
            "Rules: do not open files, start processes or threads, inspect frames or the garbage "
            "collector, import progressbench modules, or rebind functions of torch, numpy, math, "
            "time or builtins (define your own functions instead). Such programs are rejected."
        )

    def guard_rules(self, variant: str) -> dict[str, Any]:
        """For the platform's integrity guards (see docs/integrity.md): the
        functions the harness's measurements rest on may not be rebound, and the harness owns
        the seed (a program that seeds itself makes re-runs with fresh seeds identical)."""
        return {
            "protected_names": [
                "time.perf_counter",
                "time.process_time",
                "time.monotonic",
                "time.time",
                "torch.cuda.synchronize",
                "torch.logsumexp",
                "torch.gather",
                "torch.nn.Module.state_dict",
                "torch.nn.Module.load_state_dict",
            ],
            "forbidden_attributes": [
                "torch.manual_seed",
                "torch.seed",
                "torch.cuda.manual_seed*",
                "torch.random.manual_seed",
                "numpy.random.seed",
                "random.seed",
            ],
        }

    def verification(self, variant: str) -> dict[str, Any]:
        """What ``progressbench verify`` tests: the best validation loss of each re-run
        against the target (the speedrun's rule), and, in pairs with the reference on the same
        fresh seed, whether the cost to the target is lower (the record criterion)."""
        return {
            "metric": "best_val_loss",
            "direction": "minimize",
            "target": VARIANTS[variant].target,
            "compare": ["cost_to_target_s", "time_to_target_s", "steps_to_target"],
            "faster": "cost_to_target_s",
        }

    def assess(
        self, raw: dict[str, Any], verified: dict[str, Any] | None, variant: str
    ) -> Assessment:
        from .assess import assess

        return assess(raw, verified, variant)

    def format_telemetry(self, telemetry: dict[str, Any]) -> str:
        from .assess import format_telemetry

        return format_telemetry(telemetry)

    def format_telemetry_diff(self, telemetry: dict[str, Any], parent: dict[str, Any]) -> str:
        from .assess import format_telemetry_diff

        return format_telemetry_diff(telemetry, parent)

    def fetch_data(self, variant: str, dest: Path | None, options: dict[str, Any]) -> str:
        if variant == TINY.name:
            return (
                "nanogpt tiny generates its corpus deterministically inside each evaluation "
                "(progressbench_environments.nanogpt.corpus); nothing to fetch"
            )
        from .data import locate
        from .shards import DEFAULT_TRAIN_SHARDS, FetchError, ShardError, fetch_fineweb

        where = dest or options.get("data_dir")
        directory = locate(where)
        wanted = int(options.get("train_shards", DEFAULT_TRAIN_SHARDS))
        try:
            paths = fetch_fineweb(directory, wanted, SPEEDRUN_HF_REPO)
        except (FetchError, ShardError) as exc:
            raise UserError(str(exc)) from None
        # Data fetched elsewhere than the default is only found where the run is told of it.
        use = f"; runs read them with --env-option data_dir={where}" if where else ""
        return (
            f"nanogpt speedrun: {len(paths) - 1} FineWeb10B train shards and the val shard in "
            f"{directory}{use}"
        )

    # --- sandbox side ------------------------------------------------------------------------
    def smoke(self, program: Path, ctx: SandboxContext) -> dict[str, Any]:
        from .harness import run_training
        from .losses import ProgramError

        spec = make_spec(ctx.variant, "smoke", ctx.seed, ctx.scratch, ctx.options)
        raw = run_training(Path(program), spec)
        if not raw.get("ok"):
            raise ProgramError(raw.get("error") or "; ".join(raw.get("violations", [])))
        if raw.get("tampered"):
            raise ProgramError(
                "the program rebound functions the harness relies on (define your own instead): "
                + ", ".join(raw["tampered"])
            )
        causal = raw.get("causality", {})
        tolerance = VARIANTS[ctx.variant].causal_tolerance
        if max(causal.get("prefix_change", 0.0), causal.get("cross_change", 0.0)) > tolerance:
            raise ProgramError(
                "the model is not causal: its predictions for a position change when later tokens "
                f"(or other sequences in the batch) change ({causal})"
            )
        return {
            "steps": raw["steps"],
            "tokens": raw["tokens"],
            "probe_loss": raw["checkpoints"][-1]["probe_loss"],
        }

    def run(self, program: Path, ctx: SandboxContext) -> dict[str, Any]:
        spec = make_spec(ctx.variant, "full", ctx.seed, ctx.scratch, ctx.options)
        nproc = _processes(spec, ctx.variant)
        if nproc <= 1:
            from .harness import run_training

            return run_training(Path(program), spec)
        from .launch import launch

        v = VARIANTS[ctx.variant]
        return launch(
            Path(program), spec, nproc, timeout=spec.budget_s + v.warmup_cap_s + v.run_slack_s
        )

    def verify(self, program: Path, raw: dict[str, Any], ctx: SandboxContext) -> dict[str, Any]:
        from .verify import verify_run

        spec = make_spec(ctx.variant, "verify", ctx.seed, ctx.scratch, ctx.options)
        # How many processes the run had, from its configuration rather than from its own
        # report: a single-process run must show its timekeeper's record (``ledger``).
        return {**verify_run(Path(program), raw, spec), "processes": _processes(spec, ctx.variant)}


def _processes(spec: RunSpec, variant: str) -> int:
    """The training processes of a run: the ``nproc`` option, else one per visible GPU on the
    speedrun, else one."""
    return spec.nproc or (visible_gpus() if variant == "speedrun" else 1)
