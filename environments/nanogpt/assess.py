"""Platform side: turn the sandbox's JSON into the trusted Assessment, and telemetry into text.

Pure Python on purpose (no torch, no numpy): it runs in the platform process.
"""

from __future__ import annotations

import math
from typing import Any

from progressbench import SANDBOX_KEY, Assessment

from . import ledger, machine
from .config import BUDGET_SLACK, VARIANTS, VariantSpec

# |torch loss - numpy float64 loss| on sampled tokens above this means the kernels were tampered
# with (float32 log-softmax agrees with float64 to ~1e-5 on these vocabularies).
SPOT_TOLERANCE = 1e-3
# CPU the sandbox counted in the run beyond what the harness accounts for (its own process and
# the children it started) is work the training clock never saw. What is honestly left over
# (the report written after the harness's last reading) is milliseconds.
UNACCOUNTED_CPU_S = 1.0
UNACCOUNTED_CPU_SHARE = 0.05


def _finite(x: Any) -> bool:
    return isinstance(x, (int, float)) and math.isfinite(x)


def _invalid(
    reason: str, metrics: dict[str, float] | None = None, telemetry: dict[str, Any] | None = None
) -> Assessment:
    return Assessment(valid=False, reason=reason, metrics=metrics or {}, telemetry=telemetry or {})


def _unique(items: list[str]) -> list[str]:
    return list(dict.fromkeys(items))


def assess(raw: dict[str, Any] | None, verified: dict[str, Any] | None, variant: str) -> Assessment:
    v = VARIANTS[variant]
    if not isinstance(raw, dict) or not raw:
        return _invalid("the run returned no result")
    verified = verified if isinstance(verified, dict) else None
    violations = _unique(
        list(raw.get("violations") or []) + list((verified or {}).get("violations") or [])
    )
    if violations:
        return _invalid(
            "the program did what a training script may not: " + "; ".join(violations[:3])
        )
    if not raw.get("ok"):
        return _invalid(str(raw.get("error") or "the run failed"))
    tampered = sorted(set(raw.get("tampered") or []) | set((verified or {}).get("tampered") or []))
    if tampered:
        return _invalid(
            "the program rebound functions the harness relies on (define your own instead of "
            f"patching libraries): {', '.join(tampered[:6])}"
        )
    processes = _processes(raw, verified)
    hidden = _unaccounted_cpu(raw, v, processes) or ledger.problem(raw, v.profile_steps, processes)
    if hidden:
        return _invalid(hidden)
    if verified is None or not verified.get("ok"):
        return _invalid(
            f"verification failed: {(verified or {}).get('error', 'no verification result')}"
        )
    telemetry = _telemetry(raw, verified, v)
    problem = _integrity_problem(verified, v)
    if problem:
        reason, metrics = problem
        return _invalid(reason, metrics, telemetry)
    return _score(raw, verified, v, telemetry)


def _processes(raw: dict[str, Any], verified: dict[str, Any] | None) -> int:
    """The run's training processes: as its configuration says (the verifier's count), not as
    the run reports itself, wherever a verifier ran."""
    count = (verified or {}).get("processes", raw.get("world_size", 1))
    return count if isinstance(count, int) else 1


def _unaccounted_cpu(raw: dict[str, Any], v: VariantSpec, processes: int) -> str | None:
    """On a CPU-clock variant, CPU of the run spent in processes the harness did not start
    (the kernel counts every process of the phase; the harness only its own). Without the
    sandbox's count (an evaluator that does not measure it) there is nothing to compare."""
    counted = (raw.get(SANDBOX_KEY) or {}).get("cpu_s")
    if not v.cost_clock or processes != 1 or not _finite(counted):
        return None
    accounted = raw.get("harness_cpu_s")
    if not _finite(accounted):
        return "the run did not report the CPU its harness accounted for"
    extra = counted - accounted
    if extra <= max(UNACCOUNTED_CPU_S, UNACCOUNTED_CPU_SHARE * counted):
        return None
    return (
        f"{extra:.1f} CPU-s of the run ran in processes the harness did not start (the kernel "
        f"counted {counted:.1f} CPU-s, the harness {accounted:.1f}): work outside the training "
        "process escapes its clock"
    )


