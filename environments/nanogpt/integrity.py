"""Runtime protections around a candidate program, in the process that runs it.

Three mechanisms, each cheap enough to stay on for every evaluation:

- ``Sentinel``: a ``sys.addaudithook`` hook (it cannot be removed once added) that, while
  armed, refuses and records what a training script has no business doing: opening the
  harness's data files or writing its checkpoints, importing or reading the harness's own
  modules, inspecting frames or the garbage collector, tracing, ctypes, spawning processes.
- ``PatchWatch``: remembers which functions the harness relies on (the clock, torch, numpy,
  math, builtins, the harness's own modules) and reports any the program rebinds.
- ``state_digest``: a canonical hash of a model's tensors, so that a checkpoint can be proven
  to be the one the harness saved, and the model under test the one it loaded.

None of this makes hostile code in the same interpreter harmless (Python has no private
state); it turns the direct routes into recorded violations. The independent checks in
``verify`` (fresh process) are what make a result trustworthy.
"""

from __future__ import annotations

import _thread
import builtins
import hashlib
import math
import os
import sys
import sysconfig
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType, ModuleType
from typing import Any

import numpy as np
import torch

PACKAGE = __name__.rpartition(".")[0]
PACKAGE_DIR = str(Path(__file__).resolve().parent)
_SITE_DIRS = tuple({sysconfig.get_paths()[k] for k in ("purelib", "platlib")})
_STDLIB_DIRS = tuple({sysconfig.get_paths()[k] for k in ("stdlib", "platstdlib")})
_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_TRUNC
# Events whose target is a path (first argument), and those that also name a destination.
_PATH_EVENTS = {
    "os.remove", "os.rmdir", "os.truncate", "os.chmod", "os.chown", "os.utime",
    "shutil.rmtree", "os.listdir", "os.scandir",
}  # fmt: skip
_TWO_PATH_EVENTS = {"os.rename", "os.link", "os.symlink", "shutil.move", "shutil.copyfile"}
_REFLECTION = {
    "sys._getframe", "sys._current_frames", "gc.get_objects", "gc.get_referrers",
    "gc.get_referents", "sys.settrace", "sys.setprofile", "sys.addaudithook",
}  # fmt: skip
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
# Modules through which a program would reach frames indirectly (inspect.currentframe(),
# traceback.walk_stack()): for frame-returning events the caller is looked for past them.
_TRANSPARENT = ("inspect.py", "traceback.py")
# From ``Sentinel._check``: _check <- hook <- _dispatch <- the frame that raised the event.
_CALLER = 3


