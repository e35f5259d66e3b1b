"""What the viewer's pages and ``progressbench plot`` show of a run, read once per request.

The Store's ``programs()`` loads every program's code; a page over a 10,000-program run must
not, so the queries here select only the columns a page shows (ideas and errors cut short).
The web pages (``pages.py``) and the matplotlib plots (``plots.py``) draw the same objects.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import func, select
from sqlmodel import col

from progressbench.analysis.leaderboard import run_objective
from progressbench.analysis.report import pareto_front, run_environment, shown_status
from progressbench.contracts.environment import Objective
from progressbench.store import Evaluation, Program, Run, Store

# How much of an idea or an error the run page shows; the program page shows all of it.
IDEA_CHARS = 300
ERROR_CHARS = 200
# The statuses of a child that ran or was refused (pending ones have no outcome yet).
FINISHED = ("valid", "invalid", "failed", "rejected")

Cell = tuple[int, ...]


@dataclass(frozen=True)
class ProgramRow:
    id: int
    parent_id: int | None
    status: str
    score: float | None
    metric: float | None
    is_reference: bool
    island: int
    generation: int
    mode: str
    idea: str
    error: str

    @property
    def value(self) -> float | None:
        """What a plot shows: the objective's metric, or the score where it has none."""
        return self.metric if self.metric is not None else self.score


@dataclass(frozen=True)
class CurvePoint:
    """The ``index``-th finished child and the best value among the children up to it."""

    index: int
    program: ProgramRow
    best: float | None


@dataclass(frozen=True)
class Migration:
    generation: int
    program: int
    source: int
    target: int
    accepted: bool


@dataclass(frozen=True)
class IslandView:
    index: int
    archive: list[int]
    cells: dict[Cell, int]


@dataclass(frozen=True)
class Axis:
    name: str
    bins: int


@dataclass(frozen=True)
class GridView:
    """The MAP-Elites grid over all islands: each filled cell's best program. Grids of more
    than two axes are shown over their first two; ``filled`` counts cells over all axes."""

    axes: list[Axis]
    cells: dict[tuple[int, int], ProgramRow]
    filled: int


@dataclass(frozen=True)
class FrontierView:
    x: str
    y: str
    points: list[tuple[float, float, int]]
    front: list[tuple[float, float, int]]


@dataclass(frozen=True)
class Idea:
    program: ProgramRow
    effect: float | None


@dataclass
class RunView:
    run: Run
    objective: Objective | None
    programs: dict[int, ProgramRow]
    reference: ProgramRow | None
    curve: list[CurvePoint]
    islands: list[IslandView] = field(default_factory=list)
    migrations: list[Migration] = field(default_factory=list)
    grid: GridView | None = None
    frontier: FrontierView | None = None
    # The best program's telemetry as its environment words it ("" without the plugin).
    telemetry: str = ""

    @property
    def metric(self) -> str:
        return self.objective.metric if self.objective else "score"

    @property
    def best(self) -> ProgramRow | None:
        pid = self.run.best_program_id
        return self.programs.get(pid) if pid is not None else None

    def lineage(self) -> list[ProgramRow]:
        """The best program's ancestors through first parents, the oldest first."""
        chain: list[ProgramRow] = []
        seen: set[int] = set()
        node = self.best
        while node is not None and node.id not in seen:  # a corrupt link must not loop
            seen.add(node.id)
            chain.append(node)
            node = self.programs.get(node.parent_id) if node.parent_id is not None else None
        return chain[::-1]

    def ideas(self) -> list[Idea]:
        """Every child with an idea and its effect on the score over its parent, best first."""
        out = []
        for p in self.programs.values():
            if not p.idea:
                continue
            parent = self.programs.get(p.parent_id) if p.parent_id is not None else None
            effect = None
            if p.score is not None and parent is not None and parent.score is not None:
                effect = p.score - parent.score
            out.append(Idea(p, effect))
        return sorted(out, key=lambda i: (i.effect is None, -(i.effect or 0.0)))

    def version(self) -> str:
        return stamp(self.run)


def stamp(run: Run) -> str:
    """Changes whenever the run commits anything: the live page polls it."""
    return f"{run.updated_at.isoformat()}|{run.n_children}|{run.status}"


def shown_run(store: Store, run_id: str) -> Run:
    """Run ``run_id`` with the status reports show: one marked running whose process is
    gone is interrupted (and the live page stops following it)."""
    run = store.get_run(run_id)
    run.status = shown_status(run, store.abandoned_runs())  # never written back
    return run


def version(store: Store, run_id: str) -> dict[str, Any]:
    """The live page's poll: the run's version and whether it may still change."""
    run = shown_run(store, run_id)
    return {"version": stamp(run), "status": run.status, "children": run.n_children}


def load(store: Store, run_id: str) -> RunView:
    run = shown_run(store, run_id)
    rows = program_rows(store, run.id)
    programs = {p.id: p for p in rows}
    reference = next((p for p in rows if p.is_reference), None)
    view = RunView(run, run_objective(run), programs, reference, curve(rows, reference))
    view.islands, view.migrations = islands(run.strategy_state_json)
    env = run_environment(run)
    view.grid = grid(view.islands, programs, env.features(run.variant) if env else [])
    if env is not None and env.frontier:
        view.frontier = frontier(store, run.id, env.frontier)
    if env is not None and run.best_program_id is not None:
        view.telemetry = telemetry_text(store, env, run.best_program_id)
    return view


