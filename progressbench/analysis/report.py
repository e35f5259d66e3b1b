"""Text reports over stored runs: ``show``, ``best``, ``ideas``."""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

from tabulate import tabulate

from progressbench import plugins
from progressbench.contracts.environment import Objective, format_score
from progressbench.errors import UserError
from progressbench.store import Run, Store
from progressbench.store.connect import db_flag


def run_environment(run: Run) -> Any | None:
    try:
        return plugins.get_environment(run.env)
    except UserError:  # e.g. a task folder since removed
        return None


def _strategy_summary(run: Run, env: Any) -> str:
    from progressbench.contracts.strategy import StrategyContext

    try:
        cls = plugins.get("strategies", run.strategy)
        config = run.config
        strategy = cls(
            StrategyContext(
                objective=env.objective(run.variant),
                features=env.features(run.variant),
                seed=run.seed,
                budget=run.budget,
                options=config.get("strategy_options", {}),
                reference_id=run.reference_id or 0,
                env=run.env,
            )
        )
        state = json.loads(run.strategy_state_json or "{}")
        if state:
            strategy.restore(state)
        return strategy.describe()
    except Exception as exc:  # a report must not die on an old or foreign strategy state
        return f"(strategy state unavailable: {exc})"


def outcome_counts(run: Run) -> str:
    """How a run's children ended: every child is valid, invalid (ran, but the environment or
    a result guard refused it), or failed (crashed, or rejected before it ran)."""
    invalid = run.n_children - run.n_valid - run.n_failed
    return f"{run.n_valid} valid, {invalid} invalid, {run.n_failed} failed"


def shown_status(run: Run, abandoned: set[str]) -> str:
    """A run's status as reports show it: a run marked running whose process is gone
    (``Store.abandoned_runs``) is interrupted."""
    return "interrupted" if run.id in abandoned else run.status


RESUMABLE = ("interrupted", "failed", "stopped")


def show_run(store: Store, run_id: str, frontier: bool = False, top: int = 10) -> str:
    from progressbench.run.source import program_line

    run = store.get_run(run_id)
    env = run_environment(run)
    metric = env.objective(run.variant).metric if env else "metric"
    status = shown_status(run, store.abandoned_runs())
    message = run.message or ("its process is gone" if status != run.status else "")
    out = [
        f"run {run.id}  [{status}{': ' + message if message else ''}]",
        f"  env {run.env} / {run.variant}   strategy {run.strategy}   agent {run.agent}   seed {run.seed}"
        + (f"   trust: {trust}" if (trust := plugins.trust_of(run.env)) else ""),
        f"  children {run.n_children}/{run.budget}: {outcome_counts(run)}, "
        f"{run.n_retries} fast-catcher retries   cost ${run.cost_usd:.4f}   wall {run.wall_time_s:.1f}s",
        f"  reference {metric} {format_score(run.reference_metric)}   "
        f"best {format_score(run.best_metric)} (program {run.best_program_id})",
    ]
    if run.config.get("program") and run.reference_id is not None:
        reference = store.get_program(run.reference_id).code
        out.append(program_line(run.config["program"], reference))
    if status in RESUMABLE:
        out.append(f"  resume with: {store.resume_command(run.id)}")
    if env:
        out += records_text(env.objective(run.variant), run.best_metric)
    if env and run.strategy != "eval":  # `eval --save` stores a program no strategy chose
        summary = _strategy_summary(run, env)
        if summary:
            out += ["", "strategy:"] + ["  " + line for line in summary.splitlines()]
    columns = env.show_metrics if env else ()
    evaluations = [ev for ev in store.evaluations(run.id) if ev.kind == "full"] if columns else []
    metrics = {ev.program_id: json.loads(ev.metrics_json) for ev in evaluations}
    out += _programs_text(store.programs(run.id), metric, top, columns, metrics)
    best_id = run.best_program_id
    if env and best_id is not None:
        ev = store.evaluation(best_id)
        if ev is not None and ev.telemetry:
            out += ["", f"telemetry of program {best_id}:"]
            out += ["  " + line for line in env.format_telemetry(ev.telemetry).splitlines()]
    out += _calls_text(store.llm_calls(run.id))
    if frontier:
        out += ["", frontier_text(store, run, env)]
    return "\n".join(out)


