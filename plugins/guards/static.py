"""The ``static`` guard: read the candidate's code before anything of it runs.

A candidate is written by a model rewarded for its score, so the guard rejects whole classes
of constructs that have no business in a training script or a solver, rather than known
exploits: the network, other processes, native code, signals, dynamic imports and code,
serialised code, files outside the scratch directory, reflection that can reach the harness
(frames, the collector, ``__globals__``, builtins), monkeypatching of modules, and, per
environment, the protected names of its harness (``guard_rules``, see ``rules.py``).

Only what the candidate adds counts: the same findings in the environment's reference
program (its protected harness code may legitimately ``import os``) are subtracted, so an
environment never has to loosen a rule for its own code. Each finding names its rule and
line; the reason is written for the agent that has to fix the program.

The guard is the first layer, not the only one: whatever it misses still runs in the sandbox
(``progressbench doctor``), and the environment re-checks every number it stores.
"""

from __future__ import annotations

import ast
import functools
import re
import sys
from collections import Counter
from dataclasses import dataclass
from fnmatch import fnmatchcase
from typing import Any, ClassVar

from progressbench import (
    EditError,
    Environment,
    Guard,
    Verdict,
    edits,
    hookimpl,
    parse_program,
)
from progressbench_plugins.guards.rules import GuardRules, rules_for

# Modules a candidate may not import, by what they would give it. A module forbids its
# submodules too; a top-level module whose name starts with "_" (CPython's internals such as
# _posixsubprocess or _socket) is always forbidden.
_FORBIDDEN: dict[str, tuple[str, ...]] = {
    "network access": (
        "socket", "ssl", "http", "urllib", "urllib3", "requests", "httpx", "aiohttp",
        "websocket", "websockets", "ftplib", "smtplib", "poplib", "imaplib", "nntplib",
        "telnetlib", "xmlrpc", "socketserver", "webbrowser", "asyncio", "selectors", "select",
        "grpc", "zmq", "paramiko", "boto3", "botocore", "huggingface_hub", "litellm",
        "openai", "anthropic", "ray",
    ),
    "starting processes": (
        "subprocess", "multiprocessing", "concurrent.futures.process", "torch.multiprocessing",
        "pty", "pexpect", "sh", "plumbum", "joblib",
    ),
    "native code": (
        "ctypes", "cffi", "numpy.ctypeslib", "torch.utils.cpp_extension", "setuptools",
        "distutils", "pyximport", "cython", "mmap",
    ),
    "signals and process control": (
        "signal", "resource", "fcntl", "termios", "tty", "posix", "nt", "pwd", "grp", "spwd",
        "syslog", "atexit", "faulthandler",
    ),
    "dynamic imports and code loading": (
        "importlib", "imp", "pkgutil", "runpy", "zipimport", "builtins", "__main__", "site",
        "code", "codeop", "timeit", "doctest", "pip", "ensurepip", "venv", "pydoc",
        "pkg_resources", "importlib_metadata",
    ),
    "serialised code (unpickling runs arbitrary callables)": (
        "pickle", "cPickle", "dill", "cloudpickle", "marshal", "shelve", "copyreg",
    ),
    "file-system access outside the scratch directory": (
        "pathlib", "shutil", "glob", "fileinput", "filecmp", "linecache", "sqlite3", "dbm",
        "sqlalchemy", "sqlmodel",
    ),
    "reflection, tracing and debugging": (
        "inspect", "gc", "dis", "trace", "pdb", "bdb", "cProfile", "profile", "readline",
        "rlcompleter", "unittest", "pytest",
    ),
    "the platform's internals": (
        "progressbench", "progressbench_environments", "progressbench_plugins",
        "progressbench_strategies",
    ),
}  # fmt: skip
FORBIDDEN_MODULES: dict[str, str] = {m: why for why, mods in _FORBIDDEN.items() for m in mods}