def telemetry_text(store: Store, env: Any, program_id: int) -> str:
    evaluation = store.evaluation(program_id)
    if evaluation is None or not evaluation.telemetry:
        return ""
    return str(env.format_telemetry(evaluation.telemetry))


def program_rows(store: Store, run_id: str) -> list[ProgramRow]:
    query = (
        select(
            col(Program.id),
            col(Program.parent_ids_json),
            col(Program.status),
            col(Program.score),
            col(Program.metric),
            col(Program.is_reference),
            col(Program.island),
            col(Program.generation),
            col(Program.mode),
            func.substr(col(Program.idea), 1, IDEA_CHARS),
            func.substr(col(Program.error), 1, ERROR_CHARS),
        )
        .where(col(Program.run_id) == run_id)
        .order_by(col(Program.id))
    )
    with store.engine.connect() as conn:
        result = conn.execute(query).all()
    out = []
    for pid, parents, status, score, metric, is_ref, island, gen, mode, idea, error in result:
        parent_ids = json.loads(parents or "[]")
        out.append(
            ProgramRow(
                pid,
                parent_ids[0] if parent_ids else None,
                status,
                score,
                metric,
                bool(is_ref),
                island,
                gen,
                mode,
                idea or "",
                error or "",
            )
        )
    return out


def curve(rows: list[ProgramRow], reference: ProgramRow | None) -> list[CurvePoint]:
    """The finished children in the order they were proposed, each with the best value so far
    (the reference's until a child beats it)."""
    best = reference if reference is not None and reference.score is not None else None
    out: list[CurvePoint] = []
    for p in rows:
        if p.is_reference or p.status not in FINISHED:
            continue
        if p.status == "valid" and p.score is not None:
            if best is None or best.score is None or p.score > best.score:
                best = p
        out.append(CurvePoint(len(out) + 1, p, best.value if best else None))
    return out


def islands(state_json: str) -> tuple[list[IslandView], list[Migration]]:
    """Islands and migrations from a strategy state that keeps them (``islands``: a list of
    ``{"archive": [ids], "grid": [[cell, id], ...]}``; ``migrations``: events); a strategy
    without islands has neither."""
    try:
        state = json.loads(state_json or "{}")
        found = [
            IslandView(
                i,
                [int(pid) for pid in island.get("archive", [])],
                {tuple(int(c) for c in cell): int(pid) for cell, pid in island.get("grid", [])},
            )
            for i, island in enumerate(state.get("islands") or [])
        ]
        moves = [
            Migration(
                int(m["generation"]),
                int(m["program"]),
                int(m["source"]),
                int(m["target"]),
                bool(m["accepted"]),
            )
            for m in state.get("migrations") or []
        ]
    except (ValueError, TypeError, KeyError, AttributeError):
        return [], []  # another strategy's state: nothing the viewer can draw
    return found, moves


def grid(
    found: list[IslandView], programs: dict[int, ProgramRow], features: list[Any]
) -> GridView | None:
    """The union of the islands' grids, each cell holding its best program."""
    cells = [(cell, pid) for island in found for cell, pid in island.cells.items()]
    if not cells:
        return None
    dims = max(len(cell) for cell, _ in cells)
    seen = {cell + (0,) * (2 - len(cell)) for cell, _ in cells}
    axes = []
    for d in range(min(max(dims, 1), 2)):
        used = max(cell[d] for cell in seen) + 1
        if d < len(features) and len(features) == dims:
            axes.append(Axis(features[d].name, max(features[d].bins, used)))
        else:
            axes.append(Axis(f"axis {d + 1}", used))
    if len(axes) == 1:
        axes.append(Axis("", 1))
    shown: dict[tuple[int, int], ProgramRow] = {}
    for cell, pid in cells:
        key = (cell[0], cell[1] if len(cell) > 1 else 0)
        program, held = programs.get(pid), shown.get(key)
        if program is not None and (held is None or _better(program, held)):
            shown[key] = program
    return GridView(axes, shown, len(seen))


def _better(a: ProgramRow, b: ProgramRow) -> bool:
    return a.score is not None and (b.score is None or a.score > b.score)


def frontier(store: Store, run_id: str, axes: tuple[str, str]) -> FrontierView:
    """Every valid program's (x, y) on the environment's frontier axes, and the Pareto front."""
    x, y = axes
    query = select(col(Evaluation.program_id), col(Evaluation.metrics_json)).where(
        col(Evaluation.run_id) == run_id,
        col(Evaluation.valid).is_(True),
        col(Evaluation.kind) == "full",
    )
    with store.engine.connect() as conn:
        result = conn.execute(query).all()
    points = []
    for pid, metrics_json in result:
        metrics = json.loads(metrics_json or "{}")
        if isinstance(metrics.get(x), int | float) and isinstance(metrics.get(y), int | float):
            points.append((float(metrics[x]), float(metrics[y]), int(pid)))
    return FrontierView(x, y, points, pareto_front(points))