def _checkpoint_problem(c: dict[str, Any], v: VariantSpec) -> tuple[str, dict[str, float]] | None:
    if c.get("error"):
        return f"checkpoint {c['index']}: {c['error']}", {}
    if _finite(c.get("spot_error")) and c["spot_error"] > SPOT_TOLERANCE:
        return (
            f"checkpoint {c['index']}: torch's cross-entropy disagrees with a float64 numpy "
            f"recomputation by {c['spot_error']:.3g} (kernels tampered with?)",
            {"spot_error": c["spot_error"]},
        )
    if "probe_loss" not in c:
        return None  # its probe was not recomputed: its numbers are not the reported ones
    reported, recomputed = c.get("reported_probe_loss"), c["probe_loss"]
    if not (_finite(reported) and _finite(recomputed)):
        if _finite(reported) == _finite(recomputed):
            return None  # a diverged model: both sides say so, which is honest
        return (
            f"checkpoint {c['index']}: the run reported probe loss {reported} but its weights "
            f"give {recomputed}",
            {},
        )
    if abs(reported - recomputed) > v.probe_tolerance:
        return (
            f"checkpoint {c['index']} (t={c['train_time_s']:.1f}s): the run reported probe loss "
            f"{reported:.5f}, but its saved weights give {recomputed:.5f} when recomputed in a "
            f"fresh process (|diff| {abs(reported - recomputed):.2g} > {v.probe_tolerance:g})",
            {
                "reported_probe_loss": reported,
                "verified_probe_loss": recomputed,
                "checkpoint": float(c["index"]),
            },
        )
    return _gap_problem(c)


def _gap_problem(c: dict[str, Any]) -> tuple[str, dict[str, float]] | None:
    """Validation much better than the probe for the same weights: the model knows the
    validation windows (memorised, or answered from something the run left behind)."""
    gap, limit = c.get("probe_gap", math.nan), c.get("probe_gap_limit", math.nan)
    if not (_finite(gap) and _finite(limit)) or gap <= limit:
        return None
    return (
        f"checkpoint {c['index']} (t={c['train_time_s']:.1f}s): validation loss "
        f"{c['val_loss']:.4f}, but probe loss {c['probe_loss']:.4f} for the same weights (gap "
        f"{gap:.3f} > {limit:.3f}, beyond sampling noise): the model was fitted to the "
        "validation tokens or answers them from memory",
        {
            "val_loss": c["val_loss"],
            "verified_probe_loss": c["probe_loss"],
            "probe_gap": gap,
            "checkpoint": float(c["index"]),
        },
    )


def _integrity_problem(
    verified: dict[str, Any], v: VariantSpec
) -> tuple[str, dict[str, float]] | None:
    checkpoints = verified.get("checkpoints") or []
    if not checkpoints:
        return "verification scored no checkpoint", {}
    for c in checkpoints:
        problem = _checkpoint_problem(c, v)
        if problem:
            return problem
    for key in ("causality_best", "causality_final", "causality_architecture"):
        check = verified.get(key)
        if not check:
            continue
        moved = max(check.get("prefix_change", 0.0), check.get("cross_change", 0.0))
        if not _finite(moved) or moved > v.causal_tolerance:
            where = (
                "earlier positions"
                if check.get("prefix_change", 0.0) >= check.get("cross_change", 0.0)
                else "other sequences of the batch"
            )
            return (
                "the model is not causal: changing later tokens of one sequence moved its "
                "predictions "
                f"for {where} by {moved:.3g} (relative; tolerance {v.causal_tolerance:g}). "
                "A model that sees its targets does not earn its loss.",
                {"causality_change": moved if _finite(moved) else -1.0},
            )
    fresh = verified.get("fresh")
    if fresh and _finite(fresh.get("gap")) and fresh["gap"] > fresh["limit"]:
        return (
            f"validation loss {fresh['val_loss']:.4f}, but {fresh['fresh_loss']:.4f} on fresh "
            "samples "
            f"of the same source (gap {fresh['gap']:.3f} > {fresh['limit']:.3f}): the model was "
            "fitted "
            "to the validation tokens",
            {
                "val_loss": fresh["val_loss"],
                "fresh_loss": fresh["fresh_loss"],
                "fresh_gap": fresh["gap"],
            },
        )
    return None


