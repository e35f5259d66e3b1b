"""SEARCH/REPLACE blocks: parsing them out of a reply, and applying one to a program inside
its EVOLVE regions (the rules are in ``progressbench.run.edits``).

A block may follow a line naming the file it edits (aider's convention, blank lines and a
``` fence line may come between); which names count is for ``edits`` to decide, since only
it knows the program's files."""

from __future__ import annotations

import difflib
import heapq
import re
from collections import Counter
from dataclasses import dataclass

from progressbench.contracts.program import header_path
from progressbench.errors import EditError
from progressbench.run.regions import (
    END_MARKER,
    START_MARKER,
    evolve_regions,
    has_marker,
    split_lines,
)

# aider accepts 5-9 marker characters; models trained on its prompts sometimes miscount.
_SEARCH_RE = re.compile(r"^<{5,9} ?SEARCH\s*$")
_DIVIDER_RE = re.compile(r"^={5,9}\s*$")
_REPLACE_RE = re.compile(r"^>{5,9} ?REPLACE\s*$")
_HINT_CONTEXT_MAX = 12
_HINT_SHORTLIST = 20
_WORD_RE = re.compile(r"\w+|[^\w\s]")
_FENCE_RE = re.compile(r"^\s*(`{3,}|~{3,})")
# How a model decorates a file name on its own line: `main.py`, **main.py**, main.py:
_NAME_DECORATION = "`*#: \t"


@dataclass(frozen=True)
class Block:
    """One SEARCH/REPLACE block of a reply.

    ``search`` and ``replace`` are whole lines, each ending in a newline (empty when the
    section is empty); ``index`` counts blocks from 1; ``line`` is the 1-based reply line of
    the block's SEARCH marker; ``name`` is the one word on the last prose line before it
    (its file name, undecorated, when the reply names one), else "".
    """

    search: str
    replace: str
    index: int
    line: int
    name: str = ""

    @property
    def where(self) -> str:
        return f"block {self.index} (reply line {self.line})"

    def render(self, path: str = "") -> str:
        """The block as stored: after its file's path, in a multi-file program."""
        head = f"{path}\n" if path else ""
        return f"{head}<<<<<<< SEARCH\n{self.search}=======\n{self.replace}>>>>>>> REPLACE\n"


def _name_of(line: str) -> str:
    """The file name a prose line may be, or "" when it is more than one word."""
    word = line.strip().strip(_NAME_DECORATION)
    return word if word and not any(c.isspace() for c in word) else ""


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
    name = ""  # the last prose line's word, if one; a block after it edits that file
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
            lines = ("".join(f"{s}\n" for s in search), "".join(f"{r}\n" for r in replace))
            blocks.append(Block(*lines, index=len(blocks) + 1, line=start, name=name))
            state, name = "prose", ""
        elif state == "search":
            search.append(line)
        elif state == "replace":
            replace.append(line)
        elif line.strip() and not _FENCE_RE.match(line):
            name = _name_of(line)
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


def apply_block(code: str, block: Block, original: str) -> str:
    """``code`` with ``block`` applied, or ``EditError`` saying why it cannot be."""
    if not block.search.strip():
        raise EditError(
            f"{block.where}: the SEARCH section is empty; copy the exact lines to replace "
            f"from the program into it"
        )
    if has_marker(block.replace):
        raise EditError(
            f"{block.where}: the REPLACE section contains an {START_MARKER}/{END_MARKER} "
            f"marker; markers are protected and cannot be added or removed"
        )
    if any(header_path(line) for line in split_lines(block.replace)):
        raise EditError(
            f"{block.where}: the REPLACE section contains a '# ===== file: ... =====' line; "
            "those lines name the program's files and cannot be added"
        )
    lines = split_lines(code)
    regions = evolve_regions(code)
    offsets = _offsets(lines)
    wanted = split_lines(block.search)
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
    if block.index > 1 and _match_starts(split_lines(original), wanted):
        raise EditError(
            f"{block.where}: the SEARCH text is in the original program but an earlier block "
            f"of this reply already changed it; blocks apply in order, so search for the "
            f"lines as they read after the earlier blocks, or merge the blocks"
        )
    raise _not_found(block, lines, regions, offsets, wanted)


def _not_found(
    block: Block,
    lines: list[str],
    regions: list[tuple[int, int]],
    offsets: list[int],
    wanted: list[str],
) -> EditError:
    """The error for a SEARCH that matches nowhere, with the nearest evolvable lines."""
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
    return EditError(
        message.rstrip("\n")
        + "\nSEARCH must copy whole lines exactly (only trailing whitespace may differ)."
    )
