"""Variant settings and the JSON-able spec handed to the harness (no torch import here: the
platform process reads this module, and ``progressbench --help`` must stay fast)."""

from __future__ import annotations

import os
import pwd
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, create_model

# Options a user's config may set per run (``ctx.options``); anything else is refused at run
# start (``Options``), so a typo is one line, not a protocol silently left unchanged.
RUN_OPTIONS = {
    "time_budget_s": float,  # training-clock budget (shrink for tests and benches)
    "max_steps": int,  # stop the train stream after this many batches
    "ckpt_every_steps": int,  # checkpoint cadence in training steps (batches)
    "ckpt_min_steps": int,
    "profile": bool,  # telemetry on (sections, profiler window, curves); off for benches
    "profile_at_s": float,  # when the profiler window opens (training seconds)
    "stop_at_target": bool,
    "data_dir": str,  # speedrun: where the shards are
    "nproc": int,  # speedrun: processes for torchrun (default: visible GPUs)
    # Shrink the protocol for tests and benches (a run records the values it used).
    "val_tokens": int,
    "probe_tokens": int,
    "eval_batch": int,  # validation windows per forward pass (memory, not results)
    "threads": int,  # CPU threads for torch (default: the variant's cpus)
    # With several processes: a collective that has not completed after this long ends the
    # run as failed (a rank-asymmetric program would otherwise hang until the time limit).
    "collective_timeout_s": float,
}
COLLECTIVE_TIMEOUT_S = 300.0
# Inductor's compile workers per process on CUDA (set explicitly: its default is one per core,
# up to 32, and each is a process the sandbox's task limit counts).
COMPILE_WORKERS = 8
Options: type[BaseModel] = create_model(  # type: ignore[call-overload]
    "NanoGPTOptions",
    __config__=ConfigDict(extra="forbid"),
    **{name: (kind | None, None) for name, kind in RUN_OPTIONS.items()},
)


@dataclass(frozen=True)
class VariantSpec:
    name: str
    description: str
    requires_gpu: bool
    vocab_size: int
    # Validation protocol: the first ``val_tokens`` tokens of the validation split, cut into
    # windows of ``eval_seq_len`` (the model sees at most that much context).
    eval_seq_len: int
    val_tokens: int
    # Held-out train-distribution tokens the run itself scores at every checkpoint (the
    # run never holds validation data); the verifier recomputes the same numbers.
    probe_tokens: int
    target: float
    # The budget, in the primary clock's seconds: estimated unloaded training time where
    # ``cost_clock`` (tiny), training wall time otherwise (the speedrun, on dedicated GPUs).
    budget_s: float
    # Checkpoints come every ``ckpt_every_steps`` training steps, closer together (down to
    # ``ckpt_min_steps``) as the probe loss nears the target: placed by step counts and probe
    # losses only, never by wall time, so that steps and tokens to the target are
    # deterministic for a program and seed, and resolved finely without scoring hundreds.
    ckpt_every_steps: int
    ckpt_min_steps: int
    # True: the primary metric is the estimated training time on an unloaded machine
    # (``cost.py``): the training's CPU time on its one thread, calibrated by a speed probe;
    # wall time stays a secondary metric. The run also ends at ``wall_cap_factor`` x the budget of wall time,
    # so that a heavily loaded machine cannot hold an evaluation forever.
    cost_clock: bool
    wall_cap_factor: float
    # Warm-up (compilation) time beyond this is charged to the training clock.
    warmup_cap_s: float
    # The profiler records ``profile_steps`` batches once ``profile_at_s`` of training passed.
    profile_at_s: float
    profile_steps: int
    eval_batch: int  # validation windows per forward pass
    # |run's probe loss - verifier's| above this invalidates the run (numerics differ a little
    # between processes: thread counts, kernels).
    probe_tolerance: float
    causal_tolerance: float
    # Tiny only: the largest allowed (fresh-sample loss - validation loss); a larger gap means
    # the model was fitted to the validation tokens.
    fresh_gap_limit: float | None
    # The largest allowed (probe loss - validation loss) of the same weights, beyond four
    # standard errors of the probe's own spread: the two samples differ a little by nature
    # (on the speedrun, the tail of a train shard against the validation shard); a model that
    # does much better on the validation windows than on the probe's knows them.
    probe_gap_limit: float
    cpus: float
    gpus: int
    memory_mb: int
    smoke_seconds: float
    # Wall seconds one evaluation's ``run`` may take beyond the training budget (probes,
    # checkpoints, process start).
    run_slack_s: float
    # The largest checkpoint file and all of one evaluation's scratch (every checkpoint is
    # kept until verification): sized for the largest model the knobs allow.
    file_mb: int
    disk_mb: int
    entropy_floor: float | None = None
    records: dict[str, float] = field(default_factory=dict)


TINY = VariantSpec(
    name="tiny",
    description=(
        "A small character-level GPT on a corpus the project generates itself (a probabilistic "
        "grammar with topics, agreement and fixed spellings; exact entropy floor known); "
        "one CPU core per evaluation (one thread: CPU time, the metric, is then what an "
        "unloaded core would take)."
    ),
    requires_gpu=False,
    vocab_size=32,
    eval_seq_len=256,
    val_tokens=65_536,
    probe_tokens=16_384,
    target=1.00,
    budget_s=200.0,
    # The reference reaches the target near step 500 (~130 s on one core here): ~10
    # checkpoints at the full cadence, then every 5 steps (~1.2 s) near the target.
    ckpt_every_steps=50,
    ckpt_min_steps=5,
    cost_clock=True,
    wall_cap_factor=2.0,
    warmup_cap_s=10.0,
    profile_at_s=10.0,
    profile_steps=4,
    eval_batch=64,
    probe_tolerance=2e-3,
    # float32 on CPU: a causal model's earlier predictions do not move at all.
    causal_tolerance=1e-6,
    fresh_gap_limit=0.05,
    probe_gap_limit=0.05,
    cpus=1,
    gpus=0,
    memory_mb=4096,
    smoke_seconds=30.0,
    run_slack_s=40.0,
    file_mb=256,  # the knobs' largest model: ~24M parameters, ~95 MB in float32
    disk_mb=4096,
    # corpus.entropy_floor of the validation tokens; a test recomputes it.
    entropy_floor=0.705569,
)

