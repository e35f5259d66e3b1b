"""Platform side: a run's records held against its timekeeper's (``keeper``), which the
sandbox hands over as ``raw[SANDBOX_KEY]["witness"]``.

The harness's copy of the clock, the cost and the checkpoint records lives in the program's
process; the keeper's does not. In an honest run the two are the same numbers (the harness
takes them from the keeper), so any difference is a change made in the program's process.
The keeper also measured what the training process did while its clock was paused: its
pauses are the harness's waits (the keeper times the speed probe and generates the corpus
while the training process waits for it), so CPU time there beyond a small allowance is
training done off the clock.

Pure Python, like ``assess``.
"""

from __future__ import annotations

import math
from typing import Any

from progressbench import SANDBOX_KEY

# CPU seconds the training process may spend in its clock's pauses (warm-up aside, which is
# restored and capped): checkpoints read, hash and save the weights and fork the probe's
# child there (the probe and the corpus are the keeper's work: the training process only
# waits). Honest runs, 2026-12-03 on a slow day of this machine: the tiny reference 0.85 s
# in 564 pauses of 343 CPU-s of training; the 40-step test model 0.15 s of 0.33.
PAUSED_CPU_S = 1.0
PAUSED_CPU_SHARE = 0.01
# The profiler's one window starts and stops in two pauses, and stopping it is real work that
# grows with the window's events: the reference's 4 profiled steps took 3.0-3.4 s there, 1.4x
# their own CPU on the clock (2026-12-04); the test model 0.5 s. The allowance is counted in
# steps of the run's own average CPU, for at most the variant's profiled steps (the harness's
# count of them is in the program's process), with room for programs of many small ops.
PROFILE_PAUSES = 2
PROFILE_CPU_S = 2.0
PROFILE_CPU_SHARE = 0.02
PROFILE_STEP_SHARE = 3.0
# Fields of each checkpoint record that must be the keeper's, exactly.
CHECKPOINT_FIELDS = (
    "index", "train_time_s", "cost_s", "steps", "tokens", "digest", "file", "probe_loss",
)  # fmt: skip
RUN_FIELDS = ("train_time_s", "steps", "world_size")


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, float) or isinstance(b, float):
        if not (isinstance(a, int | float) and isinstance(b, int | float)):
            return False
        return math.isclose(a, b) or (math.isnan(a) and math.isnan(b))
    return bool(a == b)


def _differences(raw: dict[str, Any], kept: dict[str, Any]) -> list[str]:
    found = [
        f"{key} {raw.get(key)!r} reported, {kept.get(key)!r} kept"
        for key in RUN_FIELDS
        if not _same(raw.get(key), kept.get(key))
    ]
    reported, held = raw.get("checkpoints") or [], kept.get("checkpoints") or []
    if len(reported) != len(held):
        found.append(f"{len(reported)} checkpoints reported, {len(held)} kept")
    for mine, theirs in zip(reported, held, strict=False):
        if not isinstance(mine, dict):
            found.append("a checkpoint record that is not a record")
            continue
        found += [
            f"checkpoint {theirs.get('index')}: {key} {mine.get(key)!r} reported, "
            f"{theirs.get(key)!r} kept"
            for key in CHECKPOINT_FIELDS
            if not _same(mine.get(key), theirs.get(key))
        ]
    return found


def _profile_limit(kept: dict[str, Any], profile_steps: int) -> float:
    cpu = float(kept.get("cpu_s") or 0.0)
    steps = int(kept.get("steps") or 0)
    profiled = min(int(kept.get("profiled_steps") or 0), profile_steps, steps)
    per_step = cpu / steps if steps else 0.0
    return PROFILE_CPU_S + PROFILE_CPU_SHARE * cpu + PROFILE_STEP_SHARE * profiled * per_step


def _pause_problem(kept: dict[str, Any], profile_steps: int) -> str | None:
    pauses = {k: b for k, b in (kept.get("pauses") or {}).items() if isinstance(b, dict)}
    cpu = float(kept.get("cpu_s") or 0.0)
    profile = pauses.get("profile", {})
    if int(profile.get("n", 0)) > PROFILE_PAUSES:
        return (
            f"the clock was paused {profile['n']} times for the profiler, which pauses it "
            f"{PROFILE_PAUSES} times: pauses that are not the harness's"
        )
    limits = {"profile": _profile_limit(kept, profile_steps)}
    spent = {"profile": float(profile.get("cpu_s", 0.0))}
    spent["the harness's other work"] = sum(
        float(b.get("cpu_s", 0.0)) for k, b in pauses.items() if k not in ("warmup", "profile")
    )
    limits["the harness's other work"] = PAUSED_CPU_S + PAUSED_CPU_SHARE * cpu
    for what, used in spent.items():
        if used > limits[what]:
            kinds = ", ".join(
                f"{k} {b['cpu_s']:.1f}s" for k, b in sorted(pauses.items()) if b["cpu_s"] >= 0.05
            )
            return (
                f"the training process used {used:.1f} CPU-s while its clock was paused for "
                f"{what} ({kinds}; at most {limits[what]:.1f} s is the harness's own work): "
                "training off the clock"
            )
    return None


def problem(raw: dict[str, Any], profile_steps: int, processes: int = 1) -> str | None:
    """Why the run's records cannot be trusted against its keeper's, or None. Nothing is
    compared where the evaluator keeps no witness (no ``SANDBOX_KEY``) or the run had
    several ``processes`` (each rank has its own keeper, and no witness file reaches them).
    ``profile_steps``: the variant's profiled steps."""
    sandbox = raw.get(SANDBOX_KEY)
    if not isinstance(sandbox, dict) or processes != 1:
        return None
    kept = sandbox.get("witness")
    if not isinstance(kept, dict):
        return "the run's timekeeper left no record (its process was stopped or never started)"
    if "error" in kept:
        return f"the run's timekeeper left no usable record: {kept['error']}"
    differences = _differences(raw, kept)
    if differences:
        shown = "; ".join(differences[:3])
        return (
            f"the run's records differ from its timekeeper's ({shown}): they were changed in "
            "the program's process"
        )
    return _pause_problem(kept, profile_steps)