# Modules whose attributes are allow-listed: os and sys are mostly process control and
# interpreter internals, with a few harmless helpers training code uses.
ATTRIBUTE_ALLOWLISTS: dict[str, frozenset[str]] = {
    "os": frozenset({
        "path", "sep", "linesep", "pathsep", "curdir", "pardir", "extsep", "altsep", "devnull",
        "name", "cpu_count", "process_cpu_count", "sched_getaffinity", "getpid", "urandom",
        "fspath", "PathLike", "getcwd",
    }),
    "sys": frozenset({
        "stdout", "stderr", "maxsize", "float_info", "int_info", "hash_info", "maxunicode",
        "version", "version_info", "implementation", "platform", "byteorder", "argv", "exit",
        "getrecursionlimit", "setrecursionlimit", "getsizeof", "float_repr_style", "flags",
        "getdefaultencoding", "getfilesystemencoding",
    }),
}  # fmt: skip

# Attributes of allowed modules that are off limits (fnmatch patterns; a match on any prefix
# of a dotted name counts), with what they would give the program.
FORBIDDEN_ATTRIBUTES: dict[str, str] = {
    "torch._C": "the interpreter-level internals of torch",
    "torch.hub": "downloads code and weights",
    "torch.ops.load_library": "loads native code",
    "torch.classes.load_library": "loads native code",
    "io.open": "opens files by path (use open() with a relative path)",
    "io.FileIO": "opens files by path",
    "io.open_code": "opens files by path",
    "codecs.open": "opens files by path",
    "tokenize.open": "opens files by path",
    "numpy.DataSource": "opens files and URLs",
    "traceback.walk_stack": "reaches the harness's frames",
    "traceback.walk_tb": "reaches the harness's frames",
    "types.CodeType": "builds code objects",
    "types.FunctionType": "builds functions from code objects",
    "types.FrameType": "reaches frames",
    "types.TracebackType": "reaches frames",
    "threading.settrace*": "traces the harness",
    "threading.setprofile*": "traces the harness",
    "concurrent.futures.ProcessPoolExecutor": "starts processes",
}

# Calls that take a file path, with its position (keywords: PATH_KEYWORDS): it must be a
# relative string literal, i.e. a file in the candidate's own scratch directory.
FILE_FUNCTIONS: dict[str, int] = {
    "open": 0, "torch.load": 0, "torch.save": 1, "torch.from_file": 0, "torch.jit.load": 0,
    "torch.jit.save": 1, "numpy.load": 0, "numpy.save": 0, "numpy.savez": 0,
    "numpy.savez_compressed": 0, "numpy.fromfile": 0, "numpy.loadtxt": 0, "numpy.savetxt": 0,
    "numpy.genfromtxt": 0, "numpy.memmap": 0, "numpy.fromregex": 0,
    "numpy.lib.format.open_memmap": 0, "gzip.open": 0, "bz2.open": 0, "lzma.open": 0,
    "zipfile.ZipFile": 0, "tarfile.open": 0,
}  # fmt: skip
FILE_METHODS: dict[str, int] = {"tofile": 0}
PATH_KEYWORDS = ("file", "fname", "filename", "f", "path", "name")

# Compiler and backend switches a program may set on a module, to constant values only (a
# string could be a compiler command: torch._inductor.config.cpp.cxx).
SETTABLE = (
    "torch.backends.*",
    "torch._inductor.config.*",
    "torch._dynamo.config.*",
    "torch._functorch.config.*",
)

