"""A static scan of a program's source, run by the harness before the program loads.

The runtime sentinel sees frames, the garbage collector, files and imports, but not plain
attribute access: from ``h`` a program could walk ``__closure__`` / ``__self__`` /
``__globals__`` into the harness's state. Those routes, the dynamic-code escapes that would
hide them (``exec``, ``getattr`` with a computed name), file access and monkeypatching of
libraries are rejected here, each finding with its rule and line. Platform guards may check
more; this is the environment's own floor.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

from progressbench import import_folder, parse_program

FORBIDDEN_MODULES = {
    "gc", "inspect", "ctypes", "importlib", "subprocess", "multiprocessing", "socket",
    "threading", "_thread", "signal", "builtins", "pickle", "marshal", "types", "code",
    "codeop", "pty", "shutil", "tempfile", "glob", "pathlib", "io", "mmap", "sqlite3",
    "operator", "pkgutil", "runpy", "zipimport", "progressbench", "progressbench_environments",
}  # fmt: skip
# Already-imported modules are also attributes of other modules (torch.fx._symbolic_trace.inspect):
# these names as attributes reach reflection without an import statement. (Not gc: every
# function of it that matters raises an audit event the sentinel refuses; gc_hunt tests that.)
_MODULE_ATTRIBUTES = {
    "inspect", "ctypes", "importlib", "builtins", "operator", "types", "_thread",
    "threading", "subprocess", "multiprocessing", "pickle", "marshal", "sys", "os",
}  # fmt: skip
FORBIDDEN_NAMES = {
    "__import__", "eval", "exec", "compile", "open", "globals", "locals", "vars",
    "breakpoint", "__builtins__", "input",
}  # fmt: skip
# Attributes that lead from an object to code, frames, closures or module globals.
FORBIDDEN_ATTRIBUTES = {
    "__closure__", "__globals__", "__self__", "__func__", "__code__", "__wrapped__",
    "__subclasses__", "__bases__", "__mro__", "__builtins__", "__getattribute__",
    "__defaults__", "__kwdefaults__", "__reduce__", "__reduce_ex__", "cell_contents",
    "f_locals", "f_globals", "f_back", "f_code", "f_builtins", "gi_frame", "gi_code",
    "cr_frame", "ag_frame", "tb_frame", "tb_next",
    # C-level file readers: they open files without any audit event.
    "from_file", "fromfile", "memmap", "tofile",
}  # fmt: skip
# Per module: attributes a training script has no business using.
FORBIDDEN_MODULE_ATTRIBUTES = {
    "sys": {
        "_getframe", "_current_frames", "modules", "settrace", "setprofile", "addaudithook",
        "meta_path", "path_hooks", "path",
    },
    "os": {
        "system", "fork", "forkpty", "popen", "kill", "killpg", "open", "remove", "unlink",
        "rename", "replace", "chmod", "chown", "utime", "symlink", "link", "truncate",
        "_exit", "execv", "execve", "execl", "execvp", "spawnv", "posix_spawn", "listdir",
        "scandir", "walk", "makedirs", "mkdir", "rmdir", "chdir", "fdopen", "write", "read",
    },
    "torch": {"save", "load"},
    "numpy": {"load", "save", "savez", "fromfile", "memmap", "loadtxt", "genfromtxt", "tofile"},
}  # fmt: skip
# Configuration namespaces a program may set (torch._inductor.config.x = ..., backends flags).
_CONFIG_PATHS = (".config.", "torch.backends.")
# Inductor's autotuning, refused as the speedrun's rules refuse it on its main track: compiling
# is off the clock, so a search over kernel configurations would be free speed. (Not every
# route to these switches is visible here; the harness reads them at run time too.)
AUTOTUNE_SWITCHES = (
    "max_autotune", "max_autotune_gemm", "max_autotune_pointwise",
    "coordinate_descent_tuning", "coordinate_descent_check_all_directions",
)  # fmt: skip
_DYNAMIC_ACCESS = {"getattr", "setattr", "delattr"}


@dataclass(frozen=True)
class Finding:
    rule: str
    line: int
    detail: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.detail} [{self.rule}]"


def _dotted(node: ast.AST) -> str | None:
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if not isinstance(node, ast.Name):
        return None
    parts.append(node.id)
    return ".".join(reversed(parts))


class _Scanner(ast.NodeVisitor):
    def __init__(self) -> None:
        self.findings: list[Finding] = []
        # local name -> the module (or module.attribute) it stands for
        self.imported: dict[str, str] = {}
        self.called: set[int] = set()  # Name nodes in call position

    def add(self, rule: str, node: ast.AST, detail: str) -> None:
        self.findings.append(Finding(rule, getattr(node, "lineno", 0), detail))

    def _module_ok(self, node: ast.AST, name: str) -> None:
        if name.split(".")[0] in FORBIDDEN_MODULES:
            self.add("forbidden-import", node, f"imports {name}")

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            self._module_ok(node, alias.name)
            local = alias.asname or alias.name.split(".")[0]
            self.imported[local] = alias.name if alias.asname else alias.name.split(".")[0]
        self.generic_visit(node)

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        if node.level:
            self.add("forbidden-import", node, "uses a relative import")
        module = node.module or ""
        if module.split(".")[0] in FORBIDDEN_MODULES:
            names = ", ".join(f"{module}.{alias.name}" for alias in node.names)
            self.add("forbidden-import", node, f"imports {names}")
        for alias in node.names:
            self.imported[alias.asname or alias.name] = f"{module}.{alias.name}"
            forbidden_here = FORBIDDEN_MODULE_ATTRIBUTES.get(module, set())
            if alias.name in FORBIDDEN_NAMES | FORBIDDEN_ATTRIBUTES | forbidden_here:
                self.add("forbidden-name", node, f"imports {alias.name} from {module}")
        self.generic_visit(node)

    def _resolve(self, node: ast.AST) -> str | None:
        """The dotted path of an attribute chain, its root resolved through the imports."""
        dotted = _dotted(node)
        if dotted is None:
            return None
        root, _, rest = dotted.partition(".")
        if root not in self.imported:
            return None
        return self.imported[root] + ("." + rest if rest else "")

    def visit_Name(self, node: ast.Name) -> None:
        if node.id in FORBIDDEN_NAMES:
            self.add("forbidden-name", node, f"uses {node.id}")
        elif node.id in _DYNAMIC_ACCESS and id(node) not in self.called:
            self.add("dynamic-attribute", node, f"passes {node.id} around as a value")
        self.generic_visit(node)

    def visit_Attribute(self, node: ast.Attribute) -> None:
        if node.attr in FORBIDDEN_ATTRIBUTES:
            self.add("introspection", node, f"reads .{node.attr}")
        elif node.attr in _MODULE_ATTRIBUTES:
            self.add("forbidden-import", node, f"reaches the module {node.attr} as .{node.attr}")
        elif (
            node.attr == "__dict__"
            and not self._resolve(node)  # those are reported below, as monkeypatching
            and not (isinstance(node.value, ast.Name) and node.value.id in ("self", "cls"))
        ):
            # Any other namespace (a module bound to a plain name is not resolved below) hands
            # out modules and functions by computed keys: m.__dict__["oper" + "ator"].
            self.add("introspection", node, "reads .__dict__ of something other than self")
        path = self._resolve(node)
        if path:
            owner, _, attr = path.rpartition(".")
            if attr in FORBIDDEN_MODULE_ATTRIBUTES.get(owner, ()):
                self.add("forbidden-call", node, f"uses {owner}.{attr}")
            elif attr == "__dict__":  # a library's namespace, the usual route to patching it
                self.add("monkeypatch", node, f"reads {path}")
        self.generic_visit(node)

    def visit_Constant(self, node: ast.Constant) -> None:
        # getattr(x, "__closure__") and friends spelled as strings.
        if isinstance(node.value, str) and node.value in FORBIDDEN_ATTRIBUTES | {"__dict__"}:
            self.add("introspection", node, f"names {node.value!r}")

    def _compile_flags(self, node: ast.Call) -> None:
        """torch.compile(mode="max-autotune...") or options naming an autotuning switch, and
        torch._inductor.config.patch(...) / .update(...) turning one on."""
        path = self._resolve(node.func) or ""
        if path.endswith("._inductor.config.patch") or path.endswith("._inductor.config.update"):
            names = {k.arg for k in node.keywords} | {
                key.value
                for arg in node.args
                if isinstance(arg, ast.Dict)
                for key in arg.keys
                if isinstance(key, ast.Constant)
            }
            for name in sorted(n for n in names if n in AUTOTUNE_SWITCHES):
                self.add("compile-flag", node, f"turns on torch._inductor.config.{name}")
        if path != "torch.compile":
            return
        for keyword in node.keywords:
            value = keyword.value
            if keyword.arg == "mode" and not (
                isinstance(value, ast.Constant) and "autotune" not in str(value.value)
            ):
                self.add(
                    "compile-flag", node, "torch.compile with an autotuning (or computed) mode"
                )
            if keyword.arg == "options":
                keys = value.keys if isinstance(value, ast.Dict) else [None]
                if any(
                    not (isinstance(k, ast.Constant) and k.value not in AUTOTUNE_SWITCHES)
                    for k in keys
                ):
                    self.add("compile-flag", node, "torch.compile options that turn on autotuning")

    def visit_Call(self, node: ast.Call) -> None:
        self._compile_flags(node)
        if isinstance(node.func, ast.Name):
            self.called.add(id(node.func))
        name = node.func.id if isinstance(node.func, ast.Name) else None
        if name in _DYNAMIC_ACCESS and len(node.args) >= 2:
            attr = node.args[1]
            if not (isinstance(attr, ast.Constant) and isinstance(attr.value, str)):
                self.add("dynamic-attribute", node, f"{name}() with a computed attribute name")
            if name in ("setattr", "delattr") and self._resolve(node.args[0]):
                self.add("monkeypatch", node, f"{name}() on {self._resolve(node.args[0])}")
        self.generic_visit(node)

    def _assigned(self, target: ast.AST) -> None:
        if isinstance(target, (ast.Tuple, ast.List)):
            for element in target.elts:
                self._assigned(element)
            return
        if isinstance(target, ast.Attribute):
            path = self._resolve(target)
            if path and "._inductor.config" in path and target.attr in AUTOTUNE_SWITCHES:
                self.add("compile-flag", target, f"sets {path} (autotuning is not allowed)")
            elif path and not any(
                marker in "." + path + "." or path.startswith(marker) for marker in _CONFIG_PATHS
            ):
                self.add(
                    "monkeypatch", target, f"rebinds {path} (define your own function instead)"
                )

    def visit_Assign(self, node: ast.Assign) -> None:
        for target in node.targets:
            self._assigned(target)
        self.generic_visit(node)

    def visit_AugAssign(self, node: ast.AugAssign) -> None:
        self._assigned(node.target)
        self.generic_visit(node)

    def visit_AnnAssign(self, node: ast.AnnAssign) -> None:
        self._assigned(node.target)
        self.generic_visit(node)

    def visit_Delete(self, node: ast.Delete) -> None:
        for target in node.targets:
            self._assigned(target)
        self.generic_visit(node)


def scan(source: str) -> list[Finding]:
    """Every finding in ``source`` (a syntax error is one finding too)."""
    try:
        tree = parse_program(source)  # under the core's lock: scans run in threads
    except SyntaxError as exc:
        return [Finding("syntax", exc.lineno or 0, f"syntax error: {exc.msg}")]
    scanner = _Scanner()
    scanner.visit(tree)
    return scanner.findings


def scan_program(program: Path) -> list[Finding]:
    """Every finding in the program the harness runs: its one file, or every ``.py`` file of a
    multi-file program's folder (the modules the entry imports run as program code too), each
    finding naming its file."""
    folder = import_folder(program)
    if folder is None:
        return scan(program.read_text(encoding="utf-8", errors="replace"))
    findings = []
    for path in sorted(folder.rglob("*.py")):
        rel = path.relative_to(folder).as_posix()
        for f in scan(path.read_text(encoding="utf-8", errors="replace")):
            findings.append(Finding(f.rule, f.line, f"{rel}: {f.detail}"))
    return findings