def _score(
    raw: dict[str, Any], verified: dict[str, Any], v: VariantSpec, telemetry: dict[str, Any]
) -> Assessment:
    budget = min(float(raw.get("budget_s") or v.budget_s), v.budget_s)
    limit = budget * (1 + BUDGET_SLACK)
    checkpoints = verified["checkpoints"]
    # The budget and the primary metric are in cost_s: the estimated unloaded training time
    # on tiny (cost.py), the wall time on the speedrun.
    within = sorted(
        (c for c in checkpoints if c["cost_s"] <= limit and _finite(c.get("val_loss"))),
        key=lambda c: c["steps"],
    )
    if not within:
        if all(c["cost_s"] > limit for c in checkpoints):
            return _invalid(
                f"no checkpoint within the training budget of {budget:g}s", telemetry=telemetry
            )
        return _invalid(
            "the validation loss is not finite (training diverged)", telemetry=telemetry
        )
    reached = next((c for c in within if c["val_loss"] <= v.target), None)
    best = min(within, key=lambda c: c["val_loss"])
    chosen = reached or best
    metrics: dict[str, float] = {
        "val_loss": chosen["val_loss"],
        "train_cost_s": chosen["cost_s"],
        "train_time_s": chosen["train_time_s"],
        "steps": float(chosen["steps"]),
        "best_val_loss": best["val_loss"],
        "final_val_loss": within[-1]["val_loss"],
        "tokens": float(chosen["tokens"]),
        "tokens_total": float(raw.get("tokens", 0)),
        "reached_target": 1.0 if reached else 0.0,
        "target": v.target,
        "budget_s": budget,
        "reported_probe_loss": chosen["reported_probe_loss"],
        "verified_probe_loss": chosen["probe_loss"],
        "params": float(raw.get("params", 0)),
        "tokens_per_s": float(telemetry.get("tokens_per_s") or 0.0),
        "warmup_s": float(raw.get("warmup_s", 0.0)),
    }
    if reached:
        metrics["cost_to_target_s"] = reached["cost_s"]
        metrics["time_to_target_s"] = reached["train_time_s"]
        metrics["steps_to_target"] = float(reached["steps"])
        metrics["tokens_to_target"] = float(reached["tokens"])
        # Which kind of change a child made: fewer steps, or cheaper ones.
        metrics["cost_per_step_ms"] = round(1000 * reached["cost_s"] / max(reached["steps"], 1), 2)
    if v.entropy_floor is not None:
        metrics["entropy_floor"] = v.entropy_floor
        metrics["gap_to_floor"] = chosen["val_loss"] - v.entropy_floor
    if _finite(telemetry.get("mfu")):
        metrics["mfu"] = telemetry["mfu"]
    # Reaching the target scores budget / cost (>= ~1, faster is higher); not reaching it
    # scores minus the distance left to the target (< 0), so any reaching run ranks above.
    score = budget / max(reached["cost_s"], 1e-3) if reached else -(best["val_loss"] - v.target)
    features = {
        "log10_params": math.log10(max(metrics["params"], 1.0)),
        "log10_tokens_per_s": math.log10(max(metrics["tokens_per_s"], 1.0)),
    }
    when = (
        f"reached {v.target:g} at step {reached['steps']}, {reached['cost_s']:.1f}s "
        f"(wall {reached['train_time_s']:.1f}s)"
        if reached
        else f"best {best['val_loss']:.4f} > target {v.target:g}"
    )
    return Assessment(
        valid=True,
        score=score,
        metrics=metrics,
        features=features,
        telemetry=telemetry,
        reason=when,
    )


