"""``progressbench serve`` and ``progressbench plot``: flags and output only. cli.py adds
them (with its ``--db`` option); this module imports only click, so ``--help`` stays fast."""

from __future__ import annotations

from typing import Any

import click


def plot_target(_ctx: click.Context, _param: Any, value: str | None) -> str | None:
    """``compare --plot``'s check, before any run starts: a writable .png or .svg."""
    from progressbench.viewer.plots import check_target

    return None if value is None else check_target(value)


@click.command()
@click.option(
    "--host",
    default="127.0.0.1",
    show_default=True,
    help="address to bind; anything but loopback requires the printed token",
)
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    default=8765,
    show_default=True,
    help="port (0: any free one)",
)
@click.option("--quiet", is_flag=True, help="do not log each request")
def serve(host: str, port: int, quiet: bool, db: str | None) -> None:
    """A read-only web viewer over the store: the leaderboard, each run's progress curve,
    islands, MAP-Elites grid, lineage, ideas, frontier, and every program's code and diff.
    A running run's page updates by itself. Ctrl-C stops it.

    \b
    Examples:
      progressbench serve                       # http://127.0.0.1:8765/
      progressbench serve --host 0.0.0.0        # prints the URL with its access token
    """
    from progressbench.viewer.server import run_server

    run_server(db, host, port, quiet, say=click.echo)


@click.command()
@click.argument("run_id")
@click.option(
    "--kind",
    type=click.Choice(["score", "frontier", "grid"]),
    default="score",
    show_default=True,
    help="best score vs children | efficiency frontier | MAP-Elites grid",
)
@click.option(
    "-o",
    "--output",
    required=True,
    type=click.Path(dir_okay=False),
    help="FILE.png or FILE.svg",
)
def plot(run_id: str, kind: str, output: str, db: str | None) -> None:
    """Draw a run's chart to a PNG or SVG file (matplotlib), for papers and notes."""
    from progressbench.store import Store
    from progressbench.viewer.plots import plot_run

    click.echo(plot_run(Store(db, create=False), run_id, kind, output))


def plot_comparison(result: Any, path: str) -> str:
    """``compare --plot``: the comparison's chart (matplotlib loads only here)."""
    from progressbench.viewer.plots import plot_comparison as draw

    return draw(result, path)
