"""Runtime protections around a candidate program, in the process that runs it.

Four mechanisms, each cheap enough to stay on for every evaluation:

- ``Sentinel``: a ``sys.addaudithook`` hook (it cannot be removed once added) that, while
  armed, refuses and records what a training script has no business doing: opening the
  harness's data files or writing its checkpoints, importing or reading the harness's own
  modules, inspecting frames or the garbage collector, tracing, ctypes, spawning processes,
  loading native code from outside the installed packages. Every frame that does not run
  code of the harness, the standard library or an installed package counts as the program's
  (code compiled from strings, files the program wrote, and code carrying such a file's name
  that the file does not compile to: ``trusted_code``).
- ``module_tensors``/``plain_state``: a model's weights read straight from the tensors, so
  that saving a checkpoint runs none of the program's code (hooks, overridden methods).
- ``PatchWatch``: remembers which functions the harness relies on (the clock, torch, numpy,
  math, builtins, the harness's own modules) and reports any the program rebinds.
- ``state_digest``: a canonical hash of a model's tensors, so that a checkpoint can be proven
  to be the one the harness saved, and the model under test the one it loaded.

None of this makes hostile code in the same interpreter harmless (Python has no private
state); it turns the direct routes into recorded violations. The independent checks in
``verify`` (fresh process) are what make a result trustworthy.
"""

from __future__ import annotations

import _imp
import _thread
import builtins
import getpass
import hashlib
import importlib.util
import json
import marshal
import math
import os
import re
import site
import sys
import sysconfig
import tempfile
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from types import CodeType, FrameType, ModuleType
from typing import Any

import numpy as np
import torch

import progressbench

from .losses import ProgramError, harness_ops

PACKAGE = __name__.rpartition(".")[0]
PACKAGE_DIR = str(Path(__file__).resolve().parent)
_SITE_DIRS = tuple({sysconfig.get_paths()[k] for k in ("purelib", "platlib")})
_STDLIB_DIRS = tuple({sysconfig.get_paths()[k] for k in ("stdlib", "platstdlib")})
# The platform's core (load_program runs the program from there).
_CORE_DIR = str(Path(progressbench.__file__ or "").resolve().parent)


def _dirs(paths: list[str]) -> tuple[str, ...]:
    """Each path as given and as its real path, ending in a separator (a prefix test must not
    match /usr2 for /usr); a frame's file name is compared as it stands, a library's real."""
    found = {os.path.join(q, "") for p in paths if p for q in (p, os.path.realpath(p))}
    return tuple(sorted(found))


def _installed_dirs() -> list[str]:
    paths = [*_SITE_DIRS, *_STDLIB_DIRS, sysconfig.get_paths()["data"]]
    # Not the user's site directory: it follows HOME, which the sandbox points at the scratch.
    paths += site.getsitepackages()
    return paths


# Where the code the sentinel trusts lies: a frame from any other file (or from a string:
# "<string>", "<timeit-src>") is the program's, whoever wrote or compiled it; and one that
# names a file here is trusted only if that file compiles to its code (``trusted_code``).
TRUSTED_CODE = _dirs([*_installed_dirs(), PACKAGE_DIR, _CORE_DIR])
# Where native libraries may come from: the installed packages, the interpreter and the
# system's libraries (read-only to a candidate); a bare name ("libcuda.so.1") is the dynamic
# loader's to resolve in the system's directories.
NATIVE_DIRS = _dirs([*_installed_dirs(), sys.prefix, sys.base_prefix, "/usr", "/lib", "/lib64"])
# The compilers' caches: torch.compile and Triton load the libraries they built there. Only
# their own code may write into them.
_COMPILER_CODE = _dirs(
    [str(Path(torch.__file__).parent / "_inductor")]
    + [os.path.join(d, "triton") for d in _SITE_DIRS]
)
# The temporary directories a run could leave something in for its verification to find.
TEMP_ROOTS = ("/tmp", "/var/tmp", "/dev/shm")


def compiler_caches() -> tuple[str, ...]:
    """torch.compile's and Triton's cache directories, as they resolve in this process (the
    sandbox points HOME and TMPDIR at the scratch directory)."""
    try:  # as torch._inductor.runtime.cache_dir_utils names it (a sandbox uid has no name)
        user = getpass.getuser()
    except (KeyError, OSError):
        user = f"uid_{os.getuid()}"
    user = re.sub(r'[\\/:*?"<>|]', "_", user)
    inductor = os.environ.get("TORCHINDUCTOR_CACHE_DIR") or os.path.join(
        tempfile.gettempdir(), f"torchinductor_{user}"
    )
    triton_home = os.environ.get("TRITON_HOME") or os.path.expanduser("~")
    triton = [os.path.join(triton_home, ".triton"), os.environ.get("TRITON_CACHE_DIR", "")]
    return _dirs([inductor, *triton])


