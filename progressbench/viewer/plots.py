"""``progressbench plot`` and ``compare --plot``: the viewer's charts as PNG or SVG files for
papers and notes, drawn with matplotlib from the same data as the web pages."""

from __future__ import annotations

import importlib.util
import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

from progressbench.errors import UserError
from progressbench.store import Store
from progressbench.viewer import data

if TYPE_CHECKING:
    from progressbench.analysis.compare import Comparison

KINDS = ("score", "frontier", "grid")
SUFFIXES = (".png", ".svg")


def check_target(path: str) -> str:
    """``path`` if a plot can be written there (PNG or SVG, an existing folder, matplotlib
    installed), else a one-line error; commands check it before any work."""
    target = Path(path)
    if target.suffix.lower() not in SUFFIXES:
        raise UserError(f"{path!r}: a plot is written as .png or .svg")
    if not target.parent.is_dir():
        raise UserError(f"{path!r}: folder {str(target.parent)!r} does not exist")
    if importlib.util.find_spec("matplotlib") is None:
        raise UserError(
            "plots need matplotlib: pip install 'progressbench[plot]' (or pip install matplotlib)"
        )
    return path


def _figure(path: str) -> Any:
    """A matplotlib Figure (no pyplot: no global state, no display) for ``path``."""
    check_target(path)
    from matplotlib.figure import Figure

    return Figure(figsize=(7, 4), layout="constrained")


def _save(figure: Any, path: str) -> str:
    try:
        figure.savefig(path, dpi=150)
    except OSError as exc:
        raise UserError(f"cannot write {path}: {exc.strerror or exc}") from None
    return f"wrote {path}"


def plot_run(store: Store, run_id: str, kind: str, path: str) -> str:
    """Draw run ``run_id``'s ``kind`` chart to ``path``; returns what was written."""
    if kind not in KINDS:
        raise UserError(f"--kind {kind!r}: choose one of {', '.join(KINDS)}")
    figure = _figure(path)
    view = data.load(store, run_id)
    ax = figure.subplots()
    if kind == "score":
        _score(ax, view)
    elif kind == "frontier":
        if view.frontier is None:
            raise UserError(f"environment {view.run.env!r} declares no efficiency frontier")
        _frontier(ax, view.frontier)
    else:
        if view.grid is None:
            raise UserError(
                f"run {view.run.id} has no MAP-Elites grid (its strategy keeps no islands)"
            )
        _grid(figure, ax, view.grid, view.metric)
    ax.set_title(f"{view.run.env} ({view.run.variant}), run {view.run.id}", fontsize=10)
    return _save(figure, path)


def _score(ax: Any, view: data.RunView) -> None:
    valid = [p for p in view.curve if p.program.status == "valid" and p.program.value is not None]
    ax.scatter(
        [p.index for p in valid],
        [p.program.value for p in valid],
        s=10,
        alpha=0.6,
        label="valid child",
    )
    best = [p for p in view.curve if p.best is not None]
    ax.step([p.index for p in best], [p.best for p in best], where="post", label="best so far")
    failed = [p.index for p in view.curve if p.program.status != "valid"]
    if failed:
        ax.plot(
            failed,
            [0] * len(failed),
            "|",
            color="tab:red",
            markersize=10,
            label="failed",
            transform=ax.get_xaxis_transform(),
        )
    if view.reference is not None and view.reference.value is not None:
        ax.axhline(view.reference.value, linestyle="--", color="gray", label="reference")
    ax.set_xlabel("children (in the order they were proposed)")
    ax.set_ylabel(view.metric)
    ax.legend(fontsize=8)


def _frontier(ax: Any, front: data.FrontierView) -> None:
    ax.scatter(
        [p[0] for p in front.points],
        [p[1] for p in front.points],
        s=12,
        alpha=0.6,
        label="valid program",
    )
    ax.step(
        [p[0] for p in front.front],
        [p[1] for p in front.front],
        where="post",
        color="tab:purple",
        marker="o",
        label="frontier",
    )
    ax.set_xlabel(front.x)
    ax.set_ylabel(front.y)
    ax.legend(fontsize=8)


def _grid(figure: Any, ax: Any, grid: data.GridView, metric: str) -> None:
    (ax_x, nx), (ax_y, ny) = ((a.name, a.bins) for a in grid.axes)
    cells = [[math.nan] * nx for _ in range(ny)]
    for (i, j), program in grid.cells.items():
        if program.value is not None and i < nx and j < ny:
            cells[j][i] = program.value
    image = ax.imshow(cells, origin="lower", cmap="viridis", aspect="auto")
    figure.colorbar(image, ax=ax, label=f"best {metric} in the cell")
    ax.set_xlabel(f"{ax_x} ({nx} bins)")
    ax.set_ylabel(f"{ax_y} ({ny} bins)")


def plot_comparison(result: Comparison, path: str) -> str:
    """``compare --plot``: each contender's best result per seed, its mean, the reference."""
    figure = _figure(path)
    ax = figure.subplots()
    for i, contender in enumerate(result.contenders):
        values = [b for b in contender.best if b is not None]
        ax.scatter([i] * len(values), values, alpha=0.7)
        if values:
            mean = sum(values) / len(values)
            ax.hlines(mean, i - 0.25, i + 0.25, color="black")
    if result.reference is not None:
        ax.axhline(result.reference, linestyle="--", color="gray", label="reference")
        ax.legend(fontsize=8)
    ax.set_xticks(
        range(len(result.contenders)), [c.label for c in result.contenders], rotation=15, fontsize=8
    )
    ax.set_ylabel(f"best {result.metric} per seed ({result.direction}d)")
    ax.set_title(f"{result.env} ({result.variant}), budget {result.budget}", fontsize=10)
    return _save(figure, path)
