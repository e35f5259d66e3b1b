"""Loading a candidate program as a module, inside the sandbox child; and parsing or
compiling program text in the platform, where several threads do it at once.

CPython 3.11 keeps the AST constructor's recursion depth in state that every thread of the
interpreter shares (gh-106905): two threads converting deep trees at once, with a switch
between them (a garbage collection running a finaliser is enough), fail with ``SystemError:
AST constructor recursion depth mismatch``, and a guard that fails closed then rejects a valid
program. Every parse of the platform goes through ``parse_program`` / ``compile_program``,
which take one process-wide lock.

Both read a multi-file program (``progressbench.contracts.program``) file by file, so each
file is its own module (a ``from __future__`` import opens each) and line numbers are those
of the program's one text, headers included.
"""

from __future__ import annotations

import ast
import importlib.util
import os
import sys
import threading
from pathlib import Path
from types import CodeType, ModuleType

from progressbench.contracts.program import ENTRY, is_multi_file, split_files

# Re-entrant: a finaliser run by the collector in the middle of a parse may parse too.
_PARSE_LOCK = threading.RLock()
# The folder of a job that holds a multi-file program (one file is ``program.py`` beside it).
PROGRAM_DIR = "program"


def write_program(job_dir: Path, text: str) -> Path:
    """Write program ``text`` into ``job_dir``, read-only, and return the file the harness
    runs: ``program.py``, or for a multi-file program ``program/main.py`` with its other
    files around it (folders read-only too, so the candidate cannot add a module)."""
    if not is_multi_file(text):
        path = job_dir / "program.py"
        path.write_text(text, encoding="utf-8")
        os.chmod(path, 0o444)
        return path
    root = job_dir / PROGRAM_DIR
    folders = {root}
    for rel, body in split_files(text).items():
        parts = Path(rel).parts
        # `run --program` read these names from a directory; a text written by hand could
        # still name a place outside it.
        if Path(rel).is_absolute() or ".." in parts:
            raise ValueError(f"the program's file {rel!r} lies outside its folder")
        path = root.joinpath(*parts)
        path.parent.mkdir(parents=True, exist_ok=True)
        folders.update(path.parents[: len(parts) - 1])
        path.write_text(body, encoding="utf-8")
        os.chmod(path, 0o444)
    for folder in sorted(folders, key=lambda f: len(f.parts), reverse=True):
        os.chmod(folder, 0o555)
    return root / ENTRY


def import_folder(program: Path) -> Path | None:
    """The folder a multi-file program's modules import from (``write_program``'s), or None
    for a program of one file."""
    return program.parent if program.parent.name == PROGRAM_DIR else None


def load_program(path: Path, module_name: str = "candidate") -> ModuleType:
    """Execute the program file as a fresh module and return it."""
    spec = importlib.util.spec_from_file_location(module_name, str(path))
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load program from {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    spec.loader.exec_module(module)
    return module


def parse_program(source: str, filename: str = "<program>") -> ast.Module:
    """``ast.parse(source)``, safe to call from many threads at once (see the module's
    docstring); raises SyntaxError like it."""
    if is_multi_file(source):
        # One module holding every file's statements, numbered as in the program's text.
        body: list[ast.stmt] = []
        for first, path, text in _files(source):
            body += ast.increment_lineno(parse_program(text, path), first).body
        return ast.Module(body=body, type_ignores=[])
    with _PARSE_LOCK:
        return ast.parse(source, filename)


def compile_program(source: str | ast.Module, filename: str = "<program>") -> CodeType:
    """``compile(source, filename, "exec")``, under the same lock as ``parse_program`` (a
    tree is converted back by the same constructor). A multi-file program compiles file by
    file (a ``SyntaxError`` names the file, its line is the program's) and gives the entry
    file's code."""
    if isinstance(source, str) and is_multi_file(source):
        compiled = []
        for first, path, text in _files(source):
            try:
                compiled.append(compile_program(text, path))
            except SyntaxError as exc:
                exc.msg = f"{exc.msg} (in {path}, line {exc.lineno})"
                exc.lineno = (exc.lineno or 1) + first
                raise
        return compiled[0]
    with _PARSE_LOCK:
        return compile(source, filename, "exec")


def _files(source: str) -> list[tuple[int, str, str]]:
    """(lines before the file's first line in ``source``, path, text) of each file."""
    out, first = [], 0
    for path, text in split_files(source).items():
        first += 1  # its header
        out.append((first, path, text))
        first += text.count("\n")
    return out