_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_TRUNC
# Events whose target is a path (first argument), and those that also name a destination.
_PATH_EVENTS = {
    "os.remove", "os.rmdir", "os.truncate", "os.chmod", "os.chown", "os.utime",
    "shutil.rmtree", "os.listdir", "os.scandir",
}  # fmt: skip
_TWO_PATH_EVENTS = {"os.rename", "os.link", "os.symlink", "shutil.move", "shutil.copyfile"}
# Reflection refused whoever calls: a library function that calls what it is given (a
# decorator's wrapper, ``torch.no_grad()(f)()``) would otherwise make the program's call its
# own. No library needs them to train (torch's callers are debugging tools), but some set up
# when imported (filelock adds an audit hook), and threading installs in each thread it starts
# the trace or profile hook set before the program ran (a debugger's, coverage's).
_REFLECTION = {
    "sys._current_frames", "gc.get_objects", "gc.get_referrers", "gc.get_referents",
    "sys.settrace", "sys.setprofile", "sys.addaudithook",
}  # fmt: skip
_THREAD_HOOKS = {"sys.settrace": "_trace_hook", "sys.setprofile": "_profile_hook"}
# Refused to the program's own frames (libraries read their callers' frames: typing,
# namedtuple, torch.fx): sys._getframe, and these attributes.
# Plus a function's code (the one such read that raises an event): inspect.getclosurevars()
# and getmembers() read it on their way to a closure's cells, e.g. those of h.elapsed.
_FRAME_ATTRS = {"tb_frame", "gi_frame", "cr_frame", "ag_frame", "__code__"}
# Starting threads or processes: refused when the program asked for it, directly or through the
# standard library (ThreadPoolExecutor, multiprocessing); torch and triton may (compile pools).
_CONCURRENCY = {
    "_thread.start_new_thread", "subprocess.Popen", "os.system", "os.exec", "os.posix_spawn",
    "os.spawn", "os.fork", "os.forkpty",
}  # fmt: skip
# Registering a kernel for one of torch's own operators replaces it process-wide, below every
# Python name: the harness's loss (logsumexp, gather, sum, ...) would run the program's code.
_KERNEL_NAMESPACES = {"aten", "prims", "prim"}
_TORCH_LIBRARY = (
    str(Path(torch.__file__).parent / "library.py"),
    str(Path(torch.__file__).parent / "_library") + os.sep,
)
# torch's code that registers kernels for its own operators at run time, by design: the
# flash-attention backends (FA3, FA4) a program may activate on CUDA.
_KERNEL_BACKENDS = tuple(
    str(Path(torch.__file__).parent / "nn" / "attention" / f) for f in ("_fa3.py", "_fa4.py")
)
# Modules through which a program would reach frames indirectly (inspect.currentframe(),
# traceback.walk_stack()): for frame-returning events the caller is looked for past them.
_TRANSPARENT = ("inspect.py", "traceback.py")
_TORCH_DIR = os.path.join(os.path.dirname(os.path.realpath(torch.__file__)), "")
# torch.compile's guard builder evaluates the guard expressions it writes (``L['f'].__code__``)
# as code compiled from strings, called from these files while Dynamo compiles a frame.
_DYNAMO_DIR = "_dynamo" + os.sep
_GUARD_EVALUATORS = ("_guards.py", _DYNAMO_DIR)
_DYNAMO_COMPILE = _DYNAMO_DIR + "convert_frame.py"
# From ``Sentinel._check``: _check <- hook <- _dispatch <- the frame that raised the event.
_CALLER = 3
_NATIVE_SUFFIXES = (".so", ".pyd", ".dylib")


# --- where a frame's code comes from ----------------------------------------------------------
# A code object's file name is whatever its maker chose: compile(src, torch_file),
# code.replace(co_filename=...), _imp._fix_co_filename (in place, no audit event), a .pyc
# written with a chosen name. So code is trusted by what it is, when it acts: a code object
# of a trusted file must be one that file compiles to. Code objects compare by what they run
# (bytecode, constants, names, line table, ...), not by file name; the rest of the key covers
# what equality leaves out.
_FROZEN_ALIASES = {
    "importlib._bootstrap": "_frozen_importlib",
    "importlib._bootstrap_external": "_frozen_importlib_external",
}
_GENUINE: dict[str, frozenset[tuple[Any, ...]]] = {}
# Per code object (kept alive, so that its id is not reused) and file name: the verdict.
_VERDICTS: dict[tuple[int, str], tuple[CodeType, bool]] = {}


