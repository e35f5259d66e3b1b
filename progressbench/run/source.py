"""The program a new run starts from: the environment's baseline, or the user's own program
(``run --program PATH``), read and checked before anything is stored; ``eval`` reads its
PROGRAM the same way (``read_program``: no EVOLVE blocks needed).

PATH is a ``.py`` file, or a directory of ``.py`` files (sub-folders included, hidden ones and
``__pycache__`` left out) whose ``main.py`` is the entry the environment runs; the other files
are modules it imports. A directory becomes one text (``progressbench.contracts.program``);
a file is kept exactly as it is. Agents change only the code between EVOLVE-BLOCK markers,
which may sit in any file; ``--whole-file`` puts each file between one pair instead (two
comment lines added), so the stored reference shows exactly what agents may change.

Every mistake is one line naming the file and the problem (``UserError``, exit 2), raised
while the run is being configured: no run row exists yet.
"""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

from progressbench.contracts.environment import Environment
from progressbench.contracts.program import (
    ENTRY,
    header_path,
    is_multi_file,
    join_files,
    split_files,
)
from progressbench.errors import EditError, UserError
from progressbench.run.config import RunConfig
from progressbench.run.regions import END_MARKER, START_MARKER, evolve_regions, has_marker
from progressbench.sandbox.loader import parse_program
from progressbench.store.database import Store
from progressbench.store.hashing import code_hash

MAX_FILES = 100


def reference_code(config: RunConfig, env: Environment, variant: str, store: Store) -> str:
    """The code of a new run's reference program."""
    if config.program is None:
        return env.baseline(variant)
    stored = replayed_program(config, store)
    return stored if stored is not None else read_user_program(config.program, config.whole_file)


def replayed_program(config: RunConfig, store: Store) -> str | None:
    """The program stored with the run this one replays (``--agent replay:RUN_ID``), when that
    run started from the same ``--program``: a replay reproduces the recorded run, so it
    starts from what that run read, whatever is at the path now (changed, or gone)."""
    for spec in config.agents:
        name, _, run_id = spec.partition(":")
        if name != "replay" or not run_id:
            continue
        recorded = store.get_run(run_id)
        settings = json.loads(recorded.config_json or "{}")
        same = (settings.get("program"), settings.get("whole_file", False)) == (
            config.program,
            config.whole_file,
        )
        if same and recorded.reference_id is not None:
            return store.get_program(recorded.reference_id).code
    return None


def reference_name(config: RunConfig) -> str:
    """How the run's messages name its reference program: the user's by its path."""
    return "the reference program" if config.program is None else f"program {config.program}"


def read_program(path: str) -> str:
    """The program at ``path`` as one text, every file checked (see the module docstring):
    what ``eval`` scores, with or without EVOLVE blocks."""
    return _one_text(path, _read_files(path))


def read_user_program(path: str, whole_file: bool = False) -> str:
    """The program at ``path`` as the run stores it (see the module docstring)."""
    files = _read_files(path)
    if whole_file:
        marked = [rel for rel, text in files.items() if has_marker(text)]
        if marked:
            raise UserError(
                f"program {path}: --whole-file puts each file in one EVOLVE block, but "
                f"{marked[0]} has EVOLVE-BLOCK markers already: drop --whole-file or the markers"
            )
        files = {
            rel: f"# {START_MARKER}\n{_ended(text)}# {END_MARKER}\n" for rel, text in files.items()
        }
    if not any(has_marker(text) for text in files.values()):
        raise UserError(
            f"program {path} has no EVOLVE blocks ('# {START_MARKER}' and '# {END_MARKER}' "
            "lines around the code agents may change): add them, or pass --whole-file to let "
            "agents edit all of it"
        )
    return _one_text(path, files)


def _read_files(path: str) -> dict[str, str]:
    """The program files at ``path`` by path relative to it (a file: by its name), checked."""
    root = Path(path).expanduser()
    if not root.exists():
        raise UserError(f"program {path}: no such file or directory")
    if not root.is_dir():
        return {root.name: _read(root, path)}
    # Each file of the one text ends with a newline (a file without one gets one).
    shown = path.rstrip("/")
    return {rel: _ended(_read(root / rel, f"{shown}/{rel}")) for rel in _file_names(root, path)}


def _one_text(path: str, files: dict[str, str]) -> str:
    """A file exactly as it is; a directory's files as the one text of a multi-file program."""
    if Path(path).expanduser().is_dir():
        return join_files(files)
    (text,) = files.values()
    return text


def _file_names(root: Path, path: str) -> list[str]:
    """The program files of directory ``root``, relative to it; the entry must be there, and
    no module may take the name of an installed one."""
    names = sorted(
        p.relative_to(root).as_posix()
        for p in root.rglob("*.py")
        if p.is_file()
        and not any(
            part.startswith(".") or part == "__pycache__" for part in p.relative_to(root).parts
        )
    )
    if ENTRY not in names:
        raise UserError(
            f"program {path}: a program directory needs a {ENTRY}, the entry file the "
            "environment runs (its other .py files are modules it imports)"
        )
    if len(names) > MAX_FILES:
        raise UserError(f"program {path}: {len(names)} .py files, more than {MAX_FILES}")
    for name in sorted({n.split("/")[0].removesuffix(".py") for n in names} - {"main"}):
        if _installed(name, root):
            raise UserError(
                f"program {path}: its module {name!r} has the name of an installed or standard "
                "module, which imports would reach instead; rename it"
            )
    return names


def _ended(text: str) -> str:
    return text if not text or text.endswith("\n") else text + "\n"


def _installed(name: str, root: Path) -> bool:
    if name in sys.stdlib_module_names:
        return True
    try:
        spec = importlib.util.find_spec(name)
    except (ImportError, ValueError):
        return False
    # The current directory may be on the path: the program's own module is not a clash.
    origin = Path(spec.origin).resolve() if spec and spec.origin else None
    return spec is not None and not (origin and origin.is_relative_to(root.resolve()))


def _read(file: Path, shown: str) -> str:
    """One program file's text, checked: UTF-8, no reserved header line, valid Python,
    balanced EVOLVE markers."""
    try:
        text = file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise UserError(f"program {shown}: cannot be read ({exc})") from None
    for number, line in enumerate(text.split("\n"), 1):
        if header_path(line) is not None:
            raise UserError(
                f"program {shown}: line {number} has the form of the line that opens a file of "
                "a multi-file program ('# ===== file: ... ====='), which is reserved; change it"
            )
    try:
        parse_program(text, shown)
    except SyntaxError as exc:
        raise UserError(f"program {shown}: line {exc.lineno}: syntax error: {exc.msg}") from None
    if has_marker(text):
        try:
            evolve_regions(text)
        except EditError as exc:
            raise UserError(f"program {shown}: {exc}") from None
    return text


def program_line(path: str, reference: str) -> str:
    """What ``show`` says of the program a run started from: where it was read and, for a
    directory, each file's path with the hash of its text."""
    if not is_multi_file(reference):
        return f"  program {path} ({code_hash(reference)})"
    files = ", ".join(f"{p} ({code_hash(t)})" for p, t in split_files(reference).items())
    return f"  program {path}: {files}"
