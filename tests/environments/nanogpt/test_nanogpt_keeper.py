"""The run's timekeeper (``keeper``) and the platform's check of a run's records against it
(``ledger``): the keeper reads the training process's CPU from outside, at every event, and
counts what that process did while its clock was paused; any record of the harness's that
differs from the keeper's, a missing record, or training in a pause makes the run invalid."""

from __future__ import annotations

import copy
import time
from typing import Any

import numpy as np
import pytest

from progressbench import SANDBOX_KEY
from progressbench_environments.nanogpt import corpus, ledger
from progressbench_environments.nanogpt.keeper import Keeper

PROFILE_STEPS = 4  # the variant's profiled steps (tiny's)


def spin(seconds: float) -> None:
    end = time.process_time() + seconds
    while time.process_time() < end:
        pass


def test_the_keeper_times_the_training_process_from_outside() -> None:
    keeper = Keeper(cost_clock=True, warmup_cap_s=60.0)
    try:
        keeper.call("probe", reps=2)
        keeper.call("start")
        spin(0.3)
        keeper.call("tick")
        # A pause of the harness's: the training process waits while the keeper probes.
        keeper.call("pause", kind="probe")
        keeper.call("probe", reps=1)
        keeper.call("resume")
        spin(0.2)
        tick = keeper.call("tick")
        # Work in the training process while the clock is paused shows in the books.
        keeper.call("pause", kind="refill")
        spin(0.4)
        tokens = keeper.refill(1000)
        keeper.call("resume")
        keeper.call("pause", kind="checkpoint")
        record = keeper.call("checkpoint", tokens=123)
        keeper.call("saved", index=0, file="ckpt_000.pt", digest="d", probe_loss=2.5)
        keeper.call("resume")
        # The profiler's window: two steps between its two pauses.
        keeper.call("pause", kind="profile")
        keeper.call("resume")
        keeper.call("tick")
        keeper.call("tick")
        keeper.call("pause", kind="profile")
        keeper.call("resume")
        record_end = keeper.call("end")
    finally:
        keeper.close()
    assert 0.45 <= tick["cpu"] <= 0.6  # the 0.5 s on the clock, none of the pauses
    assert record["steps"] == 1 and record["tokens"] == 123 and record["cost_s"] > 0
    pauses = record_end["pauses"]
    assert pauses["probe"]["n"] == 1 and pauses["probe"]["cpu_s"] < 0.05
    assert pauses["refill"]["cpu_s"] >= 0.38
    assert 0.45 <= record_end["cpu_s"] <= 0.6
    assert record_end["profiled_steps"] == 2 and record_end["steps"] == 3
    assert record_end["checkpoints"] == [
        {**record, "file": "ckpt_000.pt", "digest": "d", "probe_loss": 2.5}
    ]
    # The corpus it generates is the corpus's own stream.
    assert np.array_equal(tokens, corpus.CorpusStream("train").take(1000))


def honest() -> dict[str, Any]:
    """A run's raw result with its keeper's record, as an honest run returns them."""
    checkpoints = [
        {"index": i, "train_time_s": 1.5 * i, "cost_s": 1.0 * i, "steps": 5 * i, "tokens": 640 * i,
         "file": f"ckpt_{i:03d}.pt", "digest": f"d{i}", "probe_loss": 3.0 - 0.1 * i}
        for i in range(3)
    ]  # fmt: skip
    kept = {
        "version": 1,
        "world_size": 1,
        "train_time_s": 4.0,
        "cpu_s": 3.9,
        "steps": 12,
        "profiled_steps": 4,
        "checkpoints": [{**c, "cpu_s": c["train_time_s"]} for c in checkpoints],
        "pauses": {
            "warmup": {"n": 1, "wall_s": 30.0, "cpu_s": 29.0},
            "probe": {"n": 12, "wall_s": 0.4, "cpu_s": 0.003},
            "checkpoint": {"n": 3, "wall_s": 0.5, "cpu_s": 0.1},
            "profile": {"n": 2, "wall_s": 0.5, "cpu_s": 0.5},
        },
    }
    return {
        "train_time_s": 4.0,
        "steps": 12,
        "world_size": 1,
        "checkpoints": copy.deepcopy(checkpoints),
        SANDBOX_KEY: {"cpu_s": 40.0, "witness": kept},
    }