def _key(code: CodeType) -> tuple[Any, ...]:
    return (code, code.co_qualname, code.co_stacksize, code.co_cellvars, code.co_freevars)


def _module_code(filename: str) -> CodeType | None:
    """The module code the import system makes of ``filename``: a frozen module's, the bytecode
    cache's when it matches the source (the importer's test), or the source compiled; None for
    a file that is not Python source (a native library's name proves nothing)."""
    if filename.startswith("<frozen ") and filename.endswith(">"):
        name = filename[len("<frozen ") : -1]
        try:
            return _imp.get_frozen_object(_FROZEN_ALIASES.get(name, name))
        except ImportError:
            return None
    if not filename.endswith(".py"):
        return None
    try:
        st = os.stat(filename)
        with open(importlib.util.cache_from_source(filename), "rb") as f:
            data = f.read()
        fields = [int.from_bytes(data[i : i + 4], "little") for i in (4, 8, 12)]
        if data[:4] == importlib.util.MAGIC_NUMBER and fields == [
            0, int(st.st_mtime) & 0xFFFFFFFF, st.st_size & 0xFFFFFFFF
        ]:  # fmt: skip
            code = marshal.loads(data[16:])
            if isinstance(code, CodeType):
                return code
    except (OSError, ValueError, EOFError, TypeError):
        pass
    try:
        with open(filename, "rb") as f:
            return compile(f.read(), filename, "exec", dont_inherit=True)
    except (OSError, SyntaxError, ValueError):
        return None


def _genuine(filename: str) -> frozenset[tuple[Any, ...]]:
    """Every code object ``filename`` compiles to (its functions, classes, comprehensions)."""
    found = _GENUINE.get(filename)
    if found is None:
        top = _module_code(filename)
        keys, stack = set(), [top] if top is not None else []
        while stack:
            code = stack.pop()
            keys.add(_key(code))
            stack += [c for c in code.co_consts if isinstance(c, CodeType)]
        found = _GENUINE[filename] = frozenset(keys)
    return found


def trusted_code(code: CodeType) -> bool:
    """Whether ``code`` is the harness's, the core's, the standard library's or an installed
    package's: named after a file there, and one of the code objects that file compiles to.
    Code a library generates at run time under its own file's name (torch._dynamo's rewritten
    frames) is not: it counts as the program's, like code compiled from strings."""
    name = code.co_filename
    if not (name.startswith(TRUSTED_CODE) or name.startswith("<frozen ")):
        return False
    verdict = _VERDICTS.get((id(code), name))
    if verdict is None or verdict[0] is not code:
        verdict = _VERDICTS[(id(code), name)] = (code, _key(code) in _genuine(name))
    return verdict[1]


