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
import heapq
import re
from collections import Counter
from dataclasses import dataclass
from typing import Literal

from progressbench.errors import EditError

START_MARKER = "EVOLVE-BLOCK-START"
END_MARKER = "EVOLVE-BLOCK-END"

# aider accepts 5-9 marker characters; models trained on its prompts sometimes miscount.
_SEARCH_RE = re.compile(r"^<{5,9} ?SEARCH\s*$")
_DIVIDER_RE = re.compile(r"^={5,9}\s*$")
_REPLACE_RE = re.compile(r"^>{5,9} ?REPLACE\s*$")
_FENCE_OPEN_RE = re.compile(r"^\s*(`{3,}|~{3,})\s*[\w+#.-]*\s*$")
_COMMENT_PREFIXES = ("#", "//")
_HINT_CONTEXT_MAX = 12
_HINT_SHORTLIST = 20
_WORD_RE = re.compile(r"\w+|[^\w\s]")


@dataclass(frozen=True)
class Block:
    """One SEARCH/REPLACE block of a reply.

    ``search`` and ``replace`` are whole lines, each ending in a newline (empty when the
    section is empty); ``index`` counts blocks from 1; ``line`` is the 1-based reply line of
    the block's SEARCH marker.
    """

    search: str
    replace: str
    index: int
    line: int

    @property
    def where(self) -> str:
        return f"block {self.index} (reply line {self.line})"

    def render(self) -> str:
        return f"<<<<<<< SEARCH\n{self.search}=======\n{self.replace}>>>>>>> REPLACE\n"


@dataclass(frozen=True)
class Applied:
    """The outcome of ``apply_reply``.

    ``code`` is the new program; ``mode`` is ``"diff"`` for SEARCH/REPLACE edits and
    ``"rewrite"`` for a whole program; ``blocks`` counts the edit blocks (0 for a rewrite);
    ``edit`` is the text to store: the blocks as applied, or a unified diff for a rewrite.
    """

    code: str
    mode: Literal["diff", "rewrite"]
    blocks: int
    edit: str


def _lines(text: str) -> list[str]:
    """Split on newlines only, keeping them (``str.splitlines`` also splits on form feeds
    and other separators, which would shift line numbers)."""
    parts = text.split("\n")
    lines = [part + "\n" for part in parts[:-1]]
    if parts[-1]:
        lines.append(parts[-1])
    return lines


def _is_marker(line: str, marker: str) -> bool:
    stripped = line.strip()
    return stripped.startswith(_COMMENT_PREFIXES) and marker in stripped


def _has_marker(text: str) -> bool:
    return any(
        _is_marker(line, START_MARKER) or _is_marker(line, END_MARKER) for line in _lines(text)
    )


def evolve_regions(code: str) -> list[tuple[int, int]]:
    """Character spans ``(start, end)`` of the evolvable text of ``code``.

    A span runs from just after an ``EVOLVE-BLOCK-START`` comment line to the start of the
    matching ``EVOLVE-BLOCK-END`` line, so the marker lines themselves are protected. Raises
    ``EditError`` when markers are missing, unbalanced or nested.
    """
    regions: list[tuple[int, int]] = []
    open_at: tuple[int, int] | None = None  # (line number, offset after the START line)
    offset = 0
    for number, line in enumerate(_lines(code), 1):
        if _is_marker(line, START_MARKER):
            if open_at is not None:
                raise EditError(
                    f"nested {START_MARKER} on line {number}: the block opened on line "
                    f"{open_at[0]} is not closed"
                )
            open_at = (number, offset + len(line))
        elif _is_marker(line, END_MARKER):
            if open_at is None:
                raise EditError(f"{END_MARKER} on line {number} has no {START_MARKER} before it")
            regions.append((open_at[1], offset))
            open_at = None
        offset += len(line)
    if open_at is not None:
        raise EditError(f"{START_MARKER} on line {open_at[0]} is never closed by {END_MARKER}")
    if not regions:
        raise EditError(
            f"the program has no evolvable code: no '# {START_MARKER}' / '# {END_MARKER}' lines"
        )
    return regions


