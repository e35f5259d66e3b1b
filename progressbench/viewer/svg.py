"""Inline SVG charts for the web pages: the progress curve, the efficiency frontier and the
MAP-Elites heatmap. Plain markup with presentation attributes only (the pages' content
security policy allows no inline style or script); every label is escaped."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from html import escape
from typing import TypeGuard

from progressbench.contracts.environment import format_score
from progressbench.viewer.data import CurvePoint, FrontierView, GridView, ProgramRow

WIDTH, HEIGHT = 720, 300
LEFT, RIGHT, TOP, BOTTOM = 64, 16, 14, 42
Link = Callable[[int], str]
# Up to this many children the curve has a linked, titled element per child.
DETAIL_LIMIT = 2000


def _e(value: object) -> str:
    return escape(str(value), quote=True)


def ticks(lo: float, hi: float, n: int = 5) -> list[float]:
    """About ``n`` round values spanning [lo, hi]."""
    if not (math.isfinite(lo) and math.isfinite(hi)) or hi <= lo:
        return [lo]
    raw = (hi - lo) / max(n - 1, 1)
    step = 10 ** math.floor(math.log10(raw))
    step *= next(m for m in (1, 2, 2.5, 5, 10) if raw <= m * step)
    first = math.ceil(lo / step) * step
    return [first + i * step for i in range(int((hi - first) / step + 1e-9) + 1)]


class Frame:
    """Data coordinates to pixels inside the plot area, with axes and tick labels."""

    def __init__(self, xs: Sequence[float], ys: Sequence[float]):
        self.x0, self.x1 = _span(xs)
        self.y0, self.y1 = _span(ys)

    def x(self, value: float) -> float:
        return LEFT + (value - self.x0) / (self.x1 - self.x0) * (WIDTH - LEFT - RIGHT)

    def y(self, value: float) -> float:
        return HEIGHT - BOTTOM - (value - self.y0) / (self.y1 - self.y0) * (HEIGHT - TOP - BOTTOM)

    def axes(self, x_label: str, y_label: str) -> list[str]:
        bottom, right = HEIGHT - BOTTOM, WIDTH - RIGHT
        out = [
            f'<line class="axis" x1="{LEFT}" y1="{bottom}" x2="{right}" y2="{bottom}"/>',
            f'<line class="axis" x1="{LEFT}" y1="{TOP}" x2="{LEFT}" y2="{bottom}"/>',
        ]
        for t in ticks(self.x0, self.x1):
            out.append(
                f'<text class="tick" x="{self.x(t):.1f}" y="{bottom + 16}" '
                f'text-anchor="middle">{_e(format_score(t))}</text>'
            )
        for t in ticks(self.y0, self.y1):
            out.append(
                f'<text class="tick" x="{LEFT - 6}" y="{self.y(t) + 4:.1f}" '
                f'text-anchor="end">{_e(format_score(t))}</text>'
            )
        out.append(
            f'<text class="label" x="{(LEFT + right) / 2}" y="{HEIGHT - 6}" '
            f'text-anchor="middle">{_e(x_label)}</text>'
        )
        out.append(
            f'<text class="label" x="12" y="{(TOP + bottom) / 2}" text-anchor="middle" '
            f'transform="rotate(-90 12 {(TOP + bottom) / 2})">{_e(y_label)}</text>'
        )
        return out


def _span(values: Sequence[float]) -> tuple[float, float]:
    finite = [v for v in values if math.isfinite(v)]
    if not finite:
        return 0.0, 1.0
    lo, hi = min(finite), max(finite)
    if hi == lo:
        pad = abs(lo) * 0.05 or 1.0
        return lo - pad, hi + pad
    pad = (hi - lo) * 0.04
    return lo - pad, hi + pad


def _open(svg_id: str, label: str, **data: object) -> str:
    attrs = "".join(f' data-{k}="{_e(v)}"' for k, v in data.items())
    return (
        f'<svg id="{svg_id}" class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
        f'aria-label="{_e(label)}" xmlns="http://www.w3.org/2000/svg"{attrs}>'
    )


def _finite(value: float | None) -> TypeGuard[float]:
    return value is not None and math.isfinite(value)


def curve(points: list[CurvePoint], reference: float | None, metric: str, link: Link) -> str:
    """Each valid child's value (dots), the best so far (the line), and each child that
    failed, was invalid or was rejected (a red tick on the x axis)."""
    valid = [p for p in points if p.program.status == "valid" and _finite(p.program.value)]
    ys = [p.program.value for p in valid if p.program.value is not None]
    ys += [p.best for p in points if p.best is not None and _finite(p.best)]
    if reference is not None and _finite(reference):
        ys.append(reference)
    frame = Frame([0, max(len(points), 1)], ys)
    out = [_open("curve", f"best {metric} against children", points=len(points))]
    out += frame.axes("children (in the order they were proposed)", metric)
    if reference is not None and _finite(reference):
        y = frame.y(reference)
        out.append(
            f'<line class="reference" x1="{LEFT}" y1="{y:.1f}" x2="{WIDTH - RIGHT}" y2="{y:.1f}">'
            f"<title>reference {_e(format_score(reference))}</title></line>"
        )
    line = " ".join(
        f"{frame.x(p.index):.1f},{frame.y(p.best):.1f}" for p in points if _finite(p.best)
    )
    out.append(f'<polyline class="best" points="{line}"/>')
    if len(points) > DETAIL_LIMIT:
        out += _aggregate(frame, valid, [p for p in points if p.program.status != "valid"])
    else:
        out += _detailed(frame, valid, points, metric, link)
    out.append("</svg>")
    return "".join(out)


def _detailed(
    frame: Frame, valid: list[CurvePoint], points: list[CurvePoint], metric: str, link: Link
) -> list[str]:
    """A linked, titled element per child."""
    out = []
    for p in valid:
        value = p.program.value or 0.0
        out.append(
            f'<a href="{_e(link(p.program.id))}"><circle class="child" '
            f'cx="{frame.x(p.index):.1f}" cy="{frame.y(value):.1f}" r="2.5">'
            f"<title>child {p.index}: program {p.program.id}, {_e(metric)} "
            f"{_e(format_score(value))}</title></circle></a>"
        )
    bottom = HEIGHT - BOTTOM
    for p in points:
        if p.program.status != "valid":
            x = f"{frame.x(p.index):.1f}"
            out.append(
                f'<a href="{_e(link(p.program.id))}"><line class="failure {_e(p.program.status)}" '
                f'x1="{x}" y1="{bottom - 8}" x2="{x}" y2="{bottom}"><title>child {p.index}: '
                f"program {p.program.id} {_e(p.program.status)}: {_e(p.program.error)}</title>"
                "</line></a>"
            )
    return out


def _aggregate(frame: Frame, valid: list[CurvePoint], failed: list[CurvePoint]) -> list[str]:
    """Past DETAIL_LIMIT children: all dots as one path and all failure ticks as another, so
    a 10,000-child page stays small (the program tables below still link to each)."""
    dots = "".join(
        f"M{frame.x(p.index):.1f} {frame.y(p.program.value or 0.0):.1f}h0" for p in valid
    )
    bottom = HEIGHT - BOTTOM
    ticks = "".join(f"M{frame.x(p.index):.1f} {bottom - 8}v8" for p in failed)
    return [
        f'<path class="children" data-count="{len(valid)}" d="{dots}"/>',
        f'<path class="failures" data-count="{len(failed)}" d="{ticks}"/>',
    ]


def frontier(view: FrontierView, link: Link) -> str:
    """Every valid program on the frontier's two axes (both minimised), the front as a line."""
    frame = Frame([p[0] for p in view.points], [p[1] for p in view.points])
    out = [_open("frontier", f"{view.y} against {view.x}", points=len(view.points))]
    out += frame.axes(view.x, view.y)
    line = " ".join(f"{frame.x(a):.1f},{frame.y(b):.1f}" for a, b, _ in view.front)
    out.append(f'<polyline class="front" points="{line}"/>')
    on_front = {pid for _, _, pid in view.front}
    detailed = len(view.points) <= DETAIL_LIMIT
    if not detailed:  # as for the curve: the many points as one path, the front linked
        dots = "".join(
            f"M{frame.x(a):.1f} {frame.y(b):.1f}h0"
            for a, b, pid in view.points
            if pid not in on_front
        )
        out.append(f'<path class="points" d="{dots}"/>')
    for a, b, pid in view.points:
        if not detailed and pid not in on_front:
            continue
        kind = "point on-front" if pid in on_front else "point"
        out.append(
            f'<a href="{_e(link(pid))}"><circle class="{kind}" cx="{frame.x(a):.1f}" '
            f'cy="{frame.y(b):.1f}" r="3"><title>program {pid}: {_e(view.x)} '
            f"{_e(format_score(a))}, {_e(view.y)} {_e(format_score(b))}</title></circle></a>"
        )
    out.append("</svg>")
    return "".join(out)