class Sentinel:
    """Audit-hook checks, armed only while program code may run (load, train, forward)."""

    def __init__(self, program: Path, protected: list[Path], checkpoints: Path | None):
        # The program and its bytecode cache (a baseline read in place lies in this package).
        real = os.path.realpath(program)
        self.program_paths: tuple[str, ...] = (
            real,
            os.path.realpath(importlib.util.cache_from_source(real)),
        )
        folder = progressbench.import_folder(Path(real))
        if folder is not None:  # a multi-file program: the modules its entry imports
            self.program_paths += (str(folder),)
        self.protected = tuple(os.path.realpath(p) for p in protected)
        self.checkpoints = os.path.realpath(checkpoints) if checkpoints else None
        self.caches = compiler_caches()
        self.violations: list[str] = []
        # Verification refuses reads of the checkpoint dir too (only the harness loads them),
        # and of the temporary directories outside ``temp_allowed`` (what the run left there).
        self.deny_reads = False
        # In a child scoring the probe set: no file may be written (what it computed must die
        # with it).
        self.deny_writes = False
        self.temp_allowed: tuple[str, ...] | None = None
        self.armed = False
        self._suspended = 0
        self._busy: set[int] = set()  # threads inside the hook (its own work raises events)
        self._thread_hooks: dict[str, Any] = {}
        _install(self)
        _guard_threads()

    # --- state ------------------------------------------------------------------------------
    @contextmanager
    def active(self) -> Iterator[None]:
        """Armed for the duration, with the harness's modules hidden from ``sys.modules``."""
        hidden = {
            n: m for n, m in sys.modules.items() if n == PACKAGE or n.startswith(PACKAGE + ".")
        }
        for name in hidden:
            del sys.modules[name]
        self._thread_hooks = {e: getattr(threading, a, None) for e, a in _THREAD_HOOKS.items()}
        self.armed = True
        try:
            yield
        finally:
            self.armed = False
            sys.modules.update(hidden)

    @contextmanager
    def suspended(self) -> Iterator[None]:
        """The harness's own file work (checkpoints) while armed."""
        self._suspended += 1
        try:
            yield
        finally:
            self._suspended -= 1

    # --- the hook ---------------------------------------------------------------------------
    @staticmethod
    def _is_program(frame: FrameType | None) -> bool:
        """Any code but the harness's, the standard library's and the installed packages'."""
        return frame is not None and not trusted_code(frame.f_code)

    def _past_stdlib(self, frame: FrameType | None) -> FrameType | None:
        """The innermost frame outside the standard library (and this module's wrappers)."""
        while frame is not None:
            name = frame.f_code.co_filename
            in_stdlib = name.startswith(_STDLIB_DIRS) and not name.startswith(_SITE_DIRS)
            if not (in_stdlib or name.startswith("<frozen ") or name == __file__):
                return frame
            if not trusted_code(frame.f_code):  # named after the stdlib, not its code
                return frame
            frame = frame.f_back
        return None

    def _first_actor(self, frame: FrameType | None) -> str:
        """'program', 'harness' or 'library': the innermost frame that is not library code."""
        while frame is not None:
            if self._is_program(frame):
                return "program"
            if frame.f_code.co_filename.startswith(PACKAGE_DIR):
                return "harness"
            frame = frame.f_back
        return "library"

    def _under(self, path: Any, roots: tuple[str, ...]) -> bool:
        if isinstance(path, int) or path is None or not roots:
            return False
        try:
            real = os.path.realpath(os.fsdecode(path))
        except (TypeError, ValueError):
            return False
        return any(real == r.rstrip(os.sep) or real.startswith(os.path.join(r, "")) for r in roots)

    def _refuse(self, what: str, exc: type[Exception] = PermissionError) -> None:
        self.violations.append(what)
        raise exc(f"refused by the nanogpt harness: {what}")

    def hook(self, event: str, args: tuple) -> None:
        # Per thread: our own sys._getframe, realpath and compile must not re-enter, and
        # another thread's events are checked meanwhile.
        thread = _thread.get_ident()
        if not self.armed or thread in self._busy or self._suspended:
            return
        self._busy.add(thread)
        try:
            self._check(event, args)
        finally:
            self._busy.discard(thread)

    def _check(self, event: str, args: tuple) -> None:
        if event == "open":
            self._check_open(*args)
        elif event in _PATH_EVENTS or event in _TWO_PATH_EVENTS:
            self._check_paths(event, args)
        elif event == "import":
            name = args[0] or ""
            if name == PACKAGE or name.startswith(PACKAGE + "."):
                self._refuse(f"imported the harness module {name}", ImportError)
            # An extension module's import names its file (raised by _imp.create_dynamic).
            if len(args) > 1 and isinstance(args[1], str) and args[1].endswith(_NATIVE_SUFFIXES):
                self._check_native(args[1], ImportError)
        elif event in _REFLECTION:
            if not self._library_setup(event):
                self._refuse(
                    f"used reflection ({event}), which can reach the harness's state (refused "
                    "whoever calls it)"
                )
        elif event == "sys._getframe" or (
            event == "object.__getattr__" and args[1] in _FRAME_ATTRS
        ):
            caller: FrameType | None = sys._getframe(_CALLER)
            # Not for tb_frame: traceback formats exceptions through it, harmlessly. A suspended
            # generator's frame, though, is what inspect.getgeneratorlocals() hands back.
            skip = event == "sys._getframe" or args[1] != "tb_frame"
            while skip and caller is not None and self._in(caller, _TRANSPARENT, suffix=True):
                caller = caller.f_back
            if self._is_program(caller) and not _guard_expression(caller):
                what = f"{event} {args[1]}" if event == "object.__getattr__" else event
                self._refuse(f"used reflection ({what}), which can reach the harness's state")
        elif event == "torch.library":
            if self._program_registers() and not self._library_setup(event):
                self._refuse(
                    f"registered kernels for torch's own operators ({args[1]}, {args[0]}): the "
                    "harness computes the loss with them"
                )
        elif event.startswith("ctypes."):
            # Whoever calls (torch.ops.load_library and its aliases call it from torch's code):
            # native code can reach anything in the process, the clock included.
            if event == "ctypes.dlopen" and args[0] and os.sep in os.fsdecode(args[0]):
                self._check_native(os.fsdecode(args[0]), PermissionError)
            if self._is_program(sys._getframe(_CALLER)):
                self._refuse(f"called {event} directly")
        elif event in _CONCURRENCY:
            if self._is_program(self._past_stdlib(sys._getframe(_CALLER))):
                self._refuse(
                    f"started a thread or process ({event}): training must happen in train()"
                )

    def _check_open(self, path: Any, mode: Any, flags: Any) -> None:
        ckpt = (self.checkpoints,) if self.checkpoints else ()
        if self._under(path, self.protected):
            self._refuse(f"opened the harness's data file {os.fsdecode(path)}")
        writing = bool((flags or 0) & _WRITE_FLAGS) or any(c in (mode or "") for c in "wax+")
        if writing and self.deny_writes:
            self._refuse(f"wrote {os.fsdecode(path)} while the harness scored the probe set")
        if (writing or self.deny_reads) and self._under(path, ckpt):
            self._refuse(f"opened the harness's checkpoint area ({os.fsdecode(path)})")
        if writing and self._under(path, self.caches) and not self._compiler_writes():
            self._refuse(f"wrote into a compiler's cache ({os.fsdecode(path)})")
        if (
            self.temp_allowed is not None
            and self._under(path, TEMP_ROOTS)
            and not self._under(path, self.temp_allowed)
        ):
            self._refuse(
                f"opened {os.fsdecode(path)} in a temporary directory during verification "
                "(what the run left there)"
            )
        if (
            self._under(path, (PACKAGE_DIR,))
            and not self._under(path, self.program_paths)  # a baseline read in place
            and self._first_actor(sys._getframe(_CALLER + 1)) == "program"
        ):
            self._refuse(f"read the harness's source ({os.fsdecode(path)})")

    def _check_paths(self, event: str, args: tuple) -> None:
        ckpt = (self.checkpoints,) if self.checkpoints else ()
        paths = args[:2] if event in _TWO_PATH_EVENTS else args[:1]
        if self.deny_writes and event not in ("os.listdir", "os.scandir"):
            self._refuse(f"{event} while the harness scored the probe set")
        if any(self._under(p, self.protected + ckpt) for p in paths):
            self._refuse(f"{event} on the harness's files ({', '.join(map(str, paths))})")
        if event in _TWO_PATH_EVENTS and self._under(args[1], self.caches):
            if not self._compiler_writes():
                self._refuse(f"{event} into a compiler's cache ({args[1]})")
        if self.temp_allowed is not None and any(
            self._under(p, TEMP_ROOTS) and not self._under(p, self.temp_allowed) for p in paths
        ):
            self._refuse(f"{event} in a temporary directory during verification ({paths[0]})")

    def _program_registers(self) -> bool:
        """Whether a kernel for torch's own operators is registered for the program: the first
        frame past torch.library is the program's, or program code lies further out and that
        frame is not one of torch's attention backends (which install their CUDA kernels when
        the program activates one). A decorator's wrapper handed ``Library`` would otherwise
        make the program's registration torch's (``torch.no_grad()(Library)("aten", "IMPL")``)."""
        frame: FrameType | None = sys._getframe(_CALLER + 1).f_back  # past our wrapper
        while frame is not None and self._in(frame, _TORCH_LIBRARY):
            frame = frame.f_back
        if frame is None or self._in(frame, _KERNEL_BACKENDS):
            return False
        while frame is not None and not self._is_program(frame):
            frame = frame.f_back
        return frame is not None

    def _compiler_writes(self) -> bool:
        """Whether torch.compile's or Triton's own code is writing: the innermost frame that is
        not a helper of theirs (the standard library, filelock taking the cache's lock) is
        theirs, and no program code comes first."""
        frame: FrameType | None = sys._getframe(_CALLER + 2)
        while frame is not None and trusted_code(frame.f_code):
            if frame.f_code.co_filename.startswith(_COMPILER_CODE):
                return True
            frame = frame.f_back
        return False

    @staticmethod
    def _in(frame: FrameType, names: tuple[str, ...], suffix: bool = False) -> bool:
        """Whether the frame runs code of a file whose name starts (ends) with one of
        ``names``: named so, and that file's own code."""
        name = frame.f_code.co_filename
        named = name.endswith(names) if suffix else name.startswith(names)
        return named and trusted_code(frame.f_code)

    def _library_setup(self, event: str) -> bool:
        """Whether library code asks on its own: threading installing, in a thread it starts,
        the hook set before the program ran; or a library module being imported (every frame
        out to the import system is library code)."""
        frame: FrameType | None = sys._getframe(_CALLER + 1)
        if event in _THREAD_HOOKS and frame is not None and self._in(frame, (threading.__file__,)):
            return getattr(threading, _THREAD_HOOKS[event], None) is self._thread_hooks.get(event)
        while frame is not None and trusted_code(frame.f_code):
            if frame.f_code.co_filename == "<frozen importlib._bootstrap>" and (
                frame.f_code.co_name == "_call_with_frames_removed"
            ):
                return True
            frame = frame.f_back
        return False

    def _check_native(self, path: str, exc: type[Exception]) -> None:
        real = os.path.realpath(path)
        if not real.startswith(NATIVE_DIRS + self.caches):
            self._refuse(
                f"loaded the native library {path}, which is not part of an installed package",
                exc,
            )