class Sentinel:
    """Audit-hook checks, armed only while program code may run (load, train, forward)."""

    def __init__(self, program: Path, protected: list[Path], checkpoints: Path | None):
        self.program = {str(program), str(Path(program).resolve())}
        self.program_paths = (os.path.realpath(program),)
        self.protected = tuple(os.path.realpath(p) for p in protected)
        self.checkpoints = os.path.realpath(checkpoints) if checkpoints else None
        self.violations: list[str] = []
        # Verification refuses reads of the checkpoint dir too (only the harness loads them).
        self.deny_reads = False
        self.armed = False
        self._suspended = 0
        self._busy = False
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
    def _is_program(self, frame: FrameType | None) -> bool:
        return frame is not None and frame.f_code.co_filename in self.program

    def _past_stdlib(self, frame: FrameType | None) -> FrameType | None:
        """The innermost frame outside the standard library (and this module's wrappers)."""
        while frame is not None:
            name = frame.f_code.co_filename
            in_stdlib = name.startswith(_STDLIB_DIRS) and not name.startswith(_SITE_DIRS)
            if not (in_stdlib or name.startswith("<frozen") or name == __file__):
                return frame
            frame = frame.f_back
        return None

    def _first_actor(self, frame: FrameType | None) -> str:
        """'program', 'harness' or 'library': the innermost frame that is not library code."""
        while frame is not None:
            name = frame.f_code.co_filename
            if name in self.program:
                return "program"
            if name.startswith(PACKAGE_DIR):
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
        return any(real == r or real.startswith(r + os.sep) for r in roots)

    def _refuse(self, what: str, exc: type[Exception] = PermissionError) -> None:
        self.violations.append(what)
        raise exc(f"refused by the nanogpt harness: {what}")

    def hook(self, event: str, args: tuple) -> None:
        if not self.armed or self._busy or self._suspended:
            return
        self._busy = True  # our own sys._getframe / realpath must not re-enter
        try:
            self._check(event, args)
        finally:
            self._busy = False

    def _check(self, event: str, args: tuple) -> None:
        ckpt = (self.checkpoints,) if self.checkpoints else ()
        if event == "open":
            path, mode, flags = args
            if self._under(path, self.protected):
                self._refuse(f"opened the harness's data file {os.fsdecode(path)}")
            writing = bool((flags or 0) & _WRITE_FLAGS) or any(c in (mode or "") for c in "wax+")
            if (writing or self.deny_reads) and self._under(path, ckpt):
                self._refuse(f"opened the harness's checkpoint area ({os.fsdecode(path)})")
            if (
                self._under(path, (PACKAGE_DIR,))
                and not self._under(path, self.program_paths)  # a baseline read in place
                and self._first_actor(sys._getframe(_CALLER)) == "program"
            ):
                self._refuse(f"read the harness's source ({os.fsdecode(path)})")
        elif event in _PATH_EVENTS or event in _TWO_PATH_EVENTS:
            paths = args[:2] if event in _TWO_PATH_EVENTS else args[:1]
            if any(self._under(p, self.protected + ckpt) for p in paths):
                self._refuse(f"{event} on the harness's files ({', '.join(map(str, paths))})")
        elif event == "import":
            name = args[0] or ""
            if name == PACKAGE or name.startswith(PACKAGE + "."):
                self._refuse(f"imported the harness module {name}", ImportError)
        elif event in _REFLECTION or (event == "object.__getattr__" and args[1] in _FRAME_ATTRS):
            caller = sys._getframe(_CALLER)
            # Not for tb_frame: traceback formats exceptions through it, harmlessly. A suspended
            # generator's frame, though, is what inspect.getgeneratorlocals() hands back.
            skip = event in _REFLECTION or args[1] != "tb_frame"
            while skip and caller is not None and caller.f_code.co_filename.endswith(_TRANSPARENT):
                caller = caller.f_back
            if self._is_program(caller):
                what = f"{event} {args[1]}" if event == "object.__getattr__" else event
                self._refuse(f"used reflection ({what}), which can reach the harness's state")
        elif event == "torch.library":
            caller = sys._getframe(_CALLER).f_back  # past the wrapper, then torch.library
            while caller is not None and caller.f_code.co_filename.startswith(_TORCH_LIBRARY):
                caller = caller.f_back
            if self._is_program(caller):
                self._refuse(
                    f"registered kernels for torch's own operators ({args[1]}, {args[0]}): the "
                    "harness computes the loss with them"
                )
        elif event.startswith("ctypes."):
            if self._is_program(sys._getframe(_CALLER)):
                self._refuse(f"called {event} directly")
        elif event in _CONCURRENCY:
            if self._is_program(self._past_stdlib(sys._getframe(_CALLER))):
                self._refuse(
                    f"started a thread or process ({event}): training must happen in train()"
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
    torch._C._dispatch_library = _dispatch_library


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
            found.append(f"{name}.{key}")
        return found


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
        h.update(t.reshape(-1).view(torch.uint8).numpy())
    return h.hexdigest()


# --- background work -------------------------------------------------------------------------
def _code_file(fn: Any) -> str | None:
    for attr in ("__func__", "func"):  # bound methods, functools.partial
        fn = getattr(fn, attr, fn)
    code = getattr(fn, "__code__", None)
    return code.co_filename if code is not None else None


def program_threads(before: set[int], program: Path) -> list[str]:
    """Threads started since ``before`` that run program code (training done in the
    background would escape the clock while the harness pauses it)."""
    files = {str(program), str(Path(program).resolve())}
    found = []
    for t in threading.enumerate():
        if t.ident in before or not t.is_alive():
            continue
        target = getattr(t, "_target", None)
        run = type(t).run
        if _code_file(target) in files or _code_file(run) in files or target in (exec, eval):
            found.append(t.name)
    return found
