"""The primary metric on tiny (``cost.py``): the estimator's arithmetic under uniform and
intermittent load and under a changing step cost; and whole runs whose checkpoints sit at the
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


def meter_run(step_s: list[float], probe_s: float, slow: list[float], every: int = 50) -> float:
    """The estimate after the steps, a checkpoint every ``every`` steps; ``slow[i]`` is the
    machine's slowdown during step i (and during the probe taken with it)."""
    meter, wall, probe_ref = CostMeter(reference_s=probe_s), 0.0, probe_s
    meter.tick(0.0)
    for i, (t, k) in enumerate(zip(step_s, slow, strict=True)):
        wall += t * k
        meter.tick(wall)
        if i % 5 == 0:
            meter.probe([probe_ref * k])
        if (i + 1) % every == 0:
            meter.checkpoint([probe_ref * k] * 5, wall)
    return meter.cost_s


def test_a_uniform_slowdown_cancels_in_the_ratio() -> None:
    steps = [0.1] * 200
    idle = meter_run(steps, 0.01, [1.0] * 200)
    assert idle == pytest.approx(20.0)
    for factor in (2.0, 3.7):  # a machine that much slower, or shared that much
        assert meter_run(steps, 0.01, [factor] * 200) == pytest.approx(idle)


def test_intermittent_load_is_ignored_by_the_low_quantile() -> None:
    rng = random.Random(0)
    slow = [5.0 if rng.random() < 0.3 else 1.0 for _ in range(400)]
    estimate = meter_run([0.1] * 400, 0.01, slow)
    wall = sum(0.1 * k for k in slow)
    assert estimate == pytest.approx(40.0, rel=0.01) and wall > 1.8 * estimate


def test_a_step_cost_that_changes_over_training_is_charged_per_segment() -> None:
    """A schedule that doubles the work per step halfway (e.g. a longer sequence): each
    segment is charged its own cost (the window is the resolution)."""
    steps = [0.1] * 200 + [0.2] * 200
    assert meter_run(steps, 0.01, [1.0] * 400) == pytest.approx(60.0, rel=0.01)
    assert MIN_WINDOW <= 50  # a segment of the cadence above fills its own window


def test_the_running_estimate_between_checkpoints() -> None:
    meter = CostMeter(reference_s=0.01)
    meter.tick(0.0)
    for i in range(1, 41):
        meter.tick(0.2 * i)  # 0.2 s steps on a machine twice as slow as the reference's
    meter.probe([0.02] * 5)
    assert meter.checkpoint([0.02] * 5, 8.0) == pytest.approx(4.0)
    assert meter.running(10.0) == pytest.approx(5.0)  # 2 s of wall more, at half the rate
    summary = meter.summary()
    assert summary["steps"] == 40 and summary["cost_ms_per_step"] == pytest.approx(100.0)


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
