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

In a program of several files (``progressbench.contracts.program``) every block edits one
file: the one named on the line before it (aider's convention), or, without such a line, the
same file as the block before. A block naming no file of the program, or editing a file that
has no EVOLVE blocks, is refused; a whole-program rewrite is not accepted there.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass
from typing import Literal

from progressbench.contracts.program import is_multi_file, join_files, split_files
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
    "has_marker",
    "is_multi_file",
    "join_files",
    "parse_blocks",
    "protected_changes",
    "restated_idea",
    "split_files",
    "unified_diff",
]

_FENCE_OPEN_RE = re.compile(r"^\s*(`{3,}|~{3,})\s*[\w+#.-]*\s*$")
# What a word must look like to be taken for a file name that is not the program's.
_PATH_RE = re.compile(r"^[\w.-]+(/[\w.-]+)*\.\w+$")


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
    """A unified diff from ``old`` to ``new`` with ``a/``/``b/`` file names, as git writes it;
    of a multi-file program, one per changed file, under its path."""
    if is_multi_file(old) or is_multi_file(new):
        a, b = split_files(old), split_files(new)
        return "".join(unified_diff(a.get(p, ""), b.get(p, ""), p) for p in {**a, **b})
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
    if is_multi_file(code):
        return _apply_to_files(code, blocks)
    if not blocks:
        return _apply_rewrite(code, reply_text)
    new_code = code
    for block in blocks:
        new_code = apply_block(new_code, block, code)
    if new_code == code:
        raise _no_change(len(blocks))
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


def _no_change(n: int) -> EditError:
    return EditError(
        f"the edit produces no change: the REPLACE text of every block equals its SEARCH "
        f"text ({n} block{'s' if n != 1 else ''})"
    )


def _apply_to_files(code: str, blocks: list[Block]) -> Applied:
    """``apply_reply`` for a multi-file program: each block to its file, all or nothing."""
    files = split_files(code)
    editable = ", ".join(p for p, text in files.items() if has_marker(text))
    if not blocks:
        raise EditError(
            "the reply holds no SEARCH/REPLACE blocks; this program has several files: put "
            f"the path of the file a block edits ({editable}) on its own line before the block"
        )
    new, path, rendered = dict(files), "", []
    for block in blocks:
        path = _file_of(block, files, path, editable)
        if not has_marker(files[path]):
            raise EditError(
                f"{block.where} edits {path}, which has no EVOLVE blocks: all of it is "
                f"protected (files with EVOLVE blocks: {editable})"
            )
        try:
            new[path] = apply_block(new[path], block, files[path])
        except EditError as exc:
            raise EditError(f"{path}: {exc}") from None
        rendered.append(block.render(path))
    new_code = join_files(new)
    if new_code == code:
        raise _no_change(len(blocks))
    change = protected_changes(code, new_code)  # as for one file: by construction, checked
    if change is not None:
        raise EditError(f"the edit changes protected code: {change}")
    return Applied(code=new_code, kind="diff", blocks=len(blocks), edit="\n".join(rendered))


def _file_of(block: Block, files: dict[str, str], previous: str, editable: str) -> str:
    """The file ``block`` edits: the one its name line names, else the previous block's."""
    if block.name in files:
        return block.name
    if _PATH_RE.match(block.name):
        raise EditError(
            f"{block.where} names the file {block.name!r}, which is not a file of the program "
            f"(its files: {', '.join(files)})"
        )
    if previous:
        return previous
    raise EditError(
        f"{block.where} names no file: this program has several files, so put the path of "
        f"the file it edits ({editable}) on its own line before the block"
    )