# Two ends of the heatmap's colour ramp (worst -> best score among the filled cells).
LOW, HIGH = (222, 235, 247), (8, 48, 107)
CELL_MAX, GRID_WIDTH = 34, 520


def shade(score: float | None, lo: float, hi: float) -> str:
    t = 0.5 if score is None or hi <= lo else (score - lo) / (hi - lo)
    r, g, b = (round(a + (z - a) * t) for a, z in zip(LOW, HIGH, strict=True))
    return f"#{r:02x}{g:02x}{b:02x}"


def heatmap(grid: GridView, metric: str, link: Link) -> str:
    """One square per cell of the grid; a filled cell is coloured by its best program's
    score (darker is better) and links to it."""
    (ax, nx), (ay, ny) = ((a.name, a.bins) for a in grid.axes)
    size = max(6, min(CELL_MAX, GRID_WIDTH // max(nx, 1)))
    width, height = LEFT + nx * size + RIGHT, TOP + ny * size + BOTTOM
    scores = [p.score for p in grid.cells.values() if p.score is not None]
    lo, hi = (min(scores), max(scores)) if scores else (0.0, 1.0)
    out = [
        f'<svg id="grid" class="heatmap" viewBox="0 0 {width} {height}" width="{width}" '
        f'height="{height}" role="img" aria-label="MAP-Elites grid" '
        f'xmlns="http://www.w3.org/2000/svg" data-filled="{grid.filled}">'
    ]
    for i in range(nx):
        for j in range(ny):
            x, y = LEFT + i * size, TOP + (ny - 1 - j) * size
            rect = f'x="{x}" y="{y}" width="{size - 1}" height="{size - 1}"'
            held: ProgramRow | None = grid.cells.get((i, j))
            if held is None:
                out.append(f'<rect class="cell" {rect}><title>({i}, {j}) empty</title></rect>')
                continue
            out.append(
                f'<a href="{_e(link(held.id))}"><rect class="cell filled" data-program='
                f'"{held.id}" {rect} fill="{shade(held.score, lo, hi)}"><title>({i}, {j}): '
                f"program {held.id}, {_e(metric)} {_e(format_score(held.value))}</title>"
                "</rect></a>"
            )
    bottom = TOP + ny * size
    out.append(
        f'<text class="label" x="{LEFT + nx * size / 2}" y="{bottom + 28}" '
        f'text-anchor="middle">{_e(ax)} ({nx} bins)</text>'
        f'<text class="label" x="12" y="{TOP + ny * size / 2}" text-anchor="middle" '
        f'transform="rotate(-90 12 {TOP + ny * size / 2})">{_e(ay)} ({ny} bins)</text></svg>'
    )
    return "".join(out)
