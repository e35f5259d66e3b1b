"""The leaderboard: one row per run (agent + strategy), grouped by environment and variant.

Rows read only the run table, whose counters the run loop keeps current, so ranking 10,000
programs costs no more than ranking ten.
"""

from __future__ import annotations

import html
import json
from typing import Any

from progressbench import plugins
from progressbench.analysis.report import RESUMABLE, resume_command, shown_status
from progressbench.contracts.environment import Objective, format_score
from progressbench.store import Run, Store

COLUMNS = [
    ("rank", "#"),
    ("agent", "agent"),
    ("strategy", "strategy"),
    ("run", "run"),
    ("best", "best"),
    ("delta", "vs reference"),
    ("record_gap", "gap to record"),
    ("evaluations", "evals"),
    ("success", "valid %"),
    ("usd", "USD"),
    ("wall", "wall"),
    ("status", "status"),
    ("verified", "verified"),
]


def run_objective(run: Run) -> Objective | None:
    """The objective stored with the run; older runs ask the environment plugin."""
    if run.objective_json and run.objective_json != "{}":
        return Objective.model_validate_json(run.objective_json)
    from progressbench import plugins
    from progressbench.errors import PluginError

    try:
        return plugins.get_environment(run.env).objective(run.variant)
    except (PluginError, NotImplementedError):
        return None


def rows(
    store: Store, env: str | None = None, verified_only: bool = False
) -> dict[tuple[str, str], list[dict[str, Any]]]:
    """Leaderboard rows by (env, variant), best first; variants are never mixed."""
    # The latest verification of each run's best program marks the row.
    checks: dict[str, Any] = {}
    for v in store.verifications():
        checks[v.run_id] = v
    abandoned = store.abandoned_runs()
    groups: dict[tuple[str, str], list[Run]] = {}
    for run in store.runs(env):
        check = checks.get(run.id)
        if check is not None and check.program_id != run.best_program_id:
            check = None
        checks[run.id] = check
        if verified_only and (check is None or check.verdict != "verified"):
            continue
        groups.setdefault((run.env, run.variant), []).append(run)
    out: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for (env_name, variant), runs in sorted(groups.items()):
        objective = run_objective(runs[-1])
        ranked = sorted(runs, key=lambda r: (r.best_score is None, -(r.best_score or 0.0)))
        table = []
        trust = plugins.trust_of(env_name)  # e.g. a task's "evaluator-in-sandbox"
        for i, run in enumerate(ranked, 1):
            row = _row(i, run, objective, checks.get(run.id))
            row["status"] = shown_status(run, abandoned)
            resumable = row["status"] in RESUMABLE
            row["resume"] = resume_command(store, run.id) if resumable else None
            row["trust"] = trust
            table.append(row)
        out[(env_name, variant)] = table
    return out


def _row(rank: int, run: Run, objective: Objective | None, check: Any) -> dict[str, Any]:
    best, ref = run.best_metric, run.reference_metric
    delta = gap = None
    record_name = None
    if objective is not None and best is not None:
        if ref is not None:
            delta = objective.improvement(best, ref)
        record = objective.best_record()
        if record is not None:
            record_name = record[0]
            gap = -objective.improvement(best, record[1])
    return {
        "rank": rank,
        "env": run.env,
        "variant": run.variant,
        "metric": objective.metric if objective else None,
        "agent": run.agent,
        "strategy": run.strategy,
        "run": run.id,
        "best": best,
        "reference": ref,
        "delta": delta,
        "record": record_name,
        "record_gap": gap,
        "evaluations": run.n_children,
        "success": (run.n_valid / run.n_children) if run.n_children else None,
        "usd": run.cost_usd,
        "wall": run.wall_time_s,
        "status": run.status,
        "verified": None if check is None else check.verdict,
        "verified_mean": None if check is None else check.mean,
        "verified_p": None if check is None else check.p_value,
        "verified_repeats": None if check is None else check.repeats,
    }


def format_cell(key: str, value: Any) -> str:
    if value is None:
        return "-"
    if key in ("best", "delta", "record_gap"):
        return format_score(value, signed=key != "best")
    if key == "success":
        return f"{100 * value:.0f}%"
    if key == "usd":
        return f"{value:.4f}"
    if key == "verified":
        return {"verified": "yes", "not-verified": "no", "failed": "failed"}.get(value, str(value))
    if key == "wall":
        m, s = divmod(int(value), 60)
        return f"{m}m{s:02d}s"
    return str(value)


def render(groups: dict[tuple[str, str], list[dict[str, Any]]], fmt: str) -> str:
    if fmt == "json":
        return json.dumps([r for table in groups.values() for r in table], indent=2)
    if not groups:
        return "no runs yet: start one with `progressbench run`"
    if fmt == "html":
        return _html(groups)
    from tabulate import tabulate

    parts = []
    for (env, variant), table in groups.items():
        metric = table[0]["metric"] or "score"
        head = f"{env} ({variant}) - {metric}"
        if table[0].get("trust"):
            head += f"; trust: {table[0]['trust']}"
        record = next((r["record"] for r in table if r["record"]), None)
        if record:
            head += f"; gap to record = distance to {record}'s result"
        data = [[format_cell(k, r[k]) for k, _ in COLUMNS] for r in table]
        tablefmt = "github" if fmt == "markdown" else "simple"
        title = f"### {head}" if fmt == "markdown" else head
        text = tabulate(
            data, headers=[h for _, h in COLUMNS], tablefmt=tablefmt, disable_numparse=True
        )
        resumes = [f"{r['run']} is {r['status']}: {r['resume']}" for r in table if r["resume"]]
        parts.append("\n".join([title, "", text, *(["", *resumes] if resumes else [])]))
    return "\n\n".join(parts)


def _html(groups: dict[tuple[str, str], list[dict[str, Any]]]) -> str:
    out = ["<!doctype html><meta charset=utf-8><title>progressbench leaderboard</title>"]
    for (env, variant), table in groups.items():
        out.append(f"<h2>{html.escape(env)} ({html.escape(variant)})</h2><table border=1>")
        out.append("<tr>" + "".join(f"<th>{html.escape(h)}</th>" for _, h in COLUMNS) + "</tr>")
        for r in table:
            cells = "".join(f"<td>{html.escape(format_cell(k, r[k]))}</td>" for k, _ in COLUMNS)
            out.append(f"<tr>{cells}</tr>")
        out.append("</table>")
    return "\n".join(out)