def parse_blocks(text: str) -> list[Block]:
    """The SEARCH/REPLACE blocks of a reply, in order; prose and fences around them are ignored.

    Raises ``EditError`` naming the block number and reply line for a block that lacks its
    ``=======`` divider or ``>>>>>>> REPLACE`` end, and for a divider or end marker outside
    any block.
    """
    blocks: list[Block] = []
    state = "prose"
    search: list[str] = []
    replace: list[str] = []
    start = 0
    for number, line in enumerate(text.replace("\r\n", "\n").split("\n"), 1):
        where = f"block {len(blocks) + 1} (reply line {start})"
        if _SEARCH_RE.match(line):
            if state != "prose":
                missing = "=======" if state == "search" else ">>>>>>> REPLACE"
                raise EditError(
                    f"{where}: a new <<<<<<< SEARCH on reply line {number} before this block's "
                    f"{missing}"
                )
            state, search, replace, start = "search", [], [], number
        elif _DIVIDER_RE.match(line):
            if state == "prose":
                raise EditError(
                    f"stray ======= on reply line {number} outside any SEARCH/REPLACE block "
                    f"(block {len(blocks) + 1} must start with <<<<<<< SEARCH)"
                )
            if state == "replace":
                raise EditError(
                    f"{where}: a second ======= on reply line {number}; end the block with "
                    f">>>>>>> REPLACE"
                )
            state = "replace"
        elif _REPLACE_RE.match(line):
            if state == "prose":
                raise EditError(
                    f"stray >>>>>>> REPLACE on reply line {number} outside any SEARCH/REPLACE block"
                )
            if state == "search":
                raise EditError(f"{where}: >>>>>>> REPLACE on reply line {number} before =======")
            blocks.append(
                Block(
                    search="".join(f"{s}\n" for s in search),
                    replace="".join(f"{r}\n" for r in replace),
                    index=len(blocks) + 1,
                    line=start,
                )
            )
            state = "prose"
        elif state == "search":
            search.append(line)
        elif state == "replace":
            replace.append(line)
    if state != "prose":
        missing = "=======" if state == "search" else ">>>>>>> REPLACE"
        raise EditError(
            f"block {len(blocks) + 1} (reply line {start}): the reply ends before its {missing}"
        )
    return blocks


def _key(line: str) -> str:
    # The one tolerance: trailing whitespace, including a stray carriage return.
    return line.rstrip()


def _match_starts(lines: list[str], wanted: list[str]) -> list[int]:
    """Indices of ``lines`` where the line sequence ``wanted`` occurs, by ``_key``."""
    keys = [_key(line) for line in lines]
    want = [_key(line) for line in wanted]
    n = len(want)
    return [i for i in range(len(keys) - n + 1) if keys[i : i + n] == want]


def _offsets(lines: list[str]) -> list[int]:
    """Start offset of each line, plus the total length at the end."""
    out = [0]
    for line in lines:
        out.append(out[-1] + len(line))
    return out


def _inside(span: tuple[int, int], regions: list[tuple[int, int]]) -> bool:
    return any(start <= span[0] and span[1] <= end for start, end in regions)


def _region_line_ranges(lines: list[str], regions: list[tuple[int, int]]) -> list[range]:
    """Each region as a range of line indices."""
    offsets = _offsets(lines)
    index = {offset: i for i, offset in enumerate(offsets)}
    return [range(index[start], index[end]) for start, end in regions]


def _words(line: str) -> list[str]:
    return _WORD_RE.findall(line)


