"""The cost of training on an unloaded machine, estimated on a loaded one (tiny's primary metric).

Wall time on a shared CPU measures the other processes as much as the program: the same run
took 41.5 s and 51.0 s a quarter of an hour apart. The estimate instead multiplies

- the **steps** a run took (deterministic for a program and seed: checkpoints are placed by
  step counts, never by time), by
- a **robust per-step cost**: a low quantile of the per-step times (threads pinned by the
  harness), which ignores the steps another process interrupted, divided by the same low
  quantile of a fixed **speed probe** (harness code, the reference's kernel mix at a smaller
  size) timed on the same threads every ``PROBE_EVERY`` steps and at every checkpoint (off
  the clock, so that its samples meet the same load as the steps), and multiplied by the probe's cost on
  the project's idle machine (``PROBE_REFERENCE_S``). A machine half as fast, or shared with a
  process that takes half of it, slows the steps and the probe alike, and cancels in the
  ratio.

Per segment between checkpoints, so that a program whose step cost changes over training (a
sequence-length or batch-size schedule) is charged each segment's own cost; the quantile
looks back over at least ``MIN_WINDOW`` steps, which is the resolution of that tracking.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F

# Bound at import, before any program code: rebinding them cannot slow the probe.
_mm = torch.mm
_relu = torch.relu
_sdpa = F.scaled_dot_product_attention
_no_grad = torch.no_grad

QUANTILE = 0.2
MIN_WINDOW = 32
PROBE_REPS = 5  # at each checkpoint
PROBE_EVERY = 5  # steps between single probe repetitions in between
# One probe repetition on this project's machine (2 threads, 2026-12-02, load average ~0.9 of
# 2 cores, the lowest it got; bench/nanogpt_noise.py prints the figure it measures idle).
# It only scales the estimate into seconds: comparisons between programs never depend on it.
PROBE_REFERENCE_S = 0.0100


def quantile(values: list[float], q: float = QUANTILE) -> float:
    """Linear-interpolated quantile (numpy's default), without numpy."""
    ordered = sorted(values)
    if not ordered:
        return math.nan
    pos = q * (len(ordered) - 1)
    low = math.floor(pos)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (pos - low)


class SpeedProbe:
    """A fixed workload in the reference's kernel mix (a squared-ReLU MLP's forward and its
    backward matmuls, and causal attention) on fixed random tensors."""

    def __init__(self, now: Callable[[], float]):
        self._now = now
        g = torch.Generator().manual_seed(0)
        self.x = torch.randn(1024, 128, generator=g)
        self.w1 = torch.randn(128, 512, generator=g) / 12
        self.w2 = torch.randn(512, 128, generator=g) / 24
        self.qkv = torch.randn(3, 4, 4, 256, 32, generator=g)
        self.measure(2)  # warm the kernels and the allocator

    def _once(self) -> None:
        with _no_grad():
            h = _relu(_mm(self.x, self.w1)) ** 2
            y = _mm(h, self.w2)
            grad_h = _mm(y, self.w2.T)
            _mm(self.x.T, grad_h)
            _mm(h.T, y)
            _sdpa(self.qkv[0], self.qkv[1], self.qkv[2], is_causal=True)

    def measure(self, reps: int = PROBE_REPS) -> list[float]:
        times = []
        for _ in range(reps):
            t0 = self._now()
            self._once()
            times.append(self._now() - t0)
        return times


class CostMeter:
    """Per-step times from the harness's clock, probe timings at every checkpoint, and the
    estimate at each checkpoint: the cumulative calibrated cost of the steps so far."""

    def __init__(self, reference_s: float = PROBE_REFERENCE_S):
        self.reference_s = reference_s
        self.step_times: list[float] = []
        self.probes: list[list[float]] = []  # per segment
        self._pending: list[float] = []
        self.cost_s = 0.0
        self.wall_s = 0.0
        self._last_tick: float | None = None
        self._last_step = 0
        self._ratio = 1.0  # cost per wall second of the last segment
        self.segments: list[tuple[int, float]] = []  # (steps, calibrated seconds per step)

    def tick(self, elapsed: float) -> None:
        """A batch was asked for at ``elapsed`` training seconds: the previous batch's work
        ended (the first tick only starts the count: before it, the program set up)."""
        if self._last_tick is not None:
            self.step_times.append(elapsed - self._last_tick)
        self._last_tick = elapsed

    def probe(self, times: list[float]) -> None:
        """Probe timings between checkpoints, for the segment under way."""
        self._pending += times

    def checkpoint(self, probe: list[float], wall_s: float) -> float:
        """The estimate at a checkpoint after ``len(step_times)`` steps, with this
        checkpoint's probe timings (and the segment's own)."""
        self.probes.append(self._pending + probe)
        self._pending = []
        steps = len(self.step_times)
        n = steps - self._last_step
        if n > 0:
            window = self.step_times[max(0, steps - max(n, MIN_WINDOW)) : steps]
            level = quantile([t for p in self.probes[-2:] for t in p])
            per_step = quantile(window) * self.reference_s / level
            segment = n * per_step
            self.cost_s += segment
            self._ratio = segment / max(wall_s - self.wall_s, 1e-9)
            self.segments.append((n, per_step))
        self.wall_s, self._last_step = wall_s, steps
        return self.cost_s

    def running(self, wall_s: float) -> float:
        """The estimate now, between checkpoints: the last segment's cost per wall second."""
        return self.cost_s + (wall_s - self.wall_s) * self._ratio

    def summary(self) -> dict[str, float]:
        """The figures telemetry shows, with the estimate's noise: the spread of the segments'
        calibrated per-step costs (those of a full window), as a relative standard error."""
        full = [c for n, c in self.segments if n >= MIN_WINDOW]
        noise = math.nan
        if len(full) >= 2:
            mean = sum(full) / len(full)
            sd = math.sqrt(sum((c - mean) ** 2 for c in full) / (len(full) - 1))
            noise = sd / mean / math.sqrt(len(full))
        probes = [t for p in self.probes for t in p]
        steps = len(self.step_times)
        return {
            "steps": steps,
            "cost_s": round(self.cost_s, 4),
            "step_ms_low": round(1000 * quantile(self.step_times), 4) if steps else math.nan,
            "step_ms_median": round(1000 * quantile(self.step_times, 0.5), 4)
            if steps
            else math.nan,
            "cost_ms_per_step": round(1000 * self.cost_s / steps, 4) if steps else math.nan,
            "probe_ms_low": round(1000 * quantile(probes), 4) if probes else math.nan,
            "probe_reference_ms": 1000 * self.reference_s,
            "relative_noise": noise,
        }
