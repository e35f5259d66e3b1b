"""The primary metric on tiny (``cost.py``): the estimator's arithmetic on a slower or shared
core, under time slices taken by other processes, and under a changing step cost; and whole runs whose checkpoints sit at the
same steps with the same losses whatever the speed, while the estimated cost follows the work
per step (a planted slowdown)."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pytest
from test_nanogpt_runs import SMALL, TINY_OPTIONS, evaluate

from progressbench_environments.nanogpt.cost import MIN_WINDOW, CostMeter, quantile


def test_quantile_is_numpys_linear_quantile() -> None:
    values = [random.Random(1).random() for _ in range(37)]
    for q in (0.0, 0.2, 0.5, 1.0):
        assert quantile(values, q) == pytest.approx(float(np.quantile(values, q)))


def meter_run(
    step_s: list[float], probe_s: float, core: list[float], wall: list[float] | None = None
) -> float:
    """The estimate after the steps, a checkpoint every 50 steps. ``core[i]`` is how much
    slower the core computed during step i (a shared physical core: CPU time grows, and the
    probe taken with the step slows alike); ``wall[i]`` how much longer step i took in wall
    time besides (time slices taken by other processes: no CPU time of ours)."""
    wall = wall or [1.0] * len(step_s)
    meter, clock, cpu = CostMeter(reference_s=probe_s), 0.0, 0.0
    meter.tick(0.0, 0.0)
    for i, (t, k, w) in enumerate(zip(step_s, core, wall, strict=True)):
        cpu += t * k
        clock += t * k * w
        meter.tick(clock, cpu)
        meter.probe([probe_s * k])
        if (i + 1) % 50 == 0:
            meter.checkpoint([probe_s * k] * 5, clock)
    return meter.cost_s


def test_a_slower_core_cancels_in_the_ratio() -> None:
    steps = [0.1] * 200
    idle = meter_run(steps, 0.01, [1.0] * 200)
    assert idle == pytest.approx(20.0)
    for factor in (1.3, 3.7):  # a core that much slower, or shared with a sibling that much
        assert meter_run(steps, 0.01, [factor] * 200) == pytest.approx(idle)


def test_a_core_speed_that_changes_within_a_segment_is_tracked_by_the_probes() -> None:
    core = [1.0 + 0.5 * (i // 10 % 2) for i in range(200)]  # 10 steps fast, 10 slow
    assert meter_run([0.1] * 200, 0.01, core) == pytest.approx(20.0, rel=0.2)
    # The median probe of each segment sits at one of the two speeds: never beyond them.
    assert 20.0 / 1.5 - 1e-9 <= meter_run([0.1] * 200, 0.01, core) <= 20.0 * 1.5 + 1e-9


def test_time_slices_taken_by_other_processes_cost_nothing() -> None:
    rng = random.Random(0)
    stalls = [5.0 if rng.random() < 0.3 else 1.0 for _ in range(400)]
    assert meter_run([0.1] * 400, 0.01, [1.0] * 400, stalls) == pytest.approx(40.0)


def test_every_step_is_charged_in_full() -> None:
    """Heavy work on every fourth step only (a program hiding work from a low quantile of
    step times): charged all of it."""
    steps = [0.4 if i % 4 == 0 else 0.1 for i in range(200)]
    assert meter_run(steps, 0.01, [1.0] * 200) == pytest.approx(sum(steps))


def test_a_step_cost_that_changes_over_training_is_charged_per_segment() -> None:
    """A schedule that doubles the work per step halfway (e.g. a longer sequence) on a core
    that slows down at the same time: each segment is charged its own steps at its own
    machine factor."""
    steps = [0.1] * 200 + [0.2] * 200
    core = [1.0] * 200 + [2.0] * 200
    assert meter_run(steps, 0.01, core) == pytest.approx(60.0)
    assert MIN_WINDOW <= 50  # a segment of the cadence above enters the noise estimate


def test_the_running_estimate_between_checkpoints() -> None:
    meter = CostMeter(reference_s=0.01)
    meter.tick(0.0, 0.0)
    for i in range(1, 41):
        meter.tick(0.3 * i, 0.2 * i)  # 0.2 CPU-s steps on a core twice as slow as the reference's
    meter.probe([0.02] * 5)
    assert meter.checkpoint([0.02] * 5, 12.0) == pytest.approx(4.0)
    assert meter.running(10.0) == pytest.approx(5.0)  # 2 CPU-s more, at the segment's factor
    summary = meter.summary()
    assert summary["steps"] == 40 and summary["cost_ms_per_step"] == pytest.approx(100.0)
    assert summary["step_cpu_ms_median"] == pytest.approx(200.0)


def slowed(tmp_path: Path) -> Path:
    """The small program with extra work after every step that changes nothing it learns (a
    planted systems slowdown: more work per step, the same training)."""
    source = SMALL.read_text()
    loop_end = "        opt.step()\n        opt.zero_grad(set_to_none=True)\n\n\n# EVOLVE-BLOCK-END"
    assert loop_end in source
    burn = (
        "        opt.step()\n        opt.zero_grad(set_to_none=True)\n"
        "        waste = torch.ones(192, 192)\n"
        "        for _ in range(12):\n            waste = (waste @ waste) * 0.005\n"
        "\n\n# EVOLVE-BLOCK-END"
    )
    path = tmp_path / "slowed.py"
    path.write_text(source.replace(loop_end, burn))
    return path


def test_checkpoints_are_step_indexed_and_deterministic(tmp_path: Path) -> None:
    """The same program and seed twice, and a slowed copy: checkpoints at the same steps and
    tokens with the same probe losses (placed by steps and losses, never by time); the
    estimated cost follows the work per step, and the wall time stays a separate metric."""
    options = {**TINY_OPTIONS, "profile": False}
    first, second, slow = evaluate([SMALL, SMALL, slowed(tmp_path)], options=options)

    def placed(result: dict) -> list[tuple[int, int, float]]:
        return [(c["steps"], c["tokens"], c["probe_loss"]) for c in result["raw"]["checkpoints"]]

    assert placed(first) == placed(second) == placed(slow)
    assert [c["steps"] for c in first["raw"]["checkpoints"]] == [5 * i for i in range(1, 9)]
    m1, m2, ms = (r["assessment"]["metrics"] for r in (first, second, slow))
    assert m1["val_loss"] == m2["val_loss"] == ms["val_loss"]
    assert ms["train_cost_s"] > 1.3 * max(m1["train_cost_s"], m2["train_cost_s"])
    assert all(m["train_time_s"] > 0 and m["train_cost_s"] > 0 for m in (m1, m2, ms))
