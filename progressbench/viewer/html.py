"""The pieces every page is made of: the document, links, tables. Everything from the store
is hostile text (program code, errors, ideas, even run ids): it passes through ``e``."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from html import escape
from urllib.parse import quote

from progressbench.contracts.environment import format_score

STATIC = "/static"


def e(value: object) -> str:
    return escape(str(value), quote=True)


def run_href(run_id: str) -> str:
    return f"/run/{quote(run_id, safe='')}"


def program_href(run_id: str, program_id: int) -> str:
    return f"{run_href(run_id)}/program/{int(program_id)}"


def link(href: str, text: object) -> str:
    return f'<a href="{e(href)}">{e(text)}</a>'


def score(value: float | None, signed: bool = False) -> str:
    return e(format_score(value, signed=signed))


def table(headers: Sequence[str], rows: Iterable[Sequence[str]], css: str = "") -> str:
    """A table whose cells are HTML already (escape them with ``e``, ``link``, ``score``)."""
    head = "".join(f"<th>{e(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in rows)
    return f'<table class="{e(css)}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def document(title: str, body: str) -> str:
    """A whole page: the viewer's stylesheet and script come from /static, never a CDN."""
    return (
        "<!doctype html><html lang=en><head><meta charset=utf-8>"
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{e(title)} - progressbench</title>"
        f'<link rel="stylesheet" href="{STATIC}/viewer.css">'
        f'<script src="{STATIC}/viewer.js" defer></script></head><body>'
        '<header><a class="home" href="/">progressbench</a> <span>read-only viewer</span>'
        f"</header>{body}</body></html>"
    )


def pre(text: str, css: str = "") -> str:
    return f'<pre class="{e(css)}">{e(text)}</pre>'


def diff(text: str) -> str:
    """A unified diff, one element per line, classed by its kind."""
    out = []
    for line in text.splitlines():
        if line.startswith(("+++", "---")):
            kind = "file"
        elif line.startswith("@@"):
            kind = "hunk"
        elif line.startswith("+"):
            kind = "add"
        elif line.startswith("-"):
            kind = "del"
        else:
            kind = "ctx"
        out.append(f'<span class="{kind}">{e(line)}</span>')
    # Block-level spans: each is a line already (a newline between them would double it).
    return '<pre class="diff">' + "".join(out) + "</pre>"
