"""The protected harness, run side: it runs a program's ``train(model, h)`` and records what
the training earned, in a form the verifier can check from a fresh process.

The program defines ``build_model(vocab_size) -> nn.Module`` (the model maps token ids
[B, T] to logits [B, T, >= vocab_size] and must be causal) and ``train(model, h)``. The
harness owns, and hands over only through ``h``:

- the train token stream (``h.batches``): the only data the run process ever holds besides a
  held-out probe set of the same distribution. The validation tokens never enter it;
- the clock (``h.elapsed``): wall time of ``train``, paused while the harness checkpoints or
  generates corpus, and during ``h.warmup()`` (compilation), up to a cap. The clock, tiny's
  cost, the speed probe, the tiny corpus and the checkpoint records are kept by the run's
  timekeeper (``keeper``), another process, whose record the sandbox hands to ``assess``. No program code runs
  while it is paused: weights are read straight from the tensors (no hooks, no overridden
  methods), and the probe pass, which runs the program's forward, is charged to it;
- the seed, the target and the budget: the stream ends when the budget is spent (the estimated
  unloaded training time on tiny, ``cost.py``; training wall time on the speedrun), or when
  the probe loss at a checkpoint says the target is reached.

At every checkpoint (every ``ckpt_every_steps`` steps, closer near the target: placed by step
counts and probe losses, never by time) the harness saves the weights with a digest, scores
them on the probe set and times its speed probe; ``verify`` later recomputes the losses from
the files, scores the validation set, and compares.
"""

from __future__ import annotations

import copy
import os
import random
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from torch.optim.optimizer import register_optimizer_step_pre_hook

from progressbench import import_folder, load_program

from . import cost, data, integrity, losses, static, telemetry
from .config import COMPILE_WORKERS, RunSpec
from .keeper import Keeper
from .losses import ProgramError

# Bound before any program code runs: rebinding time.perf_counter, torch.cuda.synchronize,
# torch.save, nn.Module.state_dict... in the program changes nothing the harness measures.
_now = time.perf_counter
_cuda_sync = torch.cuda.synchronize
_save = torch.save
_register_step_pre = register_optimizer_step_pre_hook
_manual_seed = torch.manual_seed
_all_reduce = dist.all_reduce
_broadcast = dist.broadcast
_set_grad = vars(torch._C.TensorBase)["grad"].__set__  # the descriptor: no subclass's setter

CHECKPOINT_DIR = "nanogpt"
# Written in the checkpoint directory before any program code runs: its time tells the verifier
# what the run may have left in the temporary directories.
RUN_STARTED = "run.started"
SMOKE_PROBE_WINDOWS = 8
LOSS_CURVE_POINTS = 64
# With several processes, rank 0 broadcasts its stop/checkpoint decisions about this often
# (in training seconds; a host sync each time, so every batch would cost the speedrun
# measurable throughput), counted in batches from its mean step time.
DIST_SYNC_PERIOD_S = 0.5
DIST_SYNC_MAX_BATCHES = 64
# Stop early only when the probe is this far below the target: probe and validation sets are
# different samples (their losses differ by up to ~0.03 on tiny), and stopping on a probe fluke
# would leave the run short of the target.
STOP_MARGIN = 0.04
# Past this many checkpoints the cadence stops tightening (each one costs verification time).
MAX_CHECKPOINTS = 48


