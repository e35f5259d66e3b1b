"""The leaderboard: one row per run (agent + strategy), grouped by environment and variant.

Rows read only the run table, whose counters the run loop keeps current, so ranking 10,000
programs costs no more than ranking ten.
"""

from __future__ import annotations

import html
import json
from typing import Any

from progressbench import plugins
from progressbench.analysis.report import (
    RECORD_HEADERS,
    RESUMABLE,
    record_rows,
    record_rule,
    shown_status,
)
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
    ("standing", "vs record"),
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
            row["resume"] = store.resume_command(run.id) if resumable else None
            row["trust"] = trust
            table.append(row)
        out[(env_name, variant)] = table
    return out


def _row(rank: int, run: Run, objective: Objective | None, check: Any) -> dict[str, Any]:
    best, ref = run.best_metric, run.reference_metric
    delta = None
    leader = objective.leader() if objective is not None else None
    if objective is not None and best is not None and ref is not None:
        delta = objective.improvement(best, ref)
    return {
        "rank": rank,
        "env": run.env,
        "variant": run.variant,
        "metric": objective.metric if objective else None,
        "direction": objective.direction if objective else None,
        "unit": objective.unit if objective else None,
        # The environment's record table, as structured data (json) and for the renderers.
        "records": [r.model_dump() for r in objective.records] if objective else [],
        "agent": run.agent,
        "strategy": run.strategy,
        "run": run.id,
        "best": best,
        "reference": ref,
        "delta": delta,
        "record": leader.key if leader else None,
        "record_value": leader.value if leader else None,
        "record_gap": objective.record_gap(best) if objective and best is not None else None,
        "standing": objective.standing(best) if objective and best is not None else None,
        "evaluations": run.n_children,
        "success": (run.n_valid / run.n_children) if run.n_children else None,
        "usd": run.cost_usd,
        "wall": run.wall_time_s,
        "status": run.status,
        "verified": _verdict(check),
        "verified_mean": None if check is None else check.mean,
        "verified_p": None if check is None else check.p_value,
        "verified_repeats": None if check is None else check.repeats,
    }


def _verdict(check: Any) -> str | None:
    """The verification's verdict; "verified faster" (the record criterion) when verify's
    paired test against the reference (details ``faster``) also came out faster."""
    if check is None:
        return None
    faster = (json.loads(check.details_json or "{}").get("faster") or {}).get("verdict")
    return (
        "verified faster" if check.verdict == "verified" and faster == "faster" else check.verdict
    )


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
        return {
            "verified": "yes",
            "verified faster": "yes, faster",
            "not-verified": "no",
            "failed": "failed",
        }.get(value, str(value))
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
        data = [[format_cell(k, r[k]) for k, _ in COLUMNS] for r in table]
        tablefmt = "github" if fmt == "markdown" else "simple"
        title = f"### {head}" if fmt == "markdown" else head
        text = tabulate(
            data, headers=[h for _, h in COLUMNS], tablefmt=tablefmt, disable_numparse=True
        )
        objective = group_objective(table)
        if objective is not None and objective.records:
            records = tabulate(
                record_rows(objective), RECORD_HEADERS, tablefmt=tablefmt, disable_numparse=True
            )
            text = "\n\n".join([record_rule(objective), records, text])
        resumes = [f"{r['run']} is {r['status']}: {r['resume']}" for r in table if r["resume"]]
        parts.append("\n".join([title, "", text, *(["", *resumes] if resumes else [])]))
    return "\n\n".join(parts)


def group_objective(table: list[dict[str, Any]]) -> Objective | None:
    """The objective a group's rows were ranked by, rebuilt from their plain data (the rows
    stay JSON as they are)."""
    first = table[0]
    if first["metric"] is None:
        return None
    keys = ("metric", "direction", "unit", "records")
    return Objective.model_validate({k: first[k] for k in keys})


def records_html(objective: Objective | None) -> str:
    """The rule line and the record table of one leaderboard group, as HTML."""
    if objective is None or not objective.records:
        return ""
    head = "".join(f"<th>{html.escape(h)}</th>" for h in RECORD_HEADERS)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>"
        for row in record_rows(objective)
    )
    rule = html.escape(record_rule(objective))
    return f"<p>{rule}</p><table border=1 class=records><tr>{head}</tr>{body}</table>"


def _html(groups: dict[tuple[str, str], list[dict[str, Any]]]) -> str:
    out = ["<!doctype html><meta charset=utf-8><title>progressbench leaderboard</title>"]
    for (env, variant), table in groups.items():
        out.append(f"<h2>{html.escape(env)} ({html.escape(variant)})</h2>")
        out.append(records_html(group_objective(table)) + "<table border=1>")
        out.append("<tr>" + "".join(f"<th>{html.escape(h)}</th>" for _, h in COLUMNS) + "</tr>")
        for r in table:
            cells = "".join(f"<td>{html.escape(format_cell(k, r[k]))}</td>" for k, _ in COLUMNS)
            out.append(f"<tr>{cells}</tr>")
        out.append("</table>")
    return "\n".join(out)