SPEEDRUN = VariantSpec(
    name="speedrun",
    description=(
        "The modded-nanogpt speedrun: GPT-2-124M-class models on FineWeb10B shards, target "
        "3.28 mean validation loss over the first 10,485,760 validation tokens, torchrun "
        "across the visible GPUs."
    ),
    requires_gpu=True,
    vocab_size=50257,
    eval_seq_len=1024,
    val_tokens=10_485_760,
    probe_tokens=1_048_576,
    target=3.28,
    budget_s=3600.0,
    # Not measured (no GPU here): the reference's 3000 steps in 12 checkpoints at the cadence.
    ckpt_every_steps=250,
    ckpt_min_steps=25,
    cost_clock=False,
    wall_cap_factor=1.0,
    warmup_cap_s=600.0,
    profile_at_s=60.0,
    profile_steps=5,
    eval_batch=16,
    probe_tolerance=1e-2,
    causal_tolerance=1e-3,
    fresh_gap_limit=None,
    probe_gap_limit=0.1,  # not measured: no GPU and no FineWeb shards on this machine
    cpus=8,
    gpus=1,
    memory_mb=65536,
    smoke_seconds=900.0,
    run_slack_s=1800.0,
    # The knobs' largest model (~1.3B parameters) is ~5.2 GB in float32; the reference's,
    # ~0.65 GB, about 70 of them in an hour's budget.
    file_mb=8192,
    disk_mb=49152,
)

VARIANTS = {v.name: v for v in (TINY, SPEEDRUN)}

# A checkpoint counts as within the budget up to this fraction past it: the stream ends at the
# first batch after the budget, so the last step and the final checkpoint run a little over.
BUDGET_SLACK = 0.05

SPEEDRUN_HF_REPO = "kjj0/fineweb10B-gpt2"


def default_data_dir() -> Path:
    """Where fetched data lives unless ``data_dir`` is given. ``PROGRESSBENCH_DATA`` is one of
    the variables the sandbox lets through, so the platform and its candidates agree on it; the
    sandbox child's HOME is its scratch dir, so the fallback reads the account's home from the
    password database."""
    if os.environ.get("PROGRESSBENCH_DATA"):
        return Path(os.environ["PROGRESSBENCH_DATA"]) / "nanogpt"
    try:
        home = Path(pwd.getpwuid(os.getuid()).pw_dir)
    except KeyError:
        home = Path.home()
    return home / ".cache" / "progressbench" / "nanogpt"


def fineweb_dir(data_dir: Path | None) -> Path:
    return (data_dir or default_data_dir()) / "fineweb10B"


@dataclass
class RunSpec:
    """Everything the harness needs for one run, JSON-able (torchrun workers read it)."""

    variant: str
    mode: str  # "smoke" | "full" | "verify"
    seed: int
    scratch: str
    budget_s: float
    ckpt_every_steps: int
    ckpt_min_steps: int
    max_steps: int | None
    profile: bool
    profile_at_s: float
    stop_at_target: bool
    val_tokens: int
    probe_tokens: int
    eval_batch: int
    threads: int
    data_dir: str | None
    nproc: int
    collective_timeout_s: float = COLLECTIVE_TIMEOUT_S

    @property
    def variant_spec(self) -> VariantSpec:
        return VARIANTS[self.variant]

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> RunSpec:
        return cls(**data)


def make_spec(
    variant: str, mode: str, seed: int, scratch: Path, options: dict[str, Any]
) -> RunSpec:
    """The spec of one run: the variant's protocol, shrunk by the run options tests use."""
    v = VARIANTS[variant]
    opts = {k: RUN_OPTIONS[k](options[k]) for k in RUN_OPTIONS if options.get(k) is not None}
    smoke = mode == "smoke"
    budget = opts.get("time_budget_s", v.budget_s)
    if smoke:
        # A smoke check proves the program runs: a few batches, no profiler.
        budget = min(budget, 3.0)
    return RunSpec(
        variant=variant,
        mode=mode,
        seed=seed,
        scratch=str(scratch),
        budget_s=budget,
        ckpt_every_steps=max(1, opts.get("ckpt_every_steps", v.ckpt_every_steps)),
        ckpt_min_steps=max(1, opts.get("ckpt_min_steps", v.ckpt_min_steps)),
        max_steps=3 if smoke else opts.get("max_steps"),
        profile=False if smoke else opts.get("profile", True),
        # By default a quarter into the budget: past the first (slow) steps, well before the end.
        profile_at_s=opts.get("profile_at_s", min(v.profile_at_s, 0.25 * budget)),
        stop_at_target=opts.get("stop_at_target", True),
        val_tokens=min(opts.get("val_tokens", v.val_tokens), v.val_tokens),
        probe_tokens=min(opts.get("probe_tokens", v.probe_tokens), v.probe_tokens),
        eval_batch=opts.get("eval_batch", v.eval_batch),
        threads=opts.get("threads", int(v.cpus)),
        data_dir=opts.get("data_dir"),
        nproc=opts.get("nproc", 0),
        collective_timeout_s=opts.get("collective_timeout_s", COLLECTIVE_TIMEOUT_S),
    )
