"""EVOLVE blocks: the regions of a program an agent may change, and the protected code
around them.

A program marks the code agents may change with comment lines::

    # EVOLVE-BLOCK-START
    ...evolvable code...
    # EVOLVE-BLOCK-END

Everything else, the marker lines included, is protected. In a program of several files
(``progressbench.contracts.program``) each file has its own blocks, or none: a file without
markers is protected whole, and so are the header lines that name the files.
"""

from __future__ import annotations

from progressbench.contracts.program import is_multi_file, split_files
from progressbench.errors import EditError

START_MARKER = "EVOLVE-BLOCK-START"
END_MARKER = "EVOLVE-BLOCK-END"
_COMMENT_PREFIXES = ("#", "//")


def split_lines(text: str) -> list[str]:
    """Split on newlines only, keeping them (``str.splitlines`` also splits on form feeds
    and other separators, which would shift line numbers)."""
    parts = text.split("\n")
    lines = [part + "\n" for part in parts[:-1]]
    if parts[-1]:
        lines.append(parts[-1])
    return lines


def is_marker(line: str, marker: str) -> bool:
    stripped = line.strip()
    return stripped.startswith(_COMMENT_PREFIXES) and marker in stripped


def has_marker(text: str) -> bool:
    return any(
        is_marker(line, START_MARKER) or is_marker(line, END_MARKER) for line in split_lines(text)
    )


def evolve_regions(code: str) -> list[tuple[int, int]]:
    """Character spans ``(start, end)`` of the evolvable text of ``code``.

    A span runs from just after an ``EVOLVE-BLOCK-START`` comment line to the start of the
    matching ``EVOLVE-BLOCK-END`` line, so the marker lines themselves are protected. Raises
    ``EditError`` when markers are missing, unbalanced or nested (in a multi-file program:
    in some file, which the message names; a file without markers has no regions).
    """
    if not is_multi_file(code):
        return _file_regions(code)
    regions: list[tuple[int, int]] = []
    offset = 0
    for path, text in split_files(code).items():
        offset = code.index("\n", offset) + 1  # past the file's header line
        if has_marker(text):
            try:
                regions += [(offset + a, offset + b) for a, b in _file_regions(text)]
            except EditError as exc:
                raise EditError(f"{path}: {exc}") from None
        offset += len(text)
    if not regions:
        raise EditError(_NO_REGIONS)
    return regions


_NO_REGIONS = f"the program has no evolvable code: no '# {START_MARKER}' / '# {END_MARKER}' lines"


def _file_regions(code: str) -> list[tuple[int, int]]:
    """``evolve_regions`` of one file."""
    regions: list[tuple[int, int]] = []
    open_at: tuple[int, int] | None = None  # (line number, offset after the START line)
    offset = 0
    for number, line in enumerate(split_lines(code), 1):
        if is_marker(line, START_MARKER):
            if open_at is not None:
                raise EditError(
                    f"nested {START_MARKER} on line {number}: the block opened on line "
                    f"{open_at[0]} is not closed"
                )
            open_at = (number, offset + len(line))
        elif is_marker(line, END_MARKER):
            if open_at is None:
                raise EditError(f"{END_MARKER} on line {number} has no {START_MARKER} before it")
            regions.append((open_at[1], offset))
            open_at = None
        offset += len(line)
    if open_at is not None:
        raise EditError(f"{START_MARKER} on line {open_at[0]} is never closed by {END_MARKER}")
    if not regions:
        raise EditError(_NO_REGIONS)
    return regions


def _protected_segments(code: str, regions: list[tuple[int, int]]) -> list[tuple[int, str]]:
    """Protected text between regions as ``(first line number, text)`` pairs."""
    bounds = [0] + [x for region in regions for x in region] + [len(code)]
    return [
        (code.count("\n", 0, bounds[k]) + 1, code[bounds[k] : bounds[k + 1]])
        for k in range(0, len(bounds), 2)
    ]


def first_protected_change(old: str, new: str, loose: bool) -> str | None:
    """Describe the first protected difference between ``old`` and ``new`` or return None.

    ``loose`` ignores trailing whitespace per line (the rewrite check); the exact comparison is
    what the edit-scope guard uses. In a multi-file program the sentence names the file and
    its line numbers are that file's.
    """
    if is_multi_file(old) or is_multi_file(new):
        return _files_change(old, new, loose)
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
        old_lines, new_lines = split_lines(old_text), split_lines(new_text)
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


def _files_change(old: str, new: str, loose: bool) -> str | None:
    """``first_protected_change`` of a multi-file program, file by file."""
    if not is_multi_file(old) or not is_multi_file(new):
        return "the program's file header lines changed; they are protected"
    old_files, new_files = split_files(old), split_files(new)
    gone = [p for p in old_files if p not in new_files]
    added = [p for p in new_files if p not in old_files]
    if gone or added:
        what = f"file {gone[0]} was removed" if gone else f"a file {added[0]} was added"
        return f"{what}; the program's files are fixed"
    for path, text in old_files.items():
        if has_marker(text):
            change = first_protected_change(text, new_files[path], loose)
        else:
            change = _whole_change(text, new_files[path], loose)
        if change is not None:
            return f"in {path}: {change}"
    return None


def _whole_change(old: str, new: str, loose: bool) -> str | None:
    """The first changed line of a file without EVOLVE blocks, all of it protected."""
    old_lines, new_lines = split_lines(old), split_lines(new)
    for k in range(max(len(old_lines), len(new_lines))):
        a = old_lines[k] if k < len(old_lines) else ""
        b = new_lines[k] if k < len(new_lines) else ""
        if (a.rstrip() != b.rstrip()) if loose else (a != b):
            return (
                f"line {k + 1} changed ({a.rstrip()!r} became {b.rstrip()!r}), but the file "
                "has no EVOLVE blocks: all of it is protected"
            )
    return None


def protected_changes(old: str, new: str) -> str | None:
    """A sentence describing the first change to ``old``'s protected code in ``new``, or None.

    Protected code is everything outside the EVOLVE regions, marker lines included; line
    numbers refer to ``old``. The comparison is exact. Raises ``EditError`` if ``old`` itself
    has no valid EVOLVE regions.
    """
    return first_protected_change(old, new, loose=False)
