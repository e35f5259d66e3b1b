"""SEARCH/REPLACE edits confined to EVOLVE blocks.

A program marks the code agents may change with comment lines::

    # EVOLVE-BLOCK-START
    ...evolvable code...
    # EVOLVE-BLOCK-END

Everything else, the marker lines included, is protected. An agent's reply holds edit blocks
in the aider / OpenEvolve format, with any prose or ``` fences around them::

    <<<<<<< SEARCH
    exact lines of the current program
    =======
    the lines that replace them
    >>>>>>> REPLACE

Matching rules, kept strict on purpose so an edit never lands somewhere the agent did not mean:

* SEARCH text matches whole lines. Each line must equal the program's line except for trailing
  whitespace (spaces, tabs, ``\\r``), which LLMs often drop or add; indentation and everything
  else must be exact.
* A SEARCH must match exactly once inside the EVOLVE blocks, and the match must lie entirely
  inside one block. Copies of the same text in protected code do not make it ambiguous,
  because protected code can never be the target.
* Blocks apply in order, each on the result of the previous ones, and all or nothing: one bad
  block raises ``EditError`` and nothing is applied.

A reply without edit blocks may instead hold the whole program in one fenced code block (it
must contain the EVOLVE markers); it is accepted only if every protected line is unchanged.
Every ``EditError`` message is written for the agent: it names the block and reply line and
says how to fix the edit.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass
from typing import Literal

from progressbench.errors import EditError
from progressbench.run.blocks import Block, apply_block, parse_blocks
from progressbench.run.regions import (
    END_MARKER,
    START_MARKER,
    evolve_regions,
    first_protected_change,
    has_marker,
    protected_changes,
    split_lines,
)

__all__ = [
    "END_MARKER",
    "START_MARKER",
    "Applied",
    "Block",
    "apply_reply",
    "evolve_regions",
    "parse_blocks",
    "protected_changes",
    "restated_idea",
    "unified_diff",
]

_FENCE_OPEN_RE = re.compile(r"^\s*(`{3,}|~{3,})\s*[\w+#.-]*\s*$")


@dataclass(frozen=True)
class Applied:
    """The outcome of ``apply_reply``.

    ``code`` is the new program; ``kind`` is ``"diff"`` for SEARCH/REPLACE edits and
    ``"rewrite"`` for a whole program; ``blocks`` counts the edit blocks (0 for a rewrite);
    ``edit`` is the text to store: the blocks as applied, or a unified diff for a rewrite.
    """

    code: str
    kind: Literal["diff", "rewrite"]
    blocks: int
    edit: str


def _fenced_blocks(text: str) -> list[str]:
    """The contents of the closed ``` (or ~~~) fenced blocks of ``text``, in order."""
    found: list[str] = []
    fence: str | None = None
    body: list[str] = []
    for line in split_lines(text.replace("\r\n", "\n")):
        if fence is None:
            opened = _FENCE_OPEN_RE.match(line.rstrip("\n"))
            if opened:
                fence, body = opened.group(1), []
        elif set(line.strip()) == {fence[0]} and len(line.strip()) >= len(fence):
            found.append("".join(body))
            fence = None
        else:
            body.append(line)
    return found


def restated_idea(reply: str) -> str:
    """The idea a fix reply says it implements instead of the one it was given: its first
    non-blank line, when that starts with ``Idea:`` (the fix prompt asks for this when an
    agent abandons the idea), else ""."""
    for line in reply.splitlines():
        if line.strip():
            return line.strip() if line.strip().lower().startswith("idea:") else ""
    return ""


def unified_diff(old: str, new: str, name: str = "program.py") -> str:
    """A unified diff from ``old`` to ``new`` with ``a/``/``b/`` file names, as git writes it."""
    out = []
    for line in difflib.unified_diff(
        split_lines(old), split_lines(new), fromfile=f"a/{name}", tofile=f"b/{name}"
    ):
        out.append(line if line.endswith("\n") else line + "\n\\ No newline at end of file\n")
    return "".join(out)


def _apply_rewrite(code: str, text: str) -> Applied:
    candidates = [body for body in _fenced_blocks(text) if has_marker(body)]
    if not candidates:
        raise EditError(
            "the reply holds no SEARCH/REPLACE blocks and no full program (a ``` fenced code "
            "block containing the EVOLVE-BLOCK markers); reply with SEARCH/REPLACE blocks"
        )
    # A model that shows several versions usually puts the final one last.
    program = candidates[-1]
    change = first_protected_change(code, program, loose=True)
    if change is not None:
        raise EditError(
            f"the rewritten program changes protected code: {change}; outside the EVOLVE "
            f"blocks every line must stay as it is"
        )
    # Splice only the evolvable text into the original, so protected bytes stay identical
    # even where the rewrite dropped trailing whitespace.
    pieces, last = [], 0
    for (start, end), (new_start, new_end) in zip(
        evolve_regions(code), evolve_regions(program), strict=True
    ):
        body = program[new_start:new_end]
        pieces += [code[last:start], body]
        last = end
    pieces.append(code[last:])
    new_code = "".join(pieces)
    if new_code == code:
        raise EditError("the rewritten program is identical to the current one: no change")
    return Applied(code=new_code, kind="rewrite", blocks=0, edit=unified_diff(code, new_code))


def apply_reply(code: str, reply_text: str) -> Applied:
    """Apply an agent's reply to ``code`` (see the module docstring for the rules).

    SEARCH/REPLACE blocks win when present; otherwise the reply must hold a whole program in
    a fenced block. Raises ``EditError`` with a message meant for the agent when the reply
    cannot be applied; in that case nothing is applied.
    """
    evolve_regions(code)  # a program without evolvable code cannot be edited at all
    blocks = parse_blocks(reply_text)
    if not blocks:
        return _apply_rewrite(code, reply_text)
    new_code = code
    for block in blocks:
        new_code = apply_block(new_code, block, code)
    if new_code == code:
        raise EditError(
            f"the edit produces no change: the REPLACE text of every block equals its SEARCH "
            f"text ({len(blocks)} block{'s' if len(blocks) != 1 else ''})"
        )
    # Blocks only touch evolvable lines and may not add markers, so this holds by
    # construction; checking it anyway keeps the guarantee independent of that reasoning.
    change = protected_changes(code, new_code)
    if change is not None:
        raise EditError(f"the edit changes protected code: {change}")
    return Applied(
        code=new_code,
        kind="diff",
        blocks=len(blocks),
        edit="\n".join(block.render() for block in blocks),
    )
