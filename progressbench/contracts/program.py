"""What a strategy (and a prompt) sees of a stored program, and how a program of several
files is one text.

Its own module so that the strategy contract and the prompt module both import it at the top:
``prompts`` builds messages from views, and ``Strategy.propose`` calls ``prompts``.

A program is one text everywhere (``Program.code``, ``ProgramView.code``, ``EvalJob.program``,
guards, strategies, hashes), so a program of one file is stored exactly as it is. A program
of several files (``run --program DIR``) is the files one after the other, each opened by a
header line naming its path relative to the directory, the entry file first::

    # ===== file: main.py =====
    ...main.py...
    # ===== file: kernels.py =====
    ...kernels.py...

Only a text whose first line is a header is multi-file; a header line never occurs inside a
file (``run --program`` refuses such a file, and an edit may not add one), so splitting is
exact. Each file's text ends with a newline.
"""

from __future__ import annotations

import re

from pydantic import BaseModel, Field

# The file the sandbox runs of a multi-file program (the others are modules it imports).
ENTRY = "main.py"
_HEADER_RE = re.compile(r"^# ===== file: (\S(?:.*\S)?) =====$")


class ProgramView(BaseModel):
    """What a strategy sees of a stored program."""

    id: int
    parent_ids: list[int] = Field(default_factory=list)
    # The programs shown to the agent as inspirations when this one was proposed.
    inspiration_ids: list[int] = Field(default_factory=list)
    island: int = 0
    generation: int = 0
    # The number of the task that proposed it (1 for the first issued; 0 for the reference):
    # an order of results that does not depend on which worker finished first.
    task: int = 0
    code: str
    status: str = "pending"
    valid: bool = False
    score: float | None = None
    metrics: dict[str, float] = Field(default_factory=dict)
    features: dict[str, float] = Field(default_factory=dict)
    telemetry_text: str = ""
    error: str = ""
    idea: str = ""


def file_header(path: str) -> str:
    """The line (without its newline) that opens file ``path`` of a multi-file program."""
    return f"# ===== file: {path} ====="


def header_path(line: str) -> str | None:
    """The path a header line names, or None when ``line`` is no header."""
    match = _HEADER_RE.match(line.rstrip("\r\n"))
    return match.group(1) if match else None


def is_multi_file(code: str) -> bool:
    return header_path(code.split("\n", 1)[0]) is not None


def split_files(code: str) -> dict[str, str]:
    """The files of ``code`` by path, in order (entry first); a one-file program is
    ``{"program.py": code}``, under the name the sandbox gives it."""
    if not is_multi_file(code):
        return {"program.py": code}
    files: dict[str, list[str]] = {}
    current: list[str] = []
    # Newlines only: str.splitlines also splits on form feeds, which a file may hold.
    parts = code.split("\n")
    for line in [part + "\n" for part in parts[:-1]] + [parts[-1]]:
        path = header_path(line)
        if path is not None:
            current = files.setdefault(path, [])
        else:
            current.append(line)
    return {path: "".join(lines) for path, lines in files.items()}


def join_files(files: dict[str, str]) -> str:
    """The one text of a multi-file program (the inverse of ``split_files``); the entry
    file first, then the others by path."""
    order = sorted(files, key=lambda p: (p != ENTRY, p))
    return "".join(f"{file_header(p)}\n{files[p]}" for p in order)