# Attributes that lead from any object to frames, globals, code, builtins or the class
# hierarchy, i.e. to the harness's own state.
REFLECTIVE_ATTRIBUTES = frozenset({
    "__globals__", "__code__", "__closure__", "__builtins__", "__dict__", "__subclasses__",
    "__mro__", "__bases__", "__base__", "__getattribute__", "__setattr__", "__delattr__",
    "__import__", "__loader__", "__spec__", "__self__", "__func__", "__wrapped__",
    "__reduce__", "__reduce_ex__", "__defaults__", "__kwdefaults__", "__traceback__",
    "__objclass__", "tb_frame", "tb_next", "f_back", "f_globals", "f_locals", "f_builtins",
    "f_code", "f_trace", "gi_frame", "gi_code", "cr_frame", "cr_code", "ag_frame", "ag_code",
    "co_code", "co_consts", "co_names",
})  # fmt: skip
# Imported modules are attributes of the modules that imported them (torch.serialization.sys):
# these names as attributes reach, without an import statement, what the module rules
# forbid or allow-list. Names that are also common attribute names (select, code, profile)
# are left out.
MODULES_AS_ATTRIBUTES = frozenset({
    "sys", "os", "builtins", "importlib", "inspect", "gc", "operator", "ctypes", "subprocess",
    "multiprocessing", "socket", "pickle", "marshal", "_thread", "posix",
})  # fmt: skip
REFLECTIVE_NAMES = frozenset({"__builtins__", "__loader__", "__spec__", "__build_class__"})
REFLECTIVE_BUILTINS = frozenset({"globals", "locals", "vars", "breakpoint", "help"})
DYNAMIC_CODE = frozenset({"exec", "eval", "compile", "__import__"})
# Callables that take attribute names as strings: the names must be literals.
NAME_ARGUMENTS: dict[str, tuple[int, ...] | None] = {
    "getattr": (1,),
    "setattr": (1,),
    "delattr": (1,),
    "hasattr": (1,),
    "operator.attrgetter": None,  # every argument
    "operator.methodcaller": (0,),
}
_REFLECTIVE_TEXT = re.compile(
    r"__(?:"
    + "|".join(sorted(a.strip("_") for a in REFLECTIVE_ATTRIBUTES if a.startswith("__")))
    + r")__|\b(?:"
    + "|".join(sorted(a for a in REFLECTIVE_ATTRIBUTES if not a.startswith("__")))
    + r")\b"
)
_ABSOLUTE_PATH = re.compile(r"^(?:/[\w.~-]|~)")

# What each rule protects, said once per rejection for the agent.
RULES: dict[str, str] = {
    "forbidden-module": "candidate programs may not use the network, other processes, native "
    "code, signals, dynamic imports, pickled code, files outside their scratch directory, "
    "reflection or the platform's own modules",
    "module-not-allowed": "this environment allows only the modules it lists (or the standard "
    "library and the packages it declares), and the program's own files",
    "star-import": "import names explicitly, so every use can be checked",
    "forbidden-attribute": "that function gives access the program must not have",
    "module-escape": "a module may only be used through its attributes (e.g. `np.zeros`), not "
    "passed around as a value, so that every use of it can be checked",
    "dynamic-code": "code built at run time cannot be checked; write it out",
    "dynamic-attribute": "attribute names must be string literals, so they can be checked",
    "reflection": "frames, globals, code objects, builtins and the class hierarchy reach the "
    "harness's own state",
    "file-access": "a program may only touch files in its scratch directory (relative "
    "literal paths); the harness provides all data",
    "module-patch": "programs may not change modules or library classes (monkeypatching); "
    "only compiler/backend settings such as torch.backends.* may be set, to constants",
    "protected-name": "the environment's harness owns this name: the program may not define, "
    "shadow, assign or patch it",
}
MAX_LISTED = 6


@dataclass(frozen=True)
class Finding:
    rule: str
    line: int
    code: str
    message: str

    @property
    def key(self) -> tuple[str, str, str]:
        """What makes two findings "the same" across programs (line numbers shift)."""
        return self.rule, self.code, self.message