def _telemetry(raw: dict[str, Any], verified: dict[str, Any], v: VariantSpec) -> dict[str, Any]:
    tel = dict(raw.get("telemetry") or {})
    # Each number the run reported and the verifier recomputed, for the platform's
    # verification guard (docs/integrity.md, "computed" convention).
    tel["agreement"] = [
        {
            "name": f"probe loss at checkpoint {c['index']} (t={c['train_time_s']:.1f}s)",
            "reported": c["reported_probe_loss"],
            "verified": c["probe_loss"],
            "tolerance": v.probe_tolerance,
        }
        for c in verified.get("checkpoints") or []
        if "probe_loss" in c and "reported_probe_loss" in c
    ]
    # The full validation loss where verification computed it, else its screened estimate.
    points = []
    for c in verified.get("checkpoints") or []:
        loss = c.get("val_loss", c.get("screen_loss"))
        if _finite(loss) and "steps" in c:
            points.append([c["steps"], c["tokens"], loss])
    tel["val_curve"] = sorted(points)
    _mfu(tel, raw, verified)
    tel.update(
        {
            "variant": v.name,
            "target": v.target,
            "budget_s": min(float(raw.get("budget_s") or v.budget_s), v.budget_s),
            "entropy_floor": v.entropy_floor,
            "stop_reason": raw.get("stop_reason", ""),
            "train_time_s": raw.get("train_time_s"),
            "tokens": raw.get("tokens"),
            "warmup_s": raw.get("warmup_s"),
            "excluded_s": raw.get("excluded_s"),
        }
    )
    return tel


def _mfu(tel: dict[str, Any], raw: dict[str, Any], verified: dict[str, Any]) -> None:
    """MFU over the whole run's primary clock, against a peak that was not measured under this
    run's load: the data sheet's (CUDA) or this machine's stored idle figure; else none."""
    fpt = (tel.get("profile") or {}).get("flops_per_token")
    checkpoints = [c for c in verified.get("checkpoints") or [] if "cost_s" in c]
    if not (_finite(fpt) and checkpoints):
        return
    if not _finite(tel.get("peak_flops")):
        stored = machine.load_peak(int(tel.get("threads") or 0))
        if stored is None:
            return
        tel["peak_flops"], tel["peak_flops_source"] = stored
    last = max(checkpoints, key=lambda c: c["steps"])
    world = int(raw.get("world_size") or 1)
    if last["cost_s"] > 0:
        tel["mfu"] = fpt * last["tokens"] / last["cost_s"] / (tel["peak_flops"] * world)


# --- text for prompts ------------------------------------------------------------------------
def _si(x: float) -> str:
    for unit, scale in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(x) >= scale:
            return f"{x / scale:.3g}{unit}"
    return f"{x:.3g}"


def _curve(points: list[list[float]], n: int = 8, unit: str = "s") -> str:
    if not points:
        return "-"
    step = max(1, math.ceil(len(points) / n))
    picked = points[::step]
    if picked[-1] is not points[-1]:
        picked.append(points[-1])
    if unit == "step":
        return " ".join(f"{p[2]:.3f}@step{p[0]:.0f}" for p in picked)
    return " ".join(f"{p[2]:.3f}@{p[0]:.0f}{unit}" for p in picked)


def _cost_line(tel: dict[str, Any]) -> str | None:
    """The primary clock beside the wall clock, with the estimate's noise."""
    c = tel.get("step_cost")
    if not c or not c.get("steps"):
        return None
    wall = tel.get("train_time_s") or 0.0
    noise = c.get("relative_noise")
    noise_text = f" ± {100 * noise:.1f}%" if _finite(noise) else ""
    load = f", {wall / c['cost_s']:.2f}x the estimate" if c.get("cost_s") else ""
    return (
        f"cost (estimated unloaded training time, CPU-based): {c['cost_s']:.1f}s{noise_text} over "
        f"{c['steps']} steps, {c['cost_ms_per_step']:.1f} ms/step | wall {wall:.1f}s{load} | "
        f"step CPU median {c['step_cpu_ms_median']:.1f} ms (wall median "
        f"{c['step_ms_median']:.1f}), "
        f"speed probe {c['probe_ms_median']:.2f} ms against {c['probe_reference_ms']:.2f} idle"
    )