def _similar_lines_hint(lines: list[str], regions: list[tuple[int, int]], wanted: list[str]) -> str:
    """The window of evolvable lines most like ``wanted``, numbered as in the program.

    Scoring every window with difflib costs seconds on a long program, so a cheap shared-token
    count shortlists windows first and difflib picks among the shortlist.
    """
    target_words = Counter(word for line in wanted for word in _words(line))
    size = min(len(wanted), _HINT_CONTEXT_MAX)
    shortlist: list[tuple[int, int, int]] = []  # (shared tokens, -first line, width)
    for span in _region_line_ranges(lines, regions):
        width = min(size, len(span))
        if not width:
            continue
        bags = [Counter(_words(lines[i])) for i in span]
        window = sum(bags[:width], Counter())
        for offset in range(len(span) - width + 1):
            if offset:
                window += bags[offset + width - 1]
                window -= bags[offset - 1]
            shared = sum((window & target_words).values())
            shortlist.append((shared, -(span.start + offset), width))
    if not shortlist:
        return ""
    target = "".join(_key(w) + "\n" for w in wanted)

    def similarity(entry: tuple[int, int, int]) -> float:
        lo = -entry[1]
        text = "".join(_key(line) + "\n" for line in lines[lo : lo + entry[2]])
        return difflib.SequenceMatcher(None, text, target, autojunk=False).ratio()

    _, neg_lo, width = max(heapq.nlargest(_HINT_SHORTLIST, shortlist), key=similarity)
    lo, hi = -neg_lo, -neg_lo + width
    shown = "".join(f"    {n + 1:>4}| {lines[n].rstrip()}\n" for n in range(lo, hi))
    return f"The most similar evolvable lines ({lo + 1}-{hi}) are:\n{shown}"


def _apply_block(code: str, block: Block, original: str) -> str:
    """``code`` with ``block`` applied, or ``EditError`` saying why it cannot be."""
    if not block.search.strip():
        raise EditError(
            f"{block.where}: the SEARCH section is empty; copy the exact lines to replace "
            f"from the program into it"
        )
    if _has_marker(block.replace):
        raise EditError(
            f"{block.where}: the REPLACE section contains an {START_MARKER}/{END_MARKER} "
            f"marker; markers are protected and cannot be added or removed"
        )
    lines = _lines(code)
    regions = evolve_regions(code)
    offsets = _offsets(lines)
    wanted = _lines(block.search)
    starts = _match_starts(lines, wanted)
    inside = [i for i in starts if _inside((offsets[i], offsets[i + len(wanted)]), regions)]
    if len(inside) == 1:
        i = inside[0]
        return code[: offsets[i]] + block.replace + code[offsets[i + len(wanted)] :]
    if len(inside) > 1:
        at = ", ".join(str(i + 1) for i in inside)
        raise EditError(
            f"{block.where}: the SEARCH text is ambiguous: it matches {len(inside)} times "
            f"(at lines {at}); add surrounding lines so it matches exactly once"
        )
    if starts:
        at = ", ".join(str(i + 1) for i in starts)
        plural = "s" if len(starts) > 1 else ""
        raise EditError(
            f"{block.where}: the SEARCH text matches only protected code (line{plural} {at}, "
            f"outside the {START_MARKER}/{END_MARKER} regions); only code between those "
            f"markers may change"
        )
    if block.index > 1 and _match_starts(_lines(original), wanted):
        raise EditError(
            f"{block.where}: the SEARCH text is in the original program but an earlier block "
            f"of this reply already changed it; blocks apply in order, so search for the "
            f"lines as they read after the earlier blocks, or merge the blocks"
        )
    message = f"{block.where}: the SEARCH text was not found in the evolvable code."
    loose = [
        i
        for i in range(len(lines) - len(wanted) + 1)
        if [line.strip() for line in lines[i : i + len(wanted)]] == [w.strip() for w in wanted]
        and _inside((offsets[i], offsets[i + len(wanted)]), regions)
    ]
    if loose:
        message += (
            f" It matches line {loose[0] + 1} only if indentation is ignored; "
            f"copy the indentation exactly."
        )
    else:
        hint = _similar_lines_hint(lines, regions, wanted)
        if hint:
            message += " " + hint
    raise EditError(
        message.rstrip("\n")
        + "\nSEARCH must copy whole lines exactly (only trailing whitespace may differ)."
    )