def test_an_honest_run_matches_its_keeper() -> None:
    assert ledger.problem(honest(), PROFILE_STEPS) is None


def test_the_profilers_allowance_grows_with_its_window_up_to_the_variants_steps() -> None:
    # 4 profiled steps of 0.325 CPU-s: 2 s + 2% of 3.9 s + 3 x 4 x 0.325 s = 5.98 s
    raw = honest()
    raw[SANDBOX_KEY]["witness"]["pauses"]["profile"]["cpu_s"] = 5.5
    assert ledger.problem(raw, PROFILE_STEPS) is None
    raw[SANDBOX_KEY]["witness"]["profiled_steps"] = 1  # a shorter window: less room
    assert "paused for profile" in (ledger.problem(raw, PROFILE_STEPS) or "")
    raw[SANDBOX_KEY]["witness"]["profiled_steps"] = 100  # more steps than the variant profiles
    raw[SANDBOX_KEY]["witness"]["pauses"]["profile"]["cpu_s"] = 6.5
    assert "paused for profile" in (ledger.problem(raw, PROFILE_STEPS) or "")


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (lambda r: r["checkpoints"][1].update(cost_s=0.001), "checkpoint 1: cost_s 0.001 reported"),
        (lambda r: r["checkpoints"][2].update(train_time_s=0.5), "train_time_s 0.5 reported"),
        (lambda r: r["checkpoints"][2].update(digest="other"), "digest 'other' reported"),
        (lambda r: r["checkpoints"].pop(), "2 checkpoints reported, 3 kept"),
        (lambda r: r.update(train_time_s=0.01), "train_time_s 0.01 reported"),
        (lambda r: r.update(steps=100), "steps 100 reported"),
        (lambda r: r.update(world_size=2), "world_size 2 reported"),
        (lambda r: r[SANDBOX_KEY].pop("witness"), "left no record"),
        (lambda r: r[SANDBOX_KEY].update(witness={"error": "not JSON"}), "not JSON"),
        (
            lambda r: r[SANDBOX_KEY]["witness"]["pauses"]["probe"].update(cpu_s=1.5),
            "used 1.6 CPU-s while its clock was paused for the harness's other work",
        ),
        (
            lambda r: r[SANDBOX_KEY]["witness"]["pauses"]["profile"].update(cpu_s=6.5),
            "while its clock was paused for profile",
        ),
        (
            lambda r: r[SANDBOX_KEY]["witness"]["pauses"]["profile"].update(n=3),
            "paused 3 times for the profiler",
        ),
    ],
)
def test_records_changed_missing_or_training_in_a_pause_are_named(change, expected) -> None:
    raw = honest()
    change(raw)
    found = ledger.problem(raw, PROFILE_STEPS)
    assert found is not None and expected in found, found


def test_nothing_is_compared_where_no_witness_is_kept() -> None:
    raw = honest()
    raw["checkpoints"][1]["cost_s"] = 0.001
    assert ledger.problem({k: v for k, v in raw.items() if k != SANDBOX_KEY}, PROFILE_STEPS) is None
    # several ranks (as the run's configuration says): each has its own keeper, and none
    # gets the witness file
    assert ledger.problem(raw, PROFILE_STEPS, processes=2) is None
    # a diverged run: NaN on both sides is the same record
    raw = honest()
    raw["checkpoints"][2]["probe_loss"] = float("nan")
    raw[SANDBOX_KEY]["witness"]["checkpoints"][2]["probe_loss"] = float("nan")
    assert ledger.problem(raw, PROFILE_STEPS) is None