_SENTINELS: list[Sentinel] = []


def _dispatch(event: str, args: tuple) -> None:
    if _SENTINELS:
        _SENTINELS[-1].hook(event, args)


def _guard_threads() -> None:
    """Python 3.11 raises no audit event when a thread starts, so the one function every
    thread starts through (threading calls it by this module-global name) is wrapped, and
    raises the event the sentinel checks. The wrapper is watched like any patch point."""
    _guard_kernels()
    if getattr(_thread.start_new_thread, "_nanogpt_guard", False):
        return
    original = _thread.start_new_thread

    def start_new_thread(function: Any, args: tuple, kwargs: dict | None = None) -> int:
        _dispatch("_thread.start_new_thread", (function, args, kwargs))
        return original(function, args, kwargs) if kwargs is not None else original(function, args)

    start_new_thread._nanogpt_guard = True  # type: ignore[attr-defined]
    _thread.start_new_thread = start_new_thread
    threading._start_new_thread = start_new_thread  # type: ignore[attr-defined]


def _guard_kernels() -> None:
    """torch.library registers kernels through ``torch._C._dispatch_library`` (no audit event):
    wrapped, to raise one the sentinel checks for torch's own namespaces. Watched as a patch
    point too."""
    if getattr(torch._C._dispatch_library, "_nanogpt_guard", False):
        return
    original = torch._C._dispatch_library

    def _dispatch_library(kind: Any, ns: Any, *args: Any, **kwargs: Any) -> Any:
        if ns in _KERNEL_NAMESPACES and str(kind).endswith(("IMPL", "FRAGMENT")):
            _dispatch("torch.library", (kind, ns))
        return original(kind, ns, *args, **kwargs)

    _dispatch_library._nanogpt_guard = True  # type: ignore[attr-defined]
    torch._C._dispatch_library = _dispatch_library  # type: ignore[assignment]