class Policy:
    """The default rules merged with an environment's ``guard_rules``, for one program: the
    modules of its own files (``own``, a multi-file program's) are allowed like the
    environment's packages, never over the deny-list."""

    def __init__(self, rules: GuardRules, own: frozenset[str] = frozenset()):
        self.own = own
        self.allowlist = rules.allowed_modules is not None
        self.allowed_modules = tuple(rules.allowed_modules or ())
        self.lifted = tuple(rules.allowed_forbidden_modules)
        self.packages = rules.packages
        self.forbidden = dict(FORBIDDEN_MODULES)
        self.forbidden.update({m: "this environment forbids it" for m in rules.forbidden_modules})
        self.forbidden_attributes = dict(FORBIDDEN_ATTRIBUTES)
        self.forbidden_attributes.update(
            {a: "this environment forbids it" for a in rules.forbidden_attributes}
        )
        self.allowed_attributes = tuple(rules.allowed_attributes)
        # A name the environment lets programs replace is the equivalence guard's business.
        self.protected = {n for n in rules.protected_names if "." not in n} - set(rules.equivalence)
        self.protected_dotted = {n for n in rules.protected_names if "." in n}

    @staticmethod
    def _under(name: str, prefix: str) -> bool:
        return name == prefix or name.startswith(prefix + ".")

    def _forbidden(self, module: str, dotted_only: bool = False) -> str | None:
        """Why ``module`` is forbidden, unless the environment lifts the ban on it (or on a
        part of a forbidden package) by name in ``allowed_forbidden_modules``; the allow-list
        never does, and lifting "numpy" does not lift "numpy.ctypeslib"."""
        allowed = [a for a in self.lifted if self._under(module, a)]
        for name, why in self.forbidden.items():
            if dotted_only and "." not in name:
                continue
            if self._under(module, name) and not any(self._under(a, name) for a in allowed):
                return why
        return None

    def module_problem(self, module: str) -> tuple[str, str] | None:
        """(rule, message) when importing ``module`` is not allowed."""
        why = self._forbidden(module)
        if why:
            return "forbidden-module", f"module {module} is forbidden ({why})"
        allowed = any(self._under(module, a) for a in (*self.allowed_modules, *self.own))
        top = module.split(".")[0]
        if top.startswith("_") and top != "__future__" and not allowed:
            return "forbidden-module", f"module {module} is a private interpreter internal"
        if self.allowlist and not allowed:
            listed = ", ".join(sorted(self.allowed_modules)) or "none"
            return "module-not-allowed", f"module {module} is not among the allowed ({listed})"
        if self.packages is not None and not allowed and not _stdlib_or(top, self.packages):
            listed = ", ".join(self.packages)
            return "module-not-allowed", (
                f"module {module} is neither in the standard library nor among the packages "
                f"this environment declares ({listed})"
            )
        return None

    def attribute_problem(self, dotted: str) -> tuple[str, str] | None:
        """(rule, message) when reaching ``dotted`` (a module attribute path) is not allowed."""
        parts = dotted.split(".")
        for n in range(2, len(parts) + 1):
            prefix = ".".join(parts[:n])
            if any(fnmatchcase(prefix, p) for p in self.allowed_attributes):
                return None
            why = self._forbidden(prefix, dotted_only=True)
            if why:
                return "forbidden-module", f"{prefix} is forbidden ({why})"
            allow = ATTRIBUTE_ALLOWLISTS.get(parts[0])
            if n == 2 and allow is not None and parts[1] not in allow:
                return (
                    "forbidden-attribute",
                    f"{prefix} is not one of the {parts[0]} helpers a program may use "
                    f"({', '.join(sorted(allow))})",
                )
            for pattern, why in self.forbidden_attributes.items():
                if fnmatchcase(prefix, pattern):
                    return "forbidden-attribute", f"{prefix} is forbidden ({why})"
        return None


def own_modules(code: str) -> frozenset[str]:
    """The modules a multi-file program's files are to each other ("pkg/util.py": "pkg" and
    "pkg.util"); none for a program of one file, which imports nothing of its own."""
    if not edits.is_multi_file(code):
        return frozenset()
    names = set()
    for path in edits.split_files(code):
        parts = path.removesuffix(".py").split("/")
        if parts[-1] == "__init__":
            parts.pop()
        names.update(".".join(parts[:n]) for n in range(1, len(parts) + 1))
    return frozenset(names)


def _stdlib_or(top: str, packages: list[str]) -> bool:
    return top in sys.stdlib_module_names or top == "__future__" or top in packages


def _module_attribute(name: str) -> str:
    return f"reaches the module {name} as an attribute of another object (.{name})"