def _programs_text(
    programs: list[Any],
    metric: str,
    top: int,
    columns: tuple[str, ...] = (),
    metrics: dict[int, dict[str, Any]] | None = None,
) -> list[str]:
    """Counts by status and prompting mode, the top valid programs (with the metric
    ``columns``, from ``metrics`` by program id), the failure reasons."""
    metrics = metrics or {}
    statuses = Counter(p.status for p in programs if not p.is_reference)
    out = ["", "programs by status: " + ", ".join(f"{k} {v}" for k, v in sorted(statuses.items()))]
    modes = Counter(p.mode for p in programs if not p.is_reference)
    if modes:
        out.append("prompting: " + ", ".join(f"{k} {v}" for k, v in sorted(modes.items())))
    valid = sorted((p for p in programs if p.status == "valid"), key=lambda p: -(p.score or 0))
    rows = [
        [
            p.id,
            p.parent_ids[0] if p.parent_ids else "-",
            p.island,
            p.generation,
            format_score(p.metric),
            *(format_score(metrics.get(p.id, {}).get(name)) for name in columns),
            format_score(p.score),
            p.retries,
            (p.idea or p.mode)[:48],
        ]
        for p in valid[:top]
    ]
    if rows:
        out += [
            "",
            f"top {len(rows)} valid programs:",
            tabulate(
                rows,
                headers=["id", "parent", "island", "gen", metric, *columns]
                + ["score", "retries", "idea/mode"],
            ),
        ]
    failures = [p for p in programs if p.status in ("failed", "rejected", "invalid")]
    if failures:
        reasons = Counter(_reason(p.error) for p in failures)
        out += ["", "failure reasons:"] + [f"  {n:4d}  {r}" for r, n in reasons.most_common(8)]
    return out


def _calls_text(calls: list[Any]) -> list[str]:
    if not calls:
        return []
    models = Counter(c.model for c in calls)
    tokens = sum(c.prompt_tokens + c.completion_tokens for c in calls)
    errors = sum(1 for c in calls if c.error)
    return [
        "",
        f"agent calls: {len(calls)} ({', '.join(f'{m} {n}' for m, n in models.items())}), "
        f"{tokens} tokens, {errors} errors",
    ]


def frontier_text(store: Store, run: Run, env: Any) -> str:
    axes = env.frontier if env else None
    if not axes:
        return f"environment {run.env!r} declares no efficiency frontier"
    x, y = axes
    points = []
    for ev in store.evaluations(run.id):
        m = ev.metrics
        if ev.valid and x in m and y in m:
            points.append((m[x], m[y], ev.program_id))
    front = pareto_front(points)
    if not front:
        return f"efficiency frontier ({x} vs {y}): no valid program reports both metrics"
    rows = [[format_score(a), format_score(b), pid] for a, b, pid in front]
    return f"efficiency frontier ({y} vs {x}, both minimised):\n" + tabulate(
        rows, headers=[x, y, "program"]
    )


def pareto_front(points: list[tuple[float, float, int]]) -> list[tuple[float, float, int]]:
    """Points no other point beats on both axes (both minimised), sorted by x."""
    front: list[tuple[float, float, int]] = []
    for p in sorted(points):
        if not front or p[1] < front[-1][1]:
            front.append(p)
    return front


def best_program(
    store: Store, run_id: str, diff: bool = False, program_id: int | None = None
) -> str:
    from progressbench.run.edits import unified_diff

    run = store.get_run(run_id)
    pid = program_id if program_id is not None else run.best_program_id
    if pid is None:
        raise UserError(f"run {run.id} has no valid program yet")
    program = store.get_program(pid)
    if program.run_id != run.id:
        raise UserError(f"program {pid} belongs to run {program.run_id}, not {run.id}")
    if not diff:
        return program.code
    if run.reference_id is None:
        raise UserError(f"run {run.id} has no reference program")
    reference = store.get_program(run.reference_id)
    text = unified_diff(reference.code, program.code)
    return text or "(identical to the reference)\n"


