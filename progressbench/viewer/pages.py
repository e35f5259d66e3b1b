"""The leaderboard page and the run page, rendered on the server (the run page's content is
also served alone, for the live update)."""

from __future__ import annotations

from progressbench.analysis import leaderboard as lb
from progressbench.analysis.report import outcome_counts
from progressbench.store import Store
from progressbench.viewer import svg
from progressbench.viewer.data import ProgramRow, RunView
from progressbench.viewer.html import (
    document,
    e,
    link,
    pre,
    program_href,
    run_href,
    score,
    table,
)

# How many rows the run page lists; the rest are a click away (program pages, `show`).
TOP = 20
VERIFIED = {"verified": "✓ verified", "not-verified": "✗ not verified", "failed": "✗ failed"}


def leaderboard(store: Store) -> str:
    groups = lb.rows(store)
    if not groups:
        body = "<h1>Leaderboard</h1><p>No runs yet: start one with <code>progressbench run</code>."
        return document("leaderboard", f"<main>{body}</main>")
    parts = ["<h1>Leaderboard</h1>"]
    for (env, variant), rows in groups.items():
        metric = rows[0]["metric"] or "score"
        parts.append(f"<h2>{e(env)} ({e(variant)}) - {e(metric)}</h2>")
        parts.append(lb.records_html(lb.group_objective(rows)))
        cells = []
        for r in rows:
            row = []
            for key, _ in lb.COLUMNS:
                text = lb.format_cell(key, r[key])
                if key == "run":
                    row.append(link(run_href(r["run"]), text))
                elif key == "verified" and r[key]:
                    row.append(
                        f'<span class="mark {e(r[key])}">{e(VERIFIED.get(r[key], text))}</span>'
                    )
                else:
                    row.append(e(text))
            cells.append(row)
        parts.append(table([h for _, h in lb.COLUMNS], cells, "leaderboard"))
    return document("leaderboard", "<main>" + "".join(parts) + "</main>")


def run_page(view: RunView) -> str:
    run = view.run
    live = f' data-live="/api{e(run_href(run.id))}"' if run.status == "running" else ""
    return document(
        f"run {run.id}",
        f'<main id="content" data-version="{e(view.version())}"{live}>{run_content(view)}</main>',
    )


def run_content(view: RunView) -> str:
    sections = [
        _summary(view),
        _progress(view),
        _lineage(view),
        _islands(view),
        _grid(view),
        _frontier(view),
        _telemetry(view),
        _ideas(view),
        _programs(view),
    ]
    return "".join(s for s in sections if s)


def _summary(view: RunView) -> str:
    run, metric = view.run, view.metric
    message = f": {run.message}" if run.message else ""
    best = view.best
    best_text = (
        f"best {e(metric)} {score(run.best_metric)} "
        f"({link(program_href(run.id, best.id), f'program {best.id}')})"
        if best is not None
        else "no valid child yet"
    )
    return (
        f'<h1>run {e(run.id)} <span class="status {e(run.status)}">{e(run.status)}{e(message)}'
        f"</span></h1><p>{e(run.env)} / {e(run.variant)}, strategy {e(run.strategy)}, agent "
        f"{e(run.agent)}, seed {e(run.seed)}</p><p>children {e(run.n_children)}/{e(run.budget)}: "
        f"{e(outcome_counts(run))}, {e(run.n_retries)} fast-catcher retries; "
        f"${run.cost_usd:.4f}; wall {run.wall_time_s:.1f}s</p>"
        f"<p>reference {e(metric)} {score(run.reference_metric)}; {best_text}</p>"
    )


def _progress(view: RunView) -> str:
    run = view.run
    ref = view.reference.value if view.reference else None
    chart = svg.curve(view.curve, ref, view.metric, lambda pid: program_href(run.id, pid))
    failures = sum(1 for p in view.curve if p.program.status != "valid")
    return (
        f"<section><h2>Best {e(view.metric)} against children</h2>{chart}"
        f'<p class="legend">{len(view.curve)} finished children: dots are valid children, the '
        f"line the best so far, red ticks the {failures} failed, invalid or rejected ones, the "
        "dashed line the reference.</p></section>"
    )


def _row_cells(run_id: str, p: ProgramRow) -> list[str]:
    return [
        link(program_href(run_id, p.id), p.id),
        e(p.parent_id if p.parent_id is not None else "-"),
        e(p.island),
        e(p.generation),
        e(p.mode),
        e(p.status),
        score(p.value),
    ]


