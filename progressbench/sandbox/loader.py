"""Loading a candidate program as a module, inside the sandbox child; and parsing or
compiling program text in the platform, where several threads do it at once.

CPython 3.11 keeps the AST constructor's recursion depth in state that every thread of the
interpreter shares (gh-106905): two threads converting deep trees at once, with a switch
between them (a garbage collection running a finaliser is enough), fail with ``SystemError:
AST constructor recursion depth mismatch``, and a guard that fails closed then rejects a valid
program. Every parse of the platform goes through ``parse_program`` / ``compile_program``,
which take one process-wide lock.
"""

from __future__ import annotations

import ast
import importlib.util
import sys
import threading
from pathlib import Path
from types import CodeType, ModuleType

# Re-entrant: a finaliser run by the collector in the middle of a parse may parse too.
_PARSE_LOCK = threading.RLock()


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
    with _PARSE_LOCK:
        return ast.parse(source, filename)


def compile_program(source: str | ast.Module, filename: str = "<program>") -> CodeType:
    """``compile(source, filename, "exec")``, under the same lock as ``parse_program`` (a
    tree is converted back by the same constructor)."""
    with _PARSE_LOCK:
        return compile(source, filename, "exec")