class Harness:
    """What ``train(model, h)`` gets.

    Attributes: ``device``, ``vocab_size``, ``rank``, ``world_size``, ``seed``, ``budget_s``
    (training-clock budget), ``target`` (the validation loss to reach), ``eval_seq_len`` (the
    context the validation gives the model), ``smoke`` (True in the quick pre-check), ``variant``.

    - ``h.batches(batch_size, seq_len)``: an iterator of ``(x, y)`` int64 tensors on ``device``,
      shape [batch_size, seq_len], ``y`` being ``x`` shifted by one token. Every iterator reads
      the same stream (a new one may change shapes: sequence-length schedules work). It ends
      when the budget is spent, the target is reached, or the data runs out.
    - ``h.elapsed()``: seconds on the training clock so far.
    - ``with h.warmup(): ...``: compile or warm kernels with ``h.random_batch`` data; the clock
      stops, and on exit the model's weights, the optimizers' state and the RNG are restored.
    - ``h.random_batch(batch_size, seq_len)``: random tokens shaped like a batch.
    """

    __slots__ = (
        "device", "vocab_size", "rank", "world_size", "seed", "budget_s", "target",
        "eval_seq_len", "smoke", "variant", "batches", "elapsed", "warmup", "random_batch",
    )  # fmt: skip

    def __repr__(self) -> str:
        return (
            f"<nanogpt harness {self.variant} on {self.device}, rank {self.rank}/{self.world_size}>"
        )


class _Batches:
    __slots__ = ("_next",)

    def __init__(self, fetch: Callable[[], tuple[torch.Tensor, torch.Tensor] | None]):
        self._next = fetch

    def __iter__(self) -> _Batches:
        return self

    def __next__(self) -> tuple[torch.Tensor, torch.Tensor]:
        item = self._next()
        if item is None:
            raise StopIteration
        return item


class Clock:
    """Training time, kept by the run's timekeeper (``keeper``: another process, whose
    readings the program cannot change); this process keeps a copy of the wall time for
    ``h.elapsed()`` and its own decisions. On CUDA it synchronises before a pause, so queued
    kernels are charged to the interval that launched them."""

    def __init__(self, cuda: bool, keeper: Keeper):
        self.cuda = cuda
        self.keeper = keeper
        self._total = 0.0
        self._since: float | None = None
        self._started = False

    @property
    def running(self) -> bool:
        return self._since is not None

    def start(self) -> None:
        if self._since is not None:
            return
        self.keeper.call("resume" if self._started else "start")
        self._started = True
        self._since = _now()

    def pause(self, kind: str) -> None:
        if self._since is None:
            return
        if self.cuda:
            _cuda_sync()
        self._total += _now() - self._since
        self._since = None
        self.keeper.call("pause", kind=kind)

    def charge(self, seconds: float) -> None:
        """Add to this process's copy what the keeper charged itself (warm-up over its cap)."""
        self._total += seconds

    def elapsed(self) -> float:
        return self._total + (_now() - self._since if self._since is not None else 0.0)


def _distributed(spec: RunSpec) -> tuple[int, int, torch.device]:
    world = int(os.environ.get("WORLD_SIZE", "1"))
    cuda = spec.variant != "tiny" and torch.cuda.is_available()
    if world > 1 and not dist.is_initialized():
        # A collective one rank never joins (a rank-asymmetric program) fails after the
        # timeout instead of holding every rank until the evaluation's time limit (NCCL's
        # watchdog aborts the communicator; gloo raises).
        dist.init_process_group(
            "nccl" if cuda else "gloo", timeout=timedelta(seconds=spec.collective_timeout_s)
        )
    rank = dist.get_rank() if world > 1 else 0
    if cuda:
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
        torch.cuda.set_device(device)
    else:
        device = torch.device("cpu")
    return rank, world, device


def _seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    _manual_seed(seed)