def analyse(code: str, policy: Policy) -> list[Finding]:
    """Every finding in ``code`` (which must parse), in line order."""
    tree = parse_program(code)
    analyser = _Analyser(code, policy)
    analyser.prepare(tree)
    analyser.visit(tree)
    return sorted(analyser.findings, key=lambda f: f.line)


class _Analyser(ast.NodeVisitor):
    def __init__(self, source: str, policy: Policy):
        self.source = source
        self.policy = policy
        # Local name -> the dotted path it stands for ("np" -> "numpy", "F" ->
        # "torch.nn.functional"); resolved flow-insensitively, which errs on the strict side.
        self.aliases: dict[str, str] = {}
        # Names bound by ``import``: certainly module objects.
        self.modules: set[str] = set()
        # Aliases of a module whose import is already reported: their uses add nothing.
        self.reported: set[str] = set()
        self.parents: dict[int, ast.AST] = {}
        # String statements: text that no code reads.
        self.docstrings: set[int] = set()
        # Assignment targets whose value is a non-string constant (settable switches).
        self.constant_targets: set[int] = set()
        # Path literals already judged as the path argument of a file function.
        self.paths: set[int] = set()
        self.findings: list[Finding] = []

    # --- set-up ---------------------------------------------------------------------------
    def prepare(self, tree: ast.AST) -> None:
        assigns: list[ast.Assign] = []
        for node in ast.walk(tree):
            for child in ast.iter_child_nodes(node):
                self.parents[id(child)] = node
            if isinstance(node, ast.Import):
                for a in node.names:
                    local = a.asname or a.name.split(".")[0]
                    self.aliases[local] = a.name if a.asname else local
                    self.modules.add(local)
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                for a in node.names:
                    if a.name != "*":
                        self.aliases[a.asname or a.name] = f"{node.module}.{a.name}"
            elif isinstance(node, ast.Assign):
                assigns.append(node)
            # A string statement (a docstring, a comment written as a string) is never used.
            if isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant):
                self.docstrings.add(id(node.value))
        # ``F = torch.nn.functional``: aliases of aliases, until nothing changes.
        changed = True
        while changed:
            changed = False
            for node in assigns:
                target = self.dotted(node.value)
                for t in node.targets:
                    if isinstance(t, ast.Name) and target and self.aliases.get(t.id) != target:
                        self.aliases[t.id] = target
                        changed = True
                    if isinstance(t, ast.Name) and isinstance(node.value, ast.Name):
                        if node.value.id in self.modules and t.id not in self.modules:
                            self.modules.add(t.id)
                            changed = True

    def dotted(self, node: ast.AST) -> str | None:
        """The dotted path an attribute chain rooted at an alias stands for, else None."""
        attrs: list[str] = []
        while isinstance(node, ast.Attribute):
            attrs.append(node.attr)
            node = node.value
        if isinstance(node, ast.Name) and node.id in self.aliases:
            return ".".join([self.aliases[node.id], *reversed(attrs)])
        return None

    def add(self, node: ast.AST, rule: str, message: str) -> None:
        segment = ast.get_source_segment(self.source, node) or ""
        code = " ".join(segment.split())
        if len(code) > 80:
            code = code[:77] + "..."
        self.findings.append(Finding(rule, getattr(node, "lineno", 0), code, message))

    # --- imports --------------------------------------------------------------------------
    def visit_Import(self, node: ast.Import) -> None:
        for a in node.names:
            problem = self.policy.module_problem(a.name)
            if problem is None and "." in a.name:
                problem = self.policy.attribute_problem(a.name)
            local = a.asname or a.name.split(".")[0]
            if problem:
                self.add(node, *problem)
                self.reported.add(local)
            self.check_binding(node, local)

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        module = node.module or ""
        problem = self.policy.module_problem(module) if module and not node.level else None
        if problem:
            self.add(node, *problem)
        for a in node.names:
            if a.name == "*":
                self.add(node, "star-import", f"`from {module} import *` hides what is used")
                continue
            local = a.asname or a.name
            if problem:
                self.reported.add(local)
            elif module and not node.level:
                full = f"{module}.{a.name}"
                sub = self.policy.module_problem(full) or self.policy.attribute_problem(full)
                if sub:
                    self.add(node, *sub)
                    self.reported.add(local)
            self.check_binding(node, local)

    # --- names ----------------------------------------------------------------------------
    def check_binding(self, node: ast.AST, name: str | None) -> None:
        if name and name in self.policy.protected:
            self.add(node, "protected-name", f"binds the protected name {name!r}")

    def visit_Name(self, node: ast.Name) -> None:
        if not isinstance(node.ctx, ast.Load):
            self.check_binding(node, node.id)
            return
        if node.id in REFLECTIVE_NAMES:
            self.add(node, "reflection", f"{node.id} reaches the interpreter's internals")
        elif node.id in DYNAMIC_CODE:
            self.add(node, "dynamic-code", f"{node.id}() runs code built at run time")
        elif node.id in REFLECTIVE_BUILTINS:
            self.add(node, "reflection", f"{node.id}() exposes namespaces or the debugger")
        elif node.id in NAME_ARGUMENTS and not self.called(node):
            self.add(node, "dynamic-attribute", f"{node.id} passed around as a value")
        elif node.id == "open" and not self.called(node):
            self.add(node, "file-access", "open passed around as a value")
        elif node.id in self.modules and node.id not in self.reported:
            parent = self.parents.get(id(node))
            # Attribute access, an alias, or getattr() & co. (whose names are checked).
            used = (
                isinstance(parent, ast.Attribute)
                or (isinstance(parent, ast.Assign) and parent.value is node)
                or (
                    isinstance(parent, ast.Call)
                    and isinstance(parent.func, ast.Name)
                    and parent.func.id in ("getattr", "hasattr", "setattr", "delattr")
                    and parent.args[:1] == [node]
                )
            )
            if not used:
                self.add(node, "module-escape", f"module {self.aliases[node.id]} used as a value")

    def visit_FunctionDef(self, node: ast.FunctionDef | ast.AsyncFunctionDef) -> None:
        self.check_binding(node, node.name)
        self.generic_visit(node)

    visit_AsyncFunctionDef = visit_FunctionDef

    def visit_ClassDef(self, node: ast.ClassDef) -> None:
        self.check_binding(node, node.name)
        self.generic_visit(node)

    def visit_arg(self, node: ast.arg) -> None:
        self.check_binding(node, node.arg)
        self.generic_visit(node)

    def visit_Global(self, node: ast.Global | ast.Nonlocal) -> None:
        for name in node.names:
            self.check_binding(node, name)

    visit_Nonlocal = visit_Global

    def visit_ExceptHandler(self, node: ast.ExceptHandler) -> None:
        self.check_binding(node, node.name)
        self.generic_visit(node)

    def visit_MatchAs(self, node: ast.MatchAs) -> None:
        self.check_binding(node, node.name)
        self.generic_visit(node)

    def visit_MatchStar(self, node: ast.MatchStar) -> None:
        self.check_binding(node, node.name)

    def visit_MatchMapping(self, node: ast.MatchMapping) -> None:
        self.check_binding(node, node.rest)
        self.generic_visit(node)

    # --- attributes -----------------------------------------------------------------------
    def visit_Assign(self, node: ast.Assign | ast.AnnAssign) -> None:
        value = node.value
        if isinstance(value, ast.UnaryOp) and isinstance(value.op, ast.USub):
            value = value.operand
        if isinstance(value, ast.Constant) and not isinstance(value.value, (str, bytes)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            self.constant_targets.update(id(t) for t in targets)
        self.generic_visit(node)

    visit_AnnAssign = visit_Assign

    def visit_Attribute(self, node: ast.Attribute) -> None:
        chain: list[ast.Attribute] = []
        current: ast.AST = node
        while isinstance(current, ast.Attribute):
            chain.append(current)
            current = current.value
        for link in chain:
            if link.attr in REFLECTIVE_ATTRIBUTES:
                self.add(node, "reflection", f".{link.attr} reaches frames, globals or code")
                return
            if link.attr in MODULES_AS_ATTRIBUTES:
                self.add(node, "forbidden-module", _module_attribute(link.attr))
                return
        if not isinstance(node.ctx, ast.Load):
            self.check_store(node)
        root = current
        if isinstance(root, ast.Name) and root.id in self.aliases:
            if root.id not in self.reported:
                dotted = self.dotted(node)
                problem = self.policy.attribute_problem(dotted) if dotted else None
                if problem:
                    self.add(node, *problem)
                elif dotted in FILE_FUNCTIONS and not self.called(node):
                    self.add(node, "file-access", f"{dotted} passed around as a value")
            return
        # Not rooted at a module: only the innermost value needs a look (calls, subscripts).
        self.visit(root)

    def check_store(self, node: ast.Attribute) -> None:
        """``x.attr = ...`` / ``del x.attr``: protected names, and patches of modules."""
        if node.attr in self.policy.protected:
            self.add(node, "protected-name", f"sets the protected attribute {node.attr!r}")
            return
        dotted = self.dotted(node)
        if dotted is None:
            return
        if dotted in self.policy.protected_dotted:
            self.add(node, "protected-name", f"patches the protected {dotted}")
        elif not (
            any(fnmatchcase(dotted, p) for p in SETTABLE) and id(node) in self.constant_targets
        ):
            self.add(node, "module-patch", f"changes {dotted}")

    # --- calls ----------------------------------------------------------------------------
    def called(self, node: ast.AST) -> bool:
        """Whether ``node`` is what a call calls (so its arguments get checked)."""
        parent = self.parents.get(id(node))
        return isinstance(parent, ast.Call) and parent.func is node

    def callee(self, func: ast.AST) -> str | None:
        if isinstance(func, ast.Name):
            return self.aliases.get(func.id, func.id)
        return self.dotted(func)

    def visit_Call(self, node: ast.Call) -> None:
        name = self.callee(node.func)
        if name in NAME_ARGUMENTS:
            self.check_names(node, name)
        if name in ("setattr", "delattr") and node.args:
            target = self.dotted(node.args[0]) or (
                self.aliases.get(node.args[0].id) if isinstance(node.args[0], ast.Name) else None
            )
            if target:
                self.add(node, "module-patch", f"{name}() on {target}")
        method = node.func.attr if isinstance(node.func, ast.Attribute) else None
        if name in FILE_FUNCTIONS:
            self.check_path(node, name, FILE_FUNCTIONS[name])
        elif name is None and method in FILE_METHODS:
            self.check_path(node, f".{method}", FILE_METHODS[method])
        self.generic_visit(node)

    def check_names(self, node: ast.Call, name: str) -> None:
        positions = NAME_ARGUMENTS[name]
        args = (
            node.args
            if positions is None
            else [node.args[i] for i in positions if i < len(node.args)]
        )
        for arg in args:
            if not (isinstance(arg, ast.Constant) and isinstance(arg.value, str)):
                self.add(node, "dynamic-attribute", f"{name}() with a computed attribute name")
                return
            for attr in arg.value.split("."):
                if attr in MODULES_AS_ATTRIBUTES:
                    self.add(node, "forbidden-module", _module_attribute(attr))
                    return
                if attr in self.policy.protected and name in ("setattr", "delattr"):
                    self.add(node, "protected-name", f"{name}() of the protected {attr!r}")
                    return
                if node.args and name in ("getattr", "hasattr", "setattr", "delattr"):
                    owner = self.dotted(node.args[0]) or (
                        self.aliases.get(node.args[0].id)
                        if isinstance(node.args[0], ast.Name)
                        else None
                    )
                    problem = self.policy.attribute_problem(f"{owner}.{attr}") if owner else None
                    if problem:
                        self.add(node, *problem)
                        return

    def check_path(self, node: ast.Call, name: str, position: int) -> None:
        path: ast.AST | None = node.args[position] if len(node.args) > position else None
        if path is None:
            path = next((k.value for k in node.keywords if k.arg in PATH_KEYWORDS), None)
        if path is None:
            return
        if not (isinstance(path, ast.Constant) and isinstance(path.value, str)):
            self.add(node, "file-access", f"{name}() with a path that is not a string literal")
            return
        self.paths.add(id(path))
        parts = path.value.replace("\\", "/").split("/")
        if _ABSOLUTE_PATH.match(path.value) or path.value.startswith("/") or ".." in parts:
            self.add(node, "file-access", f"{name}() outside the scratch directory")

    # --- literals -------------------------------------------------------------------------
    def visit_Constant(self, node: ast.Constant) -> None:
        if not isinstance(node.value, str) or id(node) in self.docstrings or id(node) in self.paths:
            return
        if _REFLECTIVE_TEXT.search(node.value):
            self.add(node, "reflection", "a string names a reflective attribute")
        elif _ABSOLUTE_PATH.match(node.value) and not isinstance(
            self.parents.get(id(node)), ast.JoinedStr
        ):
            self.add(node, "file-access", "an absolute path")


class StaticGuard(Guard):
    name: ClassVar[str] = "static"
    stage: ClassVar[str] = "static"
    description: ClassVar[str] = (
        "rejects network, processes, native code, signals, dynamic code, reflection, files "
        "outside scratch, monkeypatching and the environment's protected names"
    )

    def check_program(self, code: str, reference: str, env: Environment, variant: str) -> Verdict:
        rules, own = rules_for(env, variant), own_modules(code)
        try:
            found = analyse(code, Policy(rules, own))
        except (SyntaxError, ValueError):
            # It cannot run either; the syntax guard (or the smoke check) reports it.
            return self.ok()
        new = _added(found, _known(reference, rules.model_dump_json(), own), code)
        if not new:
            return self.ok()
        first = new[0]
        return self.reject(
            describe(new),
            rule=first.rule,
            line=first.line,
            violations=[
                {"rule": f.rule, "line": f.line, "code": f.code, "message": f.message} for f in new
            ],
        )


@functools.lru_cache(maxsize=64)
def _known(reference: str, rules_json: str, own: frozenset[str]) -> Counter[tuple[str, str, str]]:
    """The reference's findings (never changed by callers). Cached: every child of a run is
    checked against one reference, and analysing it again doubled the guard's cost."""
    try:
        policy = Policy(GuardRules.model_validate_json(rules_json), own)
        return Counter(f.key for f in analyse(reference, policy))
    except (SyntaxError, ValueError):
        return Counter()


def _added(found: list[Finding], known: Counter[tuple[str, str, str]], code: str) -> list[Finding]:
    """The findings beyond those of the reference; where a finding occurs more often than
    there, the occurrences inside EVOLVE blocks are the ones the candidate added."""
    try:
        starts = [code.count("\n", 0, a) + 1 for a, _ in edits.evolve_regions(code)]
        ends = [code.count("\n", 0, b) + 1 for _, b in edits.evolve_regions(code)]
    except EditError:
        starts, ends = [], []

    def outside(f: Finding) -> bool:
        return not any(s <= f.line < e for s, e in zip(starts, ends, strict=True))

    left = Counter(known)
    new = []
    # Occurrences in protected code absorb the reference's findings first.
    for f in sorted(found, key=lambda f: (not outside(f), f.line)):
        if left[f.key] > 0:
            left[f.key] -= 1
        else:
            new.append(f)
    return sorted(new, key=lambda f: f.line)


def describe(findings: list[Finding]) -> str:
    """The rejection as the agent reads it: each finding with its line, then why."""
    lines = [f"{len(findings)} forbidden construct(s):"]
    for f in findings[:MAX_LISTED]:
        lines.append(f"- line {f.line}: `{f.code}`: {f.message} [{f.rule}]")
    if len(findings) > MAX_LISTED:
        lines.append(f"- ... and {len(findings) - MAX_LISTED} more")
    for rule in dict.fromkeys(f.rule for f in findings):
        lines.append(f"Why [{rule}]: {RULES[rule]}.")
    return "\n".join(lines)


# --- registration ------------------------------------------------------------------------
@hookimpl
def register_guards(register: Any) -> None:
    register(StaticGuard())