def _install(sentinel: Sentinel) -> None:
    if not _SENTINELS:
        sys.addaudithook(_dispatch)
    _SENTINELS.append(sentinel)


# --- rebinding of the functions the harness relies on ----------------------------------------
def _watched() -> dict[str, Any]:
    owners: dict[str, Any] = {
        "time": time,
        "math": math,
        "builtins": builtins,
        "numpy": np,
        "torch": torch,
        "torch.nn.functional": torch.nn.functional,
        "torch.Tensor": torch.Tensor,
        "torch._C.TensorBase": torch._C.TensorBase,
        "torch.nn.Module": torch.nn.Module,
        "torch.optim.Optimizer": torch.optim.Optimizer,
        "torch.autograd": torch.autograd,
    }
    for name, module in list(sys.modules.items()):
        if name == PACKAGE or name.startswith(PACKAGE + "."):
            owners[name] = module
    return owners


# Only the names the harness calls: their module dicts also hold state that changes legitimately.
_SELECTED = {
    "torch.cuda": ("synchronize", "Event", "max_memory_allocated", "max_memory_reserved"),
    "torch.distributed": ("all_reduce", "broadcast", "barrier"),
    "_thread": ("start_new_thread",),
    "torch._C": ("_dispatch_library",),
    "threading": ("_start_new_thread",),
}


def _entries(owner: Any, own_module: bool) -> dict[str, Any]:
    items = vars(owner).items()
    if own_module:  # everything in the harness's modules, data included
        return dict(items)
    return {
        k: v
        for k, v in items
        if callable(v) or isinstance(v, (property, classmethod, staticmethod))
    }