def _fenced_blocks(text: str) -> list[str]:
    """The contents of the closed ``` (or ~~~) fenced blocks of ``text``, in order."""
    found: list[str] = []
    fence: str | None = None
    body: list[str] = []
    for line in _lines(text.replace("\r\n", "\n")):
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


def _protected_segments(code: str, regions: list[tuple[int, int]]) -> list[tuple[int, str]]:
    """Protected text between regions as ``(first line number, text)`` pairs."""
    bounds = [0] + [x for region in regions for x in region] + [len(code)]
    return [
        (code.count("\n", 0, bounds[k]) + 1, code[bounds[k] : bounds[k + 1]])
        for k in range(0, len(bounds), 2)
    ]


def _first_protected_change(old: str, new: str, loose: bool) -> str | None:
    """Describe the first protected difference between ``old`` and ``new`` or return None.

    ``loose`` ignores trailing whitespace per line (the rewrite check); the exact comparison is
    what the edit-scope guard uses.
    """
    old_regions = evolve_regions(old)
    try:
        new_regions = evolve_regions(new)
    except EditError as exc:
        return f"the EVOLVE-BLOCK markers are broken in the new program: {exc}"
    if len(new_regions) != len(old_regions):
        return (
            f"the number of EVOLVE blocks changed from {len(old_regions)} to "
            f"{len(new_regions)}; markers are protected"
        )

    def norm(line: str) -> str:
        return line.rstrip() if loose else line

    old_segments = _protected_segments(old, old_regions)
    new_segments = _protected_segments(new, new_regions)
    for (first, old_text), (_, new_text) in zip(old_segments, new_segments, strict=True):
        old_lines, new_lines = _lines(old_text), _lines(new_text)
        if loose:
            # The end of the file may lose or gain its final newline in a rewrite.
            old_lines = [line.rstrip("\n") + "\n" for line in old_lines]
            new_lines = [line.rstrip("\n") + "\n" for line in new_lines]
        for k, (a, b) in enumerate(zip(old_lines, new_lines, strict=False)):
            if norm(a) != norm(b):
                if a.rstrip() == b.rstrip():
                    return (
                        f"protected line {first + k} ({a.rstrip()!r}) changed in its trailing "
                        f"whitespace or line ending"
                    )
                return f"protected line {first + k} changed: {a.rstrip()!r} became {b.rstrip()!r}"
        common = min(len(old_lines), len(new_lines))
        if len(old_lines) > common:
            return f"protected line {first + common} ({old_lines[common].rstrip()!r}) was removed"
        if len(new_lines) > common:
            return (
                f"a line ({new_lines[common].rstrip()!r}) was added to the protected code at "
                f"line {first + common}"
            )
    return None


def protected_changes(old: str, new: str) -> str | None:
    """A sentence describing the first change to ``old``'s protected code in ``new``, or None.

    Protected code is everything outside the EVOLVE regions, marker lines included; line
    numbers refer to ``old``. The comparison is exact. Raises ``EditError`` if ``old`` itself
    has no valid EVOLVE regions.
    """
    return _first_protected_change(old, new, loose=False)


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
        _lines(old), _lines(new), fromfile=f"a/{name}", tofile=f"b/{name}"
    ):
        out.append(line if line.endswith("\n") else line + "\n\\ No newline at end of file\n")
    return "".join(out)


def _apply_rewrite(code: str, text: str) -> Applied:
    candidates = [body for body in _fenced_blocks(text) if _has_marker(body)]
    if not candidates:
        raise EditError(
            "the reply holds no SEARCH/REPLACE blocks and no full program (a ``` fenced code "
            "block containing the EVOLVE-BLOCK markers); reply with SEARCH/REPLACE blocks"
        )
    # A model that shows several versions usually puts the final one last.
    program = candidates[-1]
    change = _first_protected_change(code, program, loose=True)
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
    return Applied(code=new_code, mode="rewrite", blocks=0, edit=unified_diff(code, new_code))


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
        new_code = _apply_block(new_code, block, code)
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
        mode="diff",
        blocks=len(blocks),
        edit="\n".join(block.render() for block in blocks),
    )