class _Run:
    """The harness's state for one run; the program only reaches it through ``Harness``."""

    def __init__(self, spec: RunSpec, program: Path, rank: int, world: int, device: torch.device):
        self.spec = spec
        self.v = spec.variant_spec
        # First, before any program code and before this process's OpenMP pool starts.
        keeper = Keeper(self.v.cost_clock, self.v.warmup_cap_s, world)
        self.program = program
        self.rank, self.world, self.device = rank, world, device
        self.cuda = device.type == "cuda"
        self.smoke = spec.mode == "smoke"
        self.ckpt_dir = Path(spec.scratch) / CHECKPOINT_DIR
        self.ckpt_dir.mkdir(parents=True, exist_ok=True)
        (self.ckpt_dir / RUN_STARTED).write_text(str(time.time()))
        self.stream = data.TrainStream(spec, keeper.refill)
        probe_tokens = (
            self.v.eval_seq_len * SMOKE_PROBE_WINDOWS if self.smoke else spec.probe_tokens
        )
        self.probe = losses.windows(self.stream.probe(probe_tokens), self.v.eval_seq_len).to(device)
        self.clock = Clock(self.cuda, keeper)
        self.sections = telemetry.Sections(_now, _cuda_sync if self.cuda else None)
        self.profiler = (
            telemetry.ProfileWindow(self.cuda, self.v.profile_steps) if spec.profile else None
        )
        # CUDA: the data sheet's peak; a CPU's is measured once per machine (machine.py) and
        # applied by assess, never one measured under this run's load.
        self.peak_flops, self.peak_source = (
            telemetry.peak_flops(device) if spec.profile and self.cuda else (None, "")
        )
        self.speed_probes = self.v.cost_clock and not self.smoke
        self.last_tick: dict[str, float] = {"wall": 0.0, "cpu": 0.0, "cost": 0.0}
        self.ticks = 0
        self.keeper_record: dict[str, Any] = {}
        self.model: torch.nn.Module | None = None
        self.tokens = 0
        self.fetches = 0
        self.next_ckpt = spec.ckpt_every_steps
        self.checkpoints: list[dict[str, Any]] = []
        self.stop_reason = ""
        self.in_warmup = False
        self.warmup_s = 0.0
        self.excluded_s = 0.0
        self.probe_s = 0.0  # probe passes charged to the clock (CUDA)
        self.train_losses: list[tuple[float, int, torch.Tensor]] = []
        self.profile_result: dict[str, Any] | None = None
        self.tampered: set[str] = set()
        self.thread_violations: set[str] = set()
        self.start_rss_kb = 0
        self.smoke_causality: dict[str, float] = {}
        self.sentinel = integrity.Sentinel(program, data.protected_paths(spec), self.ckpt_dir)
        self.random = torch.Generator(device=device)
        self.random.manual_seed(spec.seed + 1)
        self._pause_depth = 0
        self._next_sync = 0
        self._watch: integrity.PatchWatch | None = None
        self._threads_before: set[int] = set()

    # --- clock -------------------------------------------------------------------------------
    @contextmanager
    def paused(self, kind: str) -> Iterator[None]:
        """Harness work: off the training clock (a pause of ``kind`` in the keeper's books)
        and out of the sections."""
        self._pause_depth += 1
        outer = self._pause_depth == 1 and self.clock.running
        if outer:
            self.clock.pause(kind)
            self.sections.pause()
        t0 = _now()
        try:
            yield
        finally:
            self._pause_depth -= 1
            if outer:
                self.excluded_s += _now() - t0
                self.sections.resume()
                self.clock.start()

    # --- the train stream ---------------------------------------------------------------------
    def fetch(self, batch_size: int, seq_len: int) -> tuple[torch.Tensor, torch.Tensor] | None:
        if self.in_warmup:
            raise ProgramError(
                "h.batches() is not available inside h.warmup(); use h.random_batch()"
            )
        if not self.stop_reason:
            self._tick()
        if self.stop_reason or self._stop_before_fetch(batch_size * seq_len * self.world):
            return None
        self.sections.mark("data_start")
        n = batch_size * seq_len
        tokens = self.stream.read(n * self.world)
        local = torch.from_numpy(np.array(tokens[self.rank * n : self.rank * n + n + 1]))
        if self.cuda:
            local = local.pin_memory().to(self.device, non_blocking=True)
        x, y = local[:-1].view(batch_size, seq_len), local[1:].view(batch_size, seq_len)
        self.tokens += n * self.world
        self.fetches += 1
        self.sections.mark("data_end")
        return x, y

    def _stop_before_fetch(self, total: int) -> bool:
        if self.spec.max_steps is not None and self.fetches >= self.spec.max_steps:
            self.stop_reason = "max_steps"
            return True
        if not self.stream.available(total):
            self.stop_reason = "data exhausted"
            return True
        if self.stream.pending(total):
            with self.paused("refill"):
                self.stream.refill(total)
        elapsed = self.clock.elapsed()
        over, due = self._over_budget(elapsed), self.fetches >= self.next_ckpt
        if self.world > 1:
            if self.fetches < self._next_sync:
                over = due = False
            else:
                over, due = self._agree(over, due)
        if over:
            self.stop_reason = "budget"
            return True
        if due:
            self.checkpoint()
            self.next_ckpt = self.fetches + self._next_interval()
            if (
                self.spec.stop_at_target
                and self.checkpoints[-1]["probe_loss"] <= self.v.target - STOP_MARGIN
            ):
                self.stop_reason = "target"
                return True
        if self.speed_probes and self.fetches % cost.PROBE_EVERY == 0:
            with self.paused("probe"):
                self.keeper.call("probe", reps=1)
        self._profile_step(elapsed)
        return False

    def _over_budget(self, elapsed: float) -> bool:
        """The budget is in the primary clock's seconds; on tiny the wall clock has a cap too."""
        if not self.v.cost_clock:
            return elapsed >= self.spec.budget_s
        return (
            self.last_tick["cost"] >= self.spec.budget_s
            or elapsed >= self.spec.budget_s * self.v.wall_cap_factor
        )

    def _tick(self) -> None:
        """A batch is asked for: the previous one's work ended (the first ends the setup)."""
        self.last_tick = self.keeper.call("tick")
        self.ticks += 1

    @property
    def keeper(self) -> Keeper:
        return self.clock.keeper

    def _next_interval(self) -> int:
        """Steps to the next checkpoint: the regular cadence, or half the steps the probe's
        recent slope says the target is away, whichever is fewer (not below the minimum): the
        steps to target are then resolved to about the minimum interval. Step counts and probe
        losses only, so the placement is the same in every run of a program and seed."""
        interval = self.spec.ckpt_every_steps
        if len(self.checkpoints) >= 2 and len(self.checkpoints) < MAX_CHECKPOINTS:
            a, b = self.checkpoints[-2], self.checkpoints[-1]
            rate = (a["probe_loss"] - b["probe_loss"]) / max(b["steps"] - a["steps"], 1)
            gap = b["probe_loss"] - (self.v.target - STOP_MARGIN)
            if rate > 0 and gap > 0:
                interval = min(interval, max(self.spec.ckpt_min_steps, int(0.5 * gap / rate)))
        return interval

    def _final_checkpoint_due(self) -> bool:
        """Unless the last checkpoint already holds the final state: no batch since, and no
        time either (work after the stream ended changes the weights without a batch)."""
        last = self.checkpoints[-1] if self.checkpoints else None
        due = (
            last is None
            or last["steps"] != self.fetches
            or self.keeper.call("now")["wall"] > last["train_time_s"] + 1e-3
        )
        if self.world > 1:
            due = self._agree(due, False)[0]
        return due

    def _agree(self, over: bool, due: bool) -> tuple[bool, bool]:
        """Rank 0's clock decides for everyone, so that all ranks checkpoint together; it also
        says when the next decision is due (every rank must take part in it)."""
        step_s = self.clock.elapsed() / max(self.fetches, 1)
        interval = max(1, min(DIST_SYNC_MAX_BATCHES, int(DIST_SYNC_PERIOD_S / max(step_s, 1e-6))))
        flags = torch.tensor([float(over), float(due), float(interval)], device=self.device)
        _broadcast(flags, src=0)
        self._next_sync = self.fetches + int(flags[2])
        return bool(flags[0] > 0), bool(flags[1] > 0)

    def _profile_step(self, elapsed: float) -> None:
        p = self.profiler
        if p is None or self.rank != 0:
            return
        # Rank 0 profiles its own work: its share of the tokens, for FLOPs per token.
        local_tokens = self.tokens // self.world
        if not p.running and not p.done and elapsed >= self.spec.profile_at_s:
            with self.paused("profile"):
                p.start(self.fetches, local_tokens)
        elif p.due(self.fetches):
            with self.paused("profile"):
                self.profile_result = p.stop(self.fetches, local_tokens)

    # --- checkpoints ----------------------------------------------------------------------------
    def probe_loss(self) -> float:
        """The probe set's loss (all ranks together). Scoring runs the program's forward,
        which could train or do anything else while the clock is paused: on CPU it runs in a
        forked child, whose work dies with it; with CUDA (a forked child cannot use it) it runs
        here and ``checkpoint`` charges its time to the clock."""
        assert self.model is not None
        model, shard = self.model, self.probe[self.rank :: self.world]

        def score() -> dict[str, Any]:
            ev = losses.evaluate(model, shard, self.v.vocab_size, self.spec.eval_batch)
            return {"sum": float(ev.per_window.sum()), "n": int(ev.per_window.size)}

        if self.cuda:
            sums = score()
        else:
            sums = integrity.forked(self._probe_child(score))
            self.sentinel.violations += sums.pop("violations", [])
            if "error" in sums:
                raise ProgramError(f"scoring the probe set failed: {sums['error']}")
        if self.world == 1:
            return sums["sum"] / max(sums["n"], 1) if sums["n"] else float("nan")
        totals = torch.tensor(
            [sums["sum"], float(sums["n"])], dtype=torch.float64, device=self.device
        )
        _all_reduce(totals)
        return float(totals[0] / totals[1])

    def _probe_child(self, score: Callable[[], dict[str, Any]]) -> Callable[[], dict[str, Any]]:
        def inside() -> dict[str, Any]:
            # The training's OpenMP pool does not survive a fork (a parallel op would hang):
            # the probe runs on one thread, off the clock.
            torch.set_num_threads(1)
            self.sentinel.deny_writes = True  # nothing computed here may reach the run
            before = len(self.sentinel.violations)
            try:
                out = score()
            except Exception as exc:
                out = {"error": f"{type(exc).__name__}: {exc}"}
            out["violations"] = self.sentinel.violations[before:]
            return out

        return inside

    def checkpoint(self) -> None:
        """A checkpoint: the keeper stamps it (training time, steps and, on tiny, the cost,
        timing its speed probe while this process waits), then the weights are saved and
        scored on the probe set."""
        assert self.model is not None
        with self.paused("checkpoint"):
            self._integrity()
            record: dict[str, Any] = self.keeper.call("checkpoint", tokens=self.tokens)
            if self.rank == 0 and not self.smoke:
                state = integrity.plain_state(self.model)
                record["digest"] = integrity.state_digest(state)
                path = self.ckpt_dir / f"ckpt_{record['index']:03d}.pt"
                with self.sentinel.suspended():
                    _save(state, path)
                record["file"] = path.name
            if self.cuda:  # the program's forward runs in this process: training time
                t0 = _now()
                self.clock.start()
                record["probe_loss"] = self.probe_loss()
                self.clock.pause("checkpoint")
                spent = _now() - t0
                self.probe_s += spent
                self.excluded_s -= spent
            else:
                record["probe_loss"] = self.probe_loss()
            if (
                not self.cuda
                and "digest" in record
                and integrity.state_digest(integrity.plain_state(self.model)) != record["digest"]
            ):
                # Only memory the program shared before the fork reaches back from the child.
                self.sentinel.violations.append(
                    "the model's weights changed while its probe loss was scored in another "
                    "process (shared memory)"
                )
            saved = {k: record[k] for k in ("file", "digest", "probe_loss") if k in record}
            self.keeper.call("saved", index=record["index"], **saved)
            self.checkpoints.append(record)

    def _autotune_check(self, when: str) -> None:
        """The autotuning switches (static.AUTOTUNE_SWITCHES), read where the scan cannot see
        how they were set: after the warm-up, where compilation happens, and at the end."""
        inductor = sys.modules.get("torch._inductor.config")
        for name in static.AUTOTUNE_SWITCHES:
            if inductor is not None and getattr(inductor, name, False) is True:
                found = f"torch._inductor.config.{name} was on {when} (autotuning is not allowed)"
                if found not in self.sentinel.violations:
                    self.sentinel.violations.append(found)

    def _integrity(self) -> None:
        self._autotune_check("at the end of training")
        if self._watch is not None:
            self.tampered.update(self._watch.changes())
        self.thread_violations.update(integrity.program_threads(self._threads_before, self.program))

    # --- warm-up -------------------------------------------------------------------------------
    @contextmanager
    def warmup(self) -> Iterator[None]:
        if self.in_warmup:
            raise ProgramError("h.warmup() blocks cannot be nested")
        # Once the stream has been read the program could hold real batches: training on them
        # off the clock and stashing the weights (a clone the restore does not see) would be free.
        if self.fetches:
            raise ProgramError("h.warmup() must come before the first batch of h.batches()")
        assert self.model is not None
        model = self.model
        # Read and restored through the tensors themselves: a state_dict hook could hand the
        # restore copies, and the warm-up's training would stay.
        saved_model = integrity.plain_state(model, self.device)
        saved_rng = torch.get_rng_state()
        saved_cuda_rng = torch.cuda.get_rng_state_all() if self.cuda else None
        saved_optim: dict[int, tuple[torch.optim.Optimizer, dict[str, Any]]] = {}

        def remember(opt: torch.optim.Optimizer, args: Any, kwargs: Any) -> None:
            if id(opt) not in saved_optim:
                saved_optim[id(opt)] = (opt, copy.deepcopy(opt.state_dict()))

        handle = _register_step_pre(remember)
        self.clock.pause("warmup")
        self.sections.pause()
        t0 = _now()
        self.in_warmup = True
        try:
            yield
        finally:
            self.in_warmup = False
            handle.remove()
            current = integrity.module_tensors(model)
            if current.keys() != saved_model.keys():
                raise ProgramError("h.warmup() changed the model's parameters or buffers")
            with torch.no_grad(), losses.harness_ops():
                for key, tensor in current.items():
                    torch.Tensor.copy_(tensor, saved_model[key])
                for param in integrity.module_tensors(model, buffers=False).values():
                    _set_grad(param, None)
            for opt, state in saved_optim.values():
                opt.load_state_dict(state)
            torch.set_rng_state(saved_rng)
            if saved_cuda_rng is not None:
                torch.cuda.set_rng_state_all(saved_cuda_rng)
            self._autotune_check("after the warm-up")
            spent = _now() - t0
            # Compilation is free up to the cap; beyond it, warm-up is charged as training.
            over_before = max(0.0, self.warmup_s - self.v.warmup_cap_s)
            self.warmup_s += spent
            self.clock.charge(max(0.0, self.warmup_s - self.v.warmup_cap_s) - over_before)
            self.sections.resume()
            self.clock.start()

    def random_batch(self, batch_size: int, seq_len: int) -> tuple[torch.Tensor, torch.Tensor]:
        tokens = torch.randint(
            0,
            self.v.vocab_size,
            (batch_size, seq_len + 1),
            generator=self.random,
            device=self.device,
        )
        return tokens[:, :-1].contiguous(), tokens[:, 1:].contiguous()

    # --- telemetry probes -------------------------------------------------------------------
    def record_loss(self, tensors: Any) -> None:
        if (
            isinstance(tensors, torch.Tensor)
            and tensors.numel() == 1
            and self.clock.running
            and not self.in_warmup
        ):
            self.train_losses.append((self.clock.elapsed(), self.tokens, tensors.detach()))

    # --- the whole run --------------------------------------------------------------------------
    def handle(self) -> Harness:
        h = Harness.__new__(Harness)
        h.device, h.vocab_size, h.rank, h.world_size = (
            self.device,
            self.v.vocab_size,
            self.rank,
            self.world,
        )
        h.seed, h.budget_s, h.target = self.spec.seed, self.spec.budget_s, self.v.target
        h.eval_seq_len, h.smoke, h.variant = self.v.eval_seq_len, self.smoke, self.v.name
        h.batches = lambda batch_size, seq_len: _Batches(
            lambda: self.fetch(int(batch_size), int(seq_len))
        )
        h.elapsed = lambda: self.clock.elapsed()

        # Not ``lambda: self.warmup()``: a generator context manager keeps its arguments in
        # plain attributes (``h.warmup().args[0]`` would be this _Run, its clock and records).
        @contextmanager
        def warmup() -> Iterator[None]:
            with self.warmup():
                yield

        h.warmup = warmup
        h.random_batch = lambda batch_size, seq_len: self.random_batch(
            int(batch_size), int(seq_len)
        )
        return h

    def execute(self) -> None:
        # Telemetry off (benches): no probes at all, so the overhead they cost can be measured.
        undo = (
            telemetry.install_probes(self.sections, self.record_loss)
            if self.spec.profile
            else (lambda: None)
        )
        # Snapshot after our own patches (so they are not reported), before any program code.
        self._watch = integrity.PatchWatch()
        self._threads_before = {t.ident for t in threading.enumerate() if t.ident is not None}
        telemetry.reset_peak_rss()
        self.start_rss_kb = telemetry.memory_kb("VmRSS")
        try:
            with self.sentinel.active():
                module = load_candidate(self.program)
                build, train = getattr(module, "build_model", None), getattr(module, "train", None)
                if not callable(build) or not callable(train):
                    raise ProgramError(
                        "the program must define build_model(vocab_size) and train(model, h)"
                    )
                _seed_everything(self.spec.seed)
                model = build(self.v.vocab_size)
                if not isinstance(model, torch.nn.Module):
                    raise ProgramError(
                        f"build_model must return a torch.nn.Module, got {type(model).__name__}"
                    )
                self.model = model.to(self.device)
                if self.speed_probes:
                    self.keeper.call("probe", reps=cost.PROBE_REPS)
                self.clock.start()
                self.sections.resume()
                train(self.model, self.handle())
                if self.ticks - 1 < self.fetches:  # the last batch's work ended
                    self._tick()
                self.clock.pause("end")
                self.sections.pause()
                if self.profiler is not None and self.profiler.running:
                    self.profile_result = self.profiler.stop(
                        self.fetches, self.tokens // self.world
                    )
                if self._final_checkpoint_due():
                    self.checkpoint()
                if self.smoke:
                    self.smoke_causality = losses.causality(
                        self.model, self.probe, self.v.vocab_size, perturb=True
                    )
                self._integrity()
                self.keeper_record = self.keeper.call("end")
                self.keeper.close()
        finally:
            undo()

    def result(self) -> dict[str, Any]:
        assert self.model is not None
        books = self.keeper_record
        train_time = books["train_time_s"]
        params = {
            id(p): torch.Tensor.numel(p)
            for p in integrity.module_tensors(self.model, buffers=False).values()
        }
        curve = [[t, float(tok), float(loss)] for t, tok, loss in self.train_losses]
        tel: dict[str, Any] = {
            "device": self._device_name(),
            "sections": self.sections.summary(),
            "profile": self.profile_result,
            "memory": self._memory(),
            "tokens_per_s": self.tokens / train_time if train_time > 0 else 0.0,
            "cpu_s": books["cpu_s"],
            "peak_flops": self.peak_flops,
            "peak_flops_source": self.peak_source,
            "threads": torch.get_num_threads(),
            "step_cost": books["step_cost"] if self.speed_probes else None,
            "train_curve": telemetry.downsample(curve, LOSS_CURVE_POINTS),
            "probe_curve": [
                [c["train_time_s"], c["tokens"], c["probe_loss"]] for c in self.checkpoints
            ],
        }
        return {
            "ok": True,
            "variant": self.v.name,
            "mode": self.spec.mode,
            "seed": self.spec.seed,
            "world_size": self.world,
            "budget_s": self.spec.budget_s,
            "target": self.v.target,
            "train_time_s": train_time,
            "tokens": self.tokens,
            "steps": self.fetches,
            "stop_reason": self.stop_reason or "train() returned",
            "warmup_s": books["warmup_s"],
            "excluded_s": round(self.excluded_s, 4),
            "probe_s": round(self.probe_s, 4),
            "params": int(sum(params.values())),
            "checkpoints": self.checkpoints,
            "telemetry": tel,
            "violations": list(self.sentinel.violations)
            + [
                f"ran program code in a background thread ({name})"
                for name in sorted(self.thread_violations)
            ],
            "tampered": sorted(self.tampered),
            "harness_cpu_s": round(integrity.harness_cpu_s(), 4),
        }

    def _device_name(self) -> str:
        if self.cuda:
            return f"{torch.cuda.get_device_name(self.device)} x{self.world}"
        return f"cpu ({torch.get_num_threads()} threads) x{self.world}"

    def _memory(self) -> dict[str, float]:
        mem = {
            "peak_rss_mb": telemetry.memory_kb("VmHWM") / 1024,
            "start_rss_mb": self.start_rss_kb / 1024,
        }
        if self.cuda:
            mem["cuda_peak_allocated_mb"] = torch.cuda.max_memory_allocated(self.device) / 2**20
            mem["cuda_peak_reserved_mb"] = torch.cuda.max_memory_reserved(self.device) / 2**20
        return mem