def _lineage(view: RunView) -> str:
    chain = view.lineage()
    if not chain:
        return ""
    rows = [[*_row_cells(view.run.id, p), e(_short(p.idea))] for p in chain]
    headers = ["program", "parent", "island", "gen", "mode", "status", view.metric, "idea"]
    return (
        f"<section><h2>Lineage of the best program</h2>{table(headers, rows, 'lineage')}</section>"
    )


def _short(text: str, limit: int = 120) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _islands(view: RunView) -> str:
    if not view.islands:
        return ""
    rows = []
    for island in view.islands:
        members = [view.programs[i] for i in island.archive if i in view.programs]
        best = max(members, key=lambda p: p.score or float("-inf"), default=None)
        rows.append(
            [
                e(island.index),
                e(len(island.archive)),
                e(len(island.cells)),
                link(program_href(view.run.id, best.id), best.id) if best else "-",
                score(best.value) if best else "-",
            ]
        )
    moves = view.migrations
    accepted = sum(m.accepted for m in moves)
    out = [
        "<section><h2>Islands and migrations</h2>",
        table(["island", "archive", "grid cells", "best", view.metric], rows, "islands"),
        f"<p>{len(moves)} migrations, {accepted} accepted.</p>",
    ]
    if moves:
        shown = [
            [
                e(m.generation),
                link(program_href(view.run.id, m.program), m.program),
                f"{e(m.source)} → {e(m.target)}",
                "accepted" if m.accepted else "refused",
            ]
            for m in moves[-TOP:]
        ]
        out.append(table(["generation", "program", "islands", "outcome"], shown, "migrations"))
    return "".join(out) + "</section>"


def _grid(view: RunView) -> str:
    grid = view.grid
    if grid is None:
        return ""
    chart = svg.heatmap(grid, view.metric, lambda pid: program_href(view.run.id, pid))
    return (
        f"<section><h2>MAP-Elites grid</h2>{chart}<p class=legend>{grid.filled} cells filled "
        "over all islands; each holds its best program (darker is a better score).</p></section>"
    )


def _frontier(view: RunView) -> str:
    front = view.frontier
    if front is None:
        return ""
    chart = svg.frontier(front, lambda pid: program_href(view.run.id, pid))
    return (
        f"<section><h2>Efficiency frontier: {e(front.y)} against {e(front.x)}</h2>{chart}"
        f"<p class=legend>{len(front.points)} valid programs; the line joins the "
        f"{len(front.front)} that no other beats on both.</p></section>"
    )


def _telemetry(view: RunView) -> str:
    best = view.best
    if best is None or not view.telemetry:
        return ""
    where = link(program_href(view.run.id, best.id), f"program {best.id}")
    return f"<section><h2>Telemetry of the best program</h2><p>{where}</p>{pre(view.telemetry)}</section>"


def _ideas(view: RunView) -> str:
    ideas = view.ideas()
    if not ideas:
        return ""
    rows = [
        [
            link(program_href(view.run.id, i.program.id), i.program.id),
            e(i.program.island),
            e(i.program.status),
            score(i.effect, signed=True),
            e(" ".join(i.program.idea.split())),
        ]
        for i in ideas[:TOP]
    ]
    return (
        f"<section><h2>Ideas and their outcomes</h2><p>{len(ideas)} ideas; the {len(rows)} with "
        "the largest effect on the score over their parent:</p>"
        + table(["program", "island", "status", "effect", "idea"], rows, "ideas")
        + "</section>"
    )


def _programs(view: RunView) -> str:
    children = [p for p in view.programs.values() if not p.is_reference]
    valid = sorted(
        (p for p in children if p.status == "valid"), key=lambda p: -(p.score or float("-inf"))
    )
    failed = [p for p in children if p.status not in ("valid", "pending")][-TOP:][::-1]
    headers = ["program", "parent", "island", "gen", "mode", "status", view.metric]
    out = ["<section><h2>Programs</h2>"]
    if view.reference is not None:
        out.append(
            f"<p>reference: {link(program_href(view.run.id, view.reference.id), view.reference.id)}</p>"
        )
    out.append(f"<h3>Top {min(TOP, len(valid))} valid</h3>")
    out.append(table(headers, (_row_cells(view.run.id, p) for p in valid[:TOP]), "top"))
    if failed:
        rows = [[*_row_cells(view.run.id, p), e(p.error)] for p in failed]
        out.append(f"<h3>Latest {len(failed)} failed, invalid or rejected</h3>")
        out.append(table([*headers, "reason"], rows, "failures"))
    return "".join(out) + "</section>"