def format_telemetry(tel: dict[str, Any]) -> str:
    if not tel:
        return ""
    lines = []
    tps = tel.get("tokens_per_s") or 0.0
    tokens, seconds = _si(tel.get("tokens") or 0), tel.get("train_time_s") or 0.0
    head = f"device {tel.get('device', '?')} | {tokens} tokens in {seconds:.1f}s ({_si(tps)} tok/s)"
    if _finite(tel.get("mfu")):
        peak = f"{_si(tel['peak_flops'])}FLOP/s ({tel.get('peak_flops_source', '')})"
        head += f" | MFU {100 * tel['mfu']:.1f}% of {peak}"
    elif (tel.get("profile") or {}).get("flops_per_token"):
        head += " | MFU not shown (no peak measured on this machine while idle)"
    if tel.get("cpu_s") and tel.get("train_time_s"):
        head += f" | {tel['cpu_s'] / tel['train_time_s']:.2f} CPU cores busy"
    if tel.get("warmup_s"):
        head += f" | warm-up {tel['warmup_s']:.1f}s"
    lines.append(head)
    cost_line = _cost_line(tel)
    if cost_line:
        lines.append(cost_line)
    sections = tel.get("sections") or {}
    if sections:
        parts = []
        for name, s in sections.items():
            calls = f", {s['mean_ms']:.2f} ms x {s['calls']}" if s.get("calls") else ""
            parts.append(f"{name} {100 * s['share']:.1f}% ({s['total_s']:.2f}s{calls})")
        lines.append("time: " + " | ".join(parts))
    profile = tel.get("profile") or {}
    if profile.get("top"):
        ops = " | ".join(f"{op['name']} {100 * op['share']:.1f}%" for op in profile["top"][:6])
        lines.append(f"top {profile.get('kind', 'ops')} over {profile.get('steps')} steps: {ops}")
        if profile.get("flops_per_token"):
            lines.append(
                f"FLOPs: {_si(profile['flops_per_token'])} per token "
                f"({profile.get('flops_counted', '')})"
            )
    memory = tel.get("memory") or {}
    if memory:
        peak_rss, start_rss = memory.get("peak_rss_mb", 0), memory.get("start_rss_mb", 0)
        mem = f"memory: peak RSS {peak_rss:.0f} MB (start {start_rss:.0f} MB)"
        if "cuda_peak_allocated_mb" in memory:
            allocated, reserved = memory["cuda_peak_allocated_mb"], memory["cuda_peak_reserved_mb"]
            mem += f", CUDA peak allocated {allocated:.0f} MB, reserved {reserved:.0f} MB"
        lines.append(mem)
    floor = f", entropy floor {tel['entropy_floor']:.3f}" if tel.get("entropy_floor") else ""
    lines.append(
        f"val loss: {_curve(tel.get('val_curve') or [], unit='step')} (target "
        f"{tel.get('target')}{floor}; stop: {tel.get('stop_reason', '?')})"
    )
    lines.append(f"train loss (wall clock): {_curve(tel.get('train_curve') or [])}")
    return "\n".join(lines)


def _change(name: str, before: float, now: float, noise: float, unit: str) -> str | None:
    """One figure's change, marked when it is within twice the measurement's noise."""
    if not (_finite(before) and _finite(now)) or before <= 0:
        return None
    rel = now / before - 1
    within = " (within noise)" if _finite(noise) and abs(rel) <= 2 * noise else ""
    return f"{name} {before:.1f} -> {now:.1f}{unit} ({100 * rel:+.1f}%){within}"


def format_telemetry_diff(tel: dict[str, Any], parent: dict[str, Any]) -> str:
    """What got faster or slower than in the parent's evaluation: the calibrated cost per
    step, each section's time per call, throughput and peak memory."""
    c, p = tel.get("step_cost") or {}, parent.get("step_cost") or {}
    noises = [n for n in (c.get("relative_noise"), p.get("relative_noise")) if _finite(n)]
    noise = math.hypot(*noises) if noises else math.nan
    parts = [
        _change("cost/step", p.get("cost_ms_per_step"), c.get("cost_ms_per_step"), noise, " ms")
    ]
    if _finite(c.get("steps")) and _finite(p.get("steps")) and c["steps"] != p["steps"]:
        parts.append(f"steps {p['steps']} -> {c['steps']}")
    sections, before = tel.get("sections") or {}, parent.get("sections") or {}
    for name, s in sections.items():
        b = before.get(name) or {}
        if s.get("calls") and b.get("calls"):
            parts.append(_change(name, b["mean_ms"], s["mean_ms"], noise, " ms/call"))
    parts.append(_change("tok/s", parent.get("tokens_per_s"), tel.get("tokens_per_s"), noise, ""))
    mem, mem_before = tel.get("memory") or {}, parent.get("memory") or {}
    parts.append(
        _change("peak RSS", mem_before.get("peak_rss_mb"), mem.get("peak_rss_mb"), 0.0, " MB")
    )
    return " | ".join(p for p in parts if p)
