"""The core's shape, checked: the limits the redesign set (module and function sizes), the
direction of dependencies (the core never imports a built-in plugin package; no import cycles
inside the core, function-local imports included), and a public surface that resolves."""

from __future__ import annotations

import ast
import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import REPO

import progressbench

CORE = REPO / "progressbench"
MAX_MODULE_LINES = 400
MAX_FUNCTION_LINES = 60
# Functions allowed past the limit, each with the reason it reads better whole.
LONG_FUNCTIONS: dict[str, str] = {}
PLUGIN_PACKAGES = (
    "progressbench_environments",
    "progressbench_strategies",
    "progressbench_plugins",
)


def core_modules() -> dict[str, Path]:
    found = {}
    for path in sorted(CORE.rglob("*.py")):
        parts = path.relative_to(REPO).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        found[name] = path
    return found


def _type_checking_only(node: ast.AST) -> bool:
    return (
        isinstance(node, ast.If)
        and isinstance(node.test, ast.Name)
        and node.test.id == "TYPE_CHECKING"
    )


def imports_of(path: Path, modules: dict[str, Path]) -> set[str]:
    """Modules ``path`` imports at run time (anywhere in the file, TYPE_CHECKING blocks
    excepted), resolved to module names."""
    tree = ast.parse(path.read_text())
    skip = {id(n) for node in ast.walk(tree) if _type_checking_only(node) for n in ast.walk(node)}
    found: set[str] = set()
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for alias in node.names:
                sub = f"{node.module}.{alias.name}"
                found.add(sub if sub in modules else node.module)
    return found


def test_no_core_module_is_over_the_line_limit():
    long = {
        name: n
        for name, path in core_modules().items()
        if (n := len(path.read_text().splitlines())) > MAX_MODULE_LINES
    }
    assert long == {}, f"modules over {MAX_MODULE_LINES} lines: {long}"


def test_no_core_function_is_over_the_line_limit():
    long = {}
    for name, path in core_modules().items():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                size = (node.end_lineno or node.lineno) - node.lineno + 1
                key = f"{name}.{node.name}"
                if size > MAX_FUNCTION_LINES and key not in LONG_FUNCTIONS:
                    long[key] = size
    assert long == {}, f"functions over {MAX_FUNCTION_LINES} lines: {long}"


def test_the_core_never_imports_a_plugin_package():
    modules = core_modules()
    offenders = {
        name: sorted(i for i in imports_of(path, modules) if i.startswith(PLUGIN_PACKAGES))
        for name, path in modules.items()
    }
    assert {k: v for k, v in offenders.items() if v} == {}


def test_the_core_has_no_import_cycle():
    modules = core_modules()
    graph = {
        name: {i for i in imports_of(path, modules) if i in modules and i != name}
        for name, path in modules.items()
    }
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    cycles: list[list[str]] = []

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                cycles.append([*path[path.index(nxt) :], nxt])
            elif nxt not in state:
                visit(nxt, [*path, nxt])
        state[node] = 2

    for name in sorted(graph):
        if name not in state:
            visit(name, [name])
    assert cycles == [], "import cycles: " + "; ".join(" -> ".join(c) for c in cycles)


@pytest.mark.parametrize("name", progressbench.__all__)
def test_every_public_name_resolves(name):
    assert getattr(progressbench, name) is not None


def test_the_public_surface_is_lazy():
    """``import progressbench`` must not pull in pydantic, sqlmodel or torch: the CLI's
    ``--help`` and the sandbox worker's start-up import it first."""
    code = (
        "import sys, progressbench; "
        "print(sorted(m for m in ('pydantic', 'sqlmodel', 'torch') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_each_plugin_folder_says_what_it_holds():
    for folder in ("environments", "strategies", "plugins"):
        readme = REPO / folder / "README.md"
        assert readme.is_file(), f"{folder}/ has no README.md"
        assert importlib.util.find_spec(f"progressbench_{folder}") is not None
        assert f"progressbench_{folder}" in readme.read_text()
