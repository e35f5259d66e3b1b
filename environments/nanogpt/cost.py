"""The cost of training on an unloaded machine, measured on a loaded one (tiny's primary metric).

Wall time on a shared CPU measures the other processes as much as the program: the same run
took 41.5 s and 51.0 s a quarter of an hour apart, and two OpenMP threads sharing two cores
with another process ran 15x slower. Tiny therefore trains on **one thread**, and the estimate
multiplies

- the **CPU time** of the training (the process's user + system time over the clock's
  intervals, setup after the clock starts included): the time the one thread was on a core.
  Another process's load takes cores away but does not add CPU time, so it changes the wall
  time and not this; every step is charged in full (no quantile a program could hide work
  from), by
- a **machine factor**: the probe's cost on the project's idle machine (``PROBE_REFERENCE_S``)
  over the median CPU time of a fixed **speed probe** (harness code in the reference's kernel
  mix) timed after every step of the segment and at its checkpoint, off the clock. A machine
  with a slower core, or a core shared with a neighbour (a hyperthread sibling, cache and
  memory bandwidth), slows the probe and the steps alike, and cancels in the ratio.

Unbiased for systems changes (less work per step is less CPU time) and for ML changes (fewer
steps, counted exactly: checkpoints sit at step counts, never at times). Not seen: time spent
waiting rather than computing (a program gains nothing by waiting), and parallel speed-ups
(there is one thread). Per segment between checkpoints, so a step cost that changes over
training (a sequence-length or batch-size schedule) is charged each segment's own cost.
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
MIN_WINDOW = 32  # steps: segments at least this long enter the noise estimate
PROBE_REPS = 5  # at each checkpoint
# One probe repetition after every step (~3% of a reference step, off the clock): the core's
# speed changes from second to second when a neighbour shares its physical core, and the
# segment's factor is only as good as the samples taken alongside its steps.
PROBE_EVERY = 1
# One probe repetition's CPU time on this project's machine (one thread, 2026-12-02; the
# full reference run's low quantile was 8.48 ms): the estimate is then this machine's CPU
# seconds. It only scales the estimate into seconds: comparisons never depend on it.
PROBE_REFERENCE_S = 0.0085


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
    """The clock's wall and CPU readings at every batch, probe timings, and the estimate at each
    checkpoint: the cumulative calibrated CPU time of the training so far."""

    def __init__(self, reference_s: float = PROBE_REFERENCE_S):
        self.reference_s = reference_s
        self.step_times: list[float] = []  # wall seconds per step
        self.step_cpu: list[float] = []  # CPU seconds per step
        self.probes: list[list[float]] = []  # per segment
        self._pending: list[float] = []
        self.cost_s = 0.0
        self.wall_s = 0.0
        self._last: tuple[float, float] | None = None  # (wall, cpu) at the last batch
        self._charged_cpu = 0.0  # CPU seconds charged up to the last checkpoint
        self._last_step = 0
        self._factor = 1.0  # the last segment's machine factor
        self.segments: list[tuple[int, float]] = []  # (steps, calibrated seconds per step)

    def tick(self, elapsed: float, cpu: float) -> None:
        """A batch was asked for at ``elapsed`` training seconds and ``cpu`` CPU seconds: the
        previous batch's work ended (the first tick ends the program's setup)."""
        if self._last is not None:
            self.step_times.append(elapsed - self._last[0])
            self.step_cpu.append(cpu - self._last[1])
        self._last = (elapsed, cpu)

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
        cpu = self._last[1] if self._last is not None else 0.0
        if n > 0:
            # The median, as the steps' sum meets the core at its average speed, not its best.
            self._factor = self.reference_s / quantile(self.probes[-1], 0.5)
            segment = (cpu - self._charged_cpu) * self._factor
            self.cost_s += segment
            self.segments.append((n, segment / n))
        self.wall_s, self._last_step, self._charged_cpu = wall_s, steps, cpu
        return self.cost_s

    def running(self, cpu: float) -> float:
        """The estimate now, between checkpoints, at the last segment's machine factor."""
        return self.cost_s + (cpu - self._charged_cpu) * self._factor

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

        def ms(values: list[float], q: float) -> float:
            return round(1000 * quantile(values, q), 4) if values else math.nan

        return {
            "steps": steps,
            "cost_s": round(self.cost_s, 4),
            "step_ms_low": ms(self.step_times, QUANTILE),
            "step_ms_median": ms(self.step_times, 0.5),
            "step_cpu_ms_median": ms(self.step_cpu, 0.5),
            "cost_ms_per_step": round(1000 * self.cost_s / steps, 4) if steps else math.nan,
            "probe_ms_median": ms(probes, 0.5),
            "probe_reference_ms": 1000 * self.reference_s,
            "relative_noise": noise,
        }