class PatchWatch:
    """A snapshot of watched attributes; ``changes()`` names those rebound or deleted since."""

    def __init__(self) -> None:
        self._snap: dict[tuple[str, str], Any] = {}
        for name, owner in _watched().items():
            own = isinstance(owner, ModuleType) and owner.__name__.startswith(PACKAGE)
            for key, value in _entries(owner, own).items():
                self._snap[(name, key)] = value
        for name, keys in _SELECTED.items():
            module = sys.modules.get(name)
            for key in keys:
                if module is not None and hasattr(module, key):
                    self._snap[(name, key)] = getattr(module, key)
        self._owners = {name: owner for name, owner in _watched().items()}
        self._owners.update({n: sys.modules[n] for n in _SELECTED if n in sys.modules})

    def changes(self) -> list[str]:
        found = []
        for (name, key), value in self._snap.items():
            current = vars(self._owners[name]).get(key, _MISSING)
            if current is value:
                continue
            if (name, key) in _REWRAPPED_BY_TORCH and getattr(
                current, "__wrapped__", None
            ) is value:
                continue
            if _dynamo_wrapper_of(current, value):
                continue
            found.append(f"{name}.{key}")
        return found


def _dynamo_wrapper_of(current: Any, original: Any) -> bool:
    """``current`` is a wrapper torch.compile installs around ``original`` when it first
    compiles (Dynamo tags every module it will see created: ``nn.Module.__init__`` and
    ``__setstate__`` call the originals, then record the module): genuine torch._dynamo
    code, closing over the original."""
    code = getattr(current, "__code__", None)
    if not isinstance(code, CodeType) or not _torch_file(code, (_DYNAMO_DIR,)):
        return False
    cells = getattr(current, "__closure__", None) or ()
    return any(_cell_value(c) is original for c in cells)


def _cell_value(cell: Any) -> Any:
    try:
        return cell.cell_contents
    except ValueError:  # an empty cell
        return _MISSING


_MISSING = object()
# Rebound by torch itself when torch._dynamo is first imported (the profiler imports it).
_REWRAPPED_BY_TORCH = {("torch", "manual_seed")}


# --- checkpoints -----------------------------------------------------------------------------
def state_digest(state: dict[str, torch.Tensor]) -> str:
    """sha256 over names, dtypes, shapes and raw bytes of every tensor, in name order."""
    h = hashlib.sha256()
    for key in sorted(state):
        t = state[key].detach().to("cpu").contiguous()
        h.update(f"{key}|{t.dtype}|{tuple(t.shape)}|".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().data)
    return h.hexdigest()


_getattribute = object.__getattribute__
_MAX_DEPTH = 64


def module_tensors(model: Any, buffers: bool = True) -> dict[str, torch.Tensor]:
    """The tensors ``state_dict()`` would hold (parameters, persistent buffers, by dotted name),
    read from the modules' own dicts without calling a method a program can override or a hook
    it registered: a checkpoint is taken while the clock is paused, and no program code may
    run then. (A module's ``get_extra_state`` is program code: extra state is not saved.)"""
    found: dict[str, torch.Tensor] = {}
    stack: list[tuple[str, Any, int]] = [("", model, 0)]
    while stack:
        prefix, module, depth = stack.pop()
        if not issubclass(type(module), torch.nn.Module) or depth > _MAX_DEPTH:
            raise ProgramError(f"the model's {prefix or 'root'} is not a plain module tree")
        own = [_plain_dict(module, "_parameters")]
        if buffers:
            skip = _getattribute(module, "_non_persistent_buffers_set")
            if type(skip) is not set:
                raise ProgramError("a module's _non_persistent_buffers_set is not a set")
            own.append(
                {k: b for k, b in dict.items(_plain_dict(module, "_buffers")) if k not in skip}
            )
        for tensors in own:
            for name, tensor in dict.items(tensors):
                if tensor is None:
                    continue
                if not issubclass(type(tensor), torch.Tensor):
                    raise ProgramError(f"{prefix}{name} is a {type(tensor).__name__}, not a tensor")
                found[prefix + str(name)] = tensor
        children = list(dict.items(_plain_dict(module, "_modules")))
        for name, child in reversed(children):
            if child is not None:
                stack.append((f"{prefix}{name}.", child, depth + 1))
    return found


def _plain_dict(module: Any, name: str) -> dict[str, Any]:
    value = _getattribute(module, name)
    if type(value) is not dict:  # a subclass's items() would be program code
        raise ProgramError(f"a module's {name} is a {type(value).__name__}, not a dict")
    return value


_python_key = torch._C.DispatchKey.Python