def ideas_table(store: Store, run_id: str) -> str:
    run = store.get_run(run_id)
    programs = {p.id: p for p in store.programs(run.id)}
    rows = []
    for p in programs.values():
        if not p.idea:
            continue
        parent = programs.get(p.parent_ids[0]) if p.parent_ids else None
        effect = (
            (p.score - parent.score)
            if p.score is not None and parent and parent.score is not None
            else None
        )
        rows.append((effect, p))
    if not rows:
        return f"run {run.id} recorded no ideas (ideas come from meta-prompting strategies such as islands)"
    rows.sort(key=lambda r: (r[0] is None, -(r[0] or 0.0)))
    table = [
        [p.id, p.island, p.status, format_score(e, signed=True), _one_line(p.idea)[:90]]
        for e, p in rows
    ]
    return tabulate(table, headers=["program", "island", "status", "effect", "idea"])


RECORD_HEADERS = ["record", "year", "value", "source"]


def record_rows(objective: Objective) -> list[list[str]]:
    """The objective's record table, best first: holder, year, the value with all the digits
    it was published with, source."""
    ranked = sorted(
        objective.records, key=lambda r: r.value, reverse=objective.direction == "maximize"
    )
    return [
        [r.holder, "-" if r.year is None else str(r.year), _published(r.value), r.source or "-"]
        for r in ranked
    ]


def _published(value: float) -> str:
    """A record's value as its source prints it: every digit (the shortest repr that reads
    back as the same float), a count without ".0"."""
    return str(int(value)) if value.is_integer() else repr(value)


def record_rule(objective: Objective) -> str:
    """What "gap to record" and "new record" mean for this objective, in one line."""
    best = objective.leader()
    if best is None:
        return ""
    unit = f", in {objective.unit}" if objective.unit else ""
    if objective.direction == "maximize":
        side = f"{objective.metric} is maximised: gap to record = record - best"
    else:
        side = f"{objective.metric} is minimised: gap to record = best - record"
    return (
        f"{side}{unit} (positive: behind); new record only when strictly better than "
        f"{best.key}'s {_published(best.value)}"
    )


def records_text(objective: Objective, best: float | None) -> list[str]:
    """``show``'s record section: the table, the rule, where the best program stands."""
    if not objective.records:
        return []
    table = tabulate(record_rows(objective), headers=RECORD_HEADERS, disable_numparse=True)
    out = ["", "published records:", table]
    out.append(record_rule(objective))
    if best is not None:
        gap = format_score(objective.record_gap(best), signed=True)
        out.append(f"best {format_score(best)}: gap to record {gap}, {objective.standing(best)}")
    return out


def run_summary(store: Store, run: Run, env: Any) -> str:
    """What ``progressbench run`` prints when a run ends: counts, cost, the best result against
    the reference and the best known record, where the results are, what to look at next."""
    objective = env.objective(run.variant)
    lines = [
        f"run {run.id}: {run.status}{' (' + run.message + ')' if run.message else ''}, "
        f"{run.n_children}/{run.budget} children, {outcome_counts(run)}, "
        f"{run.n_retries} retries, ${run.cost_usd:.4f}"
    ]
    if run.best_metric is not None:
        best, reference = run.best_metric, run.reference_metric
        line = f"best {objective.metric} {format_score(best)} (program {run.best_program_id})"
        if reference is not None:
            delta = format_score(objective.improvement(best, reference), signed=True)
            line += f", reference {format_score(reference)} ({delta})"
        record = objective.best_record()
        if record:
            line += f"; best known {format_score(record[1])} ({record[0]})"
        lines.append(line)
    lines.append(f"results in {store.location}")
    db = db_flag(store.url)
    lines.append(
        f"next: progressbench show {run.id}{db} | progressbench best {run.id} --diff{db} | "
        f"progressbench leaderboard{db}"
    )
    return "\n".join(lines)


def interrupted_text(store: Store, run: Run | None) -> str:
    """What an interrupted ``progressbench run`` prints: the command that resumes it."""
    return f"\ninterrupted; resume with: {store.resume_command(run.id if run else '?')}"


def _reason(error: str) -> str:
    return _one_line(error)[:100] or "(no reason recorded)"


def _one_line(text: str) -> str:
    return " ".join(text.split())