def load_candidate(program: Path) -> ModuleType:
    """The program as a module; a multi-file program's folder goes last on the path first, as
    the sandbox child puts it, for the processes that child did not start (torchrun's ranks,
    verification's, the local evaluator's)."""
    folder = import_folder(program)
    if folder is not None and str(folder) not in sys.path:
        sys.path.append(str(folder))
    return load_program(program)


def _compile_workers(count: int) -> None:
    """Inductor's compile workers, set before the program runs: one (in this process) on CPU,
    where a pool of workers would be CPU outside the training process that assess refuses on
    the CPU clock; ``COMPILE_WORKERS`` on CUDA, where the default (a worker per core, up to 32)
    would be processes the sandbox's task limit (``Resources.processes``) does not plan for."""
    os.environ["TORCHINDUCTOR_COMPILE_THREADS"] = str(count)
    inductor = sys.modules.get("torch._inductor.config")
    if inductor is not None:
        inductor.compile_threads = count


def run_training(program: Path, spec: RunSpec) -> dict[str, Any]:
    """Run the program's training under the harness; the raw result for ``verify``/``assess``."""
    findings = [f"static check, {f}" for f in static.scan_program(Path(program))]
    if findings:
        if spec.mode == "smoke":  # the agent's fast feedback: every rule and line
            raise ProgramError("; ".join(findings))
        return {"ok": False, "violations": findings, "error": "the program failed the static check"}
    rank, world, device = _distributed(spec)
    if device.type == "cpu":
        torch.set_num_threads(max(1, spec.threads))
    _compile_workers(1 if device.type == "cpu" else COMPILE_WORKERS)
    run = _Run(spec, Path(program), rank, world, device)
    try:
        run.execute()
    except Exception as exc:
        # An attempt the sentinel refused usually surfaces as an exception in the program:
        # report the violation (an invalid run, with its reason) rather than a crash.
        if run.sentinel.violations:
            return {
                "ok": False,
                "violations": list(run.sentinel.violations),
                "error": f"{type(exc).__name__}: {exc}",
            }
        raise
    raw = run.result()
    if run.smoke:
        raw["causality"] = run.smoke_causality
        raw.pop("telemetry")
    return raw