def plain_copy(tensor: torch.Tensor, device: str | torch.device = "cpu") -> torch.Tensor:
    """A plain ``torch.Tensor`` copy, made by torch's own methods (no subclass's)."""
    if torch._C._dispatch_keys(tensor).has(_python_key):
        raise ProgramError(
            f"the model holds a tensor subclass with its own dispatch ({type(tensor).__name__}); "
            "its weights must be plain tensors or parameters"
        )
    with harness_ops():
        copy = torch.Tensor.to(torch.Tensor.detach(tensor), device, copy=True)
    assert type(copy) is torch.Tensor
    return copy


def plain_state(model: Any, device: str | torch.device = "cpu") -> dict[str, torch.Tensor]:
    """``module_tensors``, copied into plain tensors on ``device``."""
    return {k: plain_copy(t, device) for k, t in module_tensors(model).items()}


# --- another process ------------------------------------------------------------------------
_times = os.times  # bound before any program code runs, as the harness's clocks are
# CPU seconds of the children ``forked`` reaped in this process: the harness's own processes,
# which the sandbox's count of the phase's CPU includes (``harness_cpu_s``).
_forked_cpu_s = [0.0]


def count_child(usage: Any) -> None:
    """Account for a child the harness started and has reaped (its ``wait4`` usage)."""
    _forked_cpu_s[0] += usage.ru_utime + usage.ru_stime


def harness_cpu_s() -> float:
    """The CPU this process and the children ``forked`` started have used: what the harness
    accounts for. The sandbox counts every process of the phase; the difference ran in
    processes the harness did not start (an escape from the training clock)."""
    t = _times()
    return t.user + t.system + _forked_cpu_s[0]


def _torch_file(code: CodeType, parts: tuple[str, ...]) -> bool:
    """Genuine torch code (``trusted_code``) from one of ``parts`` of the torch package."""
    name = os.path.realpath(code.co_filename)
    return (
        name.startswith(_TORCH_DIR)
        and name[len(_TORCH_DIR) :].startswith(parts)
        and trusted_code(code)
    )


def _guard_expression(frame: FrameType | None) -> bool:
    """``frame`` is one of Dynamo's guard expressions being evaluated while it compiles a
    frame: string code called by genuine guard-building code, with Dynamo's genuine compile
    step (convert_frame) between it and the nearest program frame. A program that calls the
    guard builder itself has no compile step there, so its strings stay the program's."""
    if frame is None or frame.f_back is None:
        return False
    if not _torch_file(frame.f_back.f_code, _GUARD_EVALUATORS):
        return False
    outer = frame.f_back
    while outer is not None and trusted_code(outer.f_code):
        if _torch_file(outer.f_code, (_DYNAMO_COMPILE,)):
            return True
        outer = outer.f_back
    return False


def forked(fn: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """``fn()`` in a forked child, its dict sent back as JSON (or ``{"error": ...}``): work that
    runs program code and must leave nothing behind in this process."""
    read_end, write_end = os.pipe()
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid == 0:  # the child never leaves this block
        try:
            os.close(read_end)
            try:
                payload = json.dumps(fn())
            except BaseException as exc:
                lines = traceback.format_exception_only(type(exc), exc)
                payload = json.dumps({"error": "".join(lines).strip()[-2000:]})
            for sentinel in _SENTINELS:
                sentinel.armed = False
            with os.fdopen(write_end, "w") as out:
                out.write(payload)
            sys.stdout.flush()
            sys.stderr.flush()
        finally:
            os._exit(0)
    os.close(write_end)
    with os.fdopen(read_end) as inp:
        text = inp.read()
    _, status, usage = os.wait4(pid, 0)
    count_child(usage)
    if not text:
        return {"error": f"the child process died (wait status {status})"}
    found: dict[str, Any] = json.loads(text)
    return found


# --- background work -------------------------------------------------------------------------
def _runs_program_code(fn: Any, files: set[str]) -> bool:
    for attr in ("__func__", "func"):  # bound methods, functools.partial
        fn = getattr(fn, attr, fn)
    code = getattr(fn, "__code__", None)
    return isinstance(code, CodeType) and (code.co_filename in files or not trusted_code(code))


def program_threads(before: set[int], program: Path) -> list[str]:
    """Threads started since ``before`` that run program code (training done in the
    background would escape the clock while the harness pauses it): the program's file, or
    any code that is not the harness's, the standard library's or an installed package's."""
    files = {str(program), str(Path(program).resolve())}  # a baseline run in place included
    found = []
    for t in threading.enumerate():
        if t.ident in before or not t.is_alive():
            continue
        target = getattr(t, "_target", None)
        runs = [_runs_program_code(fn, files) for fn in (target, type(t).run)]
        if any(runs) or target in (exec, eval):
            found.append(t.name)
    return found
