"""Isolation for hostile candidate programs: OS primitives, and the platform's handle on one
warm worker process.

One evaluation under the ``local`` evaluator::

    platform --socketpair, length-prefixed JSON--> worker (python -P -m progressbench.sandbox.worker FD)
    worker: imported env.preload and the plugins once; idles between jobs; child subreaper;
            as root, its own network namespace (loopback only) and mount namespace (the
            platform user's home hidden, private size-capped /tmp, /var/tmp, /dev/shm)
    per job: fork -> child (own session, rlimits, scratch as cwd and HOME, unprivileged uid;
             the worker polls the scratch directory's size)
    child --pipe, JSON--> worker --socket, JSON--> platform

Nothing crosses a process boundary as pickle: whatever a candidate produces is hostile data.
The worker side lives in ``progressbench.sandbox.worker``; this module holds what both sides share and
``WarmWorker``, the platform's end of one worker.
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import ctypes.util
import fcntl
import functools
import json
import os
import re
import shutil
import signal
import socket
import stat
import struct
import subprocess
import sys
import tempfile
import threading
import time
import weakref
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import IO, Any, Protocol

from progressbench.errors import UserError

# --- libc: prctl, unshare, capset ---------------------------------------------------------
PR_SET_PDEATHSIG = 1
PR_SET_DUMPABLE = 4
PR_SET_KEEPCAPS = 8
PR_SET_CHILD_SUBREAPER = 36
PR_SET_NO_NEW_PRIVS = 38
PR_CAP_AMBIENT = 47
PR_CAP_AMBIENT_RAISE = 2
CLONE_NEWNET = 0x40000000
CLONE_NEWNS = 0x00020000
MS_NOSUID, MS_NODEV, MS_REMOUNT, MS_BIND, MS_MOVE, MS_REC = 0x2, 0x4, 0x20, 0x1000, 0x2000, 0x4000
MS_RDONLY, MS_PRIVATE = 0x1, 1 << 18
CAP_DAC_READ_SEARCH = 2
_CAP_VERSION_3 = 0x20080522

_libc_path = ctypes.util.find_library("c")
_libc = ctypes.CDLL(_libc_path, use_errno=True) if sys.platform == "linux" else None


def prctl(option: int, arg: int = 0, arg3: int = 0) -> None:
    """Linux prctl(2); raises OSError on failure."""
    if _libc is None:
        raise OSError("prctl needs Linux")
    # Every argument as unsigned long: some options fail with EINVAL unless the unused
    # ones are zero in all 64 bits.
    args = (ctypes.c_ulong(arg), ctypes.c_ulong(arg3), ctypes.c_ulong(0), ctypes.c_ulong(0))
    if _libc.prctl(ctypes.c_int(option), *args) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"prctl({option}): {os.strerror(err)}")


def unshare(flags: int) -> None:
    if _libc is None:
        raise OSError("unshare needs Linux")
    if _libc.unshare(flags) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"unshare: {os.strerror(err)}")


def mount(source: str | None, target: str, fstype: str | None, flags: int, data: str = "") -> None:
    """Linux mount(2); raises OSError on failure."""
    if _libc is None:
        raise OSError("mount needs Linux")
    args = [x.encode() if x else None for x in (source, target, fstype, data)]
    if _libc.mount(args[0], args[1], args[2], ctypes.c_ulong(flags), args[3]) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"mount {target}: {os.strerror(err)}")


class _CapHeader(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class _CapData(ctypes.Structure):
    _fields_ = [
        ("effective", ctypes.c_uint32),
        ("permitted", ctypes.c_uint32),
        ("inheritable", ctypes.c_uint32),
    ]


def keep_only_capability(cap: int) -> None:
    """Reduce every capability set to ``cap`` alone and make it ambient, so that it also
    survives execve (a candidate's own ``python`` subprocess needs it as much as it does).
    Call after setuid with PR_SET_KEEPCAPS on."""
    if _libc is None:
        raise OSError("capset needs Linux")
    header = _CapHeader(_CAP_VERSION_3, 0)
    data = (_CapData * 2)()
    data[0].effective = data[0].permitted = data[0].inheritable = 1 << cap
    if _libc.capset(ctypes.byref(header), data) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"capset: {os.strerror(err)}")
    prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, cap)


def loopback_up() -> None:
    """Bring ``lo`` up in a fresh network namespace: local sockets (torch.distributed
    rendezvous, NCCL on one node) keep working while nothing outside is reachable."""
    siocgifflags, siocsifflags, iff_up = 0x8913, 0x8914, 0x1
    layout = "16sh22x"  # struct ifreq: name, flags, rest of the union
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        got = fcntl.ioctl(s, siocgifflags, struct.pack(layout, b"lo", 0))
        flags = struct.unpack(layout, got)[1]
        fcntl.ioctl(s, siocsifflags, struct.pack(layout, b"lo", flags | iff_up))


# --- the environment a worker and its candidates see ---------------------------------------
# An allow-list, not a deny-list: a secret under a name nobody thought of stays out.
ALLOWED_ENV = frozenset(
    {
        "PATH", "LANG", "LANGUAGE", "TZ", "TERM",
        "PYTHONPATH", "PYTHONHASHSEED", "PYTHONWARNINGS", "PYTHONDONTWRITEBYTECODE",
        "OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMEXPR_NUM_THREADS",
        "LD_LIBRARY_PATH", "HIP_VISIBLE_DEVICES", "ROCR_VISIBLE_DEVICES",
        "NVIDIA_VISIBLE_DEVICES", "NVIDIA_DRIVER_CAPABILITIES",
        "TORCH_CUDA_ARCH_LIST", "PYTORCH_CUDA_ALLOC_CONF",
        # Which plugins load, and where fetched data lives: both sides must agree on them.
        "PROGRESSBENCH_LOAD_PLUGINS", "PROGRESSBENCH_DATA",
    }
)  # fmt: skip
ALLOWED_ENV_PREFIXES = ("LC_", "CUDA_", "TRITON_", "NCCL_", "TORCHINDUCTOR_")
# Applied on top of the allow-list (and to names a user passes explicitly): credentials
# never pass, whatever the prefix.
SECRET_NAME = re.compile(
    r"KEY|TOKEN|SECRET|PASSW|PASSPHRASE|CREDENTIAL|AUTH|COOKIE|SESSION|PRIVATE|CERT"
    r"|DSN|DATABASE|_URL$|_URI$|^AWS_|^AZURE_|^GOOGLE_|^GCP_"
)


def is_secret_name(name: str) -> bool:
    return bool(SECRET_NAME.search(name.upper()))


def scrubbed_environ(source: Mapping[str, str], extra: Iterable[str] = ()) -> dict[str, str]:
    """The variables of ``source`` a sandbox may see: the allow-list plus ``extra`` names,
    minus anything named like a credential."""
    wanted = set(extra)
    return {
        name: value
        for name, value in source.items()
        if (name in ALLOWED_ENV or name.startswith(ALLOWED_ENV_PREFIXES) or name in wanted)
        and not is_secret_name(name)
    }


# --- the file system a worker and its candidates see --------------------------------------
# Size of the private /tmp and /var/tmp (memory-backed): room for a library's temporary files,
# not for a flood; the candidate's real workspace is its scratch directory.
PRIVATE_TMP_MB = 128
# The temporary directories this process mounted privately: the only ones
# ``clear_private_tmp`` may empty (never the host's).
_private_dirs: list[str] = []


def home_dirs() -> list[str]:
    """The platform user's home directories: where its credentials live (~/.config, ~/.netrc,
    ~/.cache, cloud CLIs' keys)."""
    import pwd

    found = [os.environ.get("HOME", "")]
    with contextlib.suppress(KeyError):
        found.append(pwd.getpwuid(os.getuid()).pw_dir)
    homes = {os.path.realpath(h) for h in found if h}
    return sorted(h for h in homes if h != "/" and os.path.isdir(h))


def _inside(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip("/") + "/")


def _outermost(paths: Iterable[str]) -> list[str]:
    """``paths`` without those inside another one of them."""
    out: list[str] = []
    for p in sorted({os.path.realpath(p) for p in paths}):
        if not any(_inside(p, q) for q in out):
            out.append(p)
    return out


def _overlay(target: str, keep: list[str], staging: Path, mode: str, size_mb: int) -> None:
    """Replace the directory ``target`` by a fresh tmpfs holding only the ``keep`` paths
    (bound back, read-only unless they are the worker's own directory). Built aside and moved
    in, since the originals vanish from view once ``target`` is covered."""
    stage = tempfile.mkdtemp(prefix="mount-", dir=staging)
    try:
        mount("tmpfs", stage, "tmpfs", MS_NOSUID | MS_NODEV, f"mode={mode},size={size_mb}m")
        for path in keep:
            inner = os.path.join(stage, os.path.relpath(path, target))
            if os.path.isdir(path):
                os.makedirs(inner, exist_ok=True)
            else:
                os.makedirs(os.path.dirname(inner), exist_ok=True)
                open(inner, "a").close()
            if _inside(str(staging), path):
                # The worker's own directory: writable, and without the stage mounted in it.
                mount(path, inner, None, MS_BIND)
            else:
                mount(path, inner, None, MS_BIND | MS_REC)
                mount(None, inner, None, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_REC)
        mount(stage, target, None, MS_MOVE)
    finally:
        with contextlib.suppress(OSError):
            os.rmdir(stage)


def private_filesystem(keep: Iterable[str], workdir: Path, shm_mb: int) -> dict[str, Any]:
    """Give this process (a worker, as root) and its future children their own view of the
    file system, in a new mount namespace: each home directory of the platform user becomes
    an empty directory holding only the ``keep`` paths that lie under it (the interpreter,
    the imported packages; read-only), and /tmp, /var/tmp and /dev/shm become private,
    size-capped tmpfs (``workdir``, the worker's own directory, stays reachable). Returns
    what is in effect; raises OSError when the host allows none of it."""
    unshare(CLONE_NEWNS)
    # Nothing done here may propagate back to the host's mounts.
    mount(None, "/", None, MS_REC | MS_PRIVATE)
    workdir = Path(os.path.realpath(workdir))
    wanted = _outermost([*keep, str(workdir)])
    done: dict[str, Any] = {"hidden": [], "private_tmp": False}
    for home in home_dirs():
        inside = [p for p in wanted if _inside(p, home)]
        if any(p == home for p in inside):
            continue  # the interpreter *is* the home directory: nothing to hide
        _overlay(home, inside, workdir, "0755", 1)
        done["hidden"].append(home)
    tmp = os.path.realpath(tempfile.gettempdir())
    # Code under /tmp (a CI checkout, a throw-away venv) is bound back as its whole top-level
    # folder: binding deep paths alone left lazily imported subpackages unreachable.
    in_tmp = [p for p in wanted if _inside(p, tmp)]
    tops = {
        p
        if _inside(str(workdir), p) or _inside(p, str(workdir))
        else os.path.join(tmp, os.path.relpath(p, tmp).split(os.sep)[0])
        for p in in_tmp
    }
    _overlay(tmp, _outermost(tops), workdir, "1777", PRIVATE_TMP_MB)
    _private_dirs.append(tmp)
    for path, size in (("/var/tmp", PRIVATE_TMP_MB), ("/dev/shm", shm_mb)):
        if os.path.isdir(path) and not _inside(str(workdir), path):
            mount("tmpfs", path, "tmpfs", MS_NOSUID | MS_NODEV, f"mode=1777,size={size}m")
            _private_dirs.append(path)
    done["private_tmp"] = True
    return done


def clear_private_tmp(workdir: Path) -> None:
    """Empty the private /tmp, /var/tmp and /dev/shm between jobs (``workdir`` stays); only
    the directories ``private_filesystem`` mounted in this process, never the host's."""
    keep = os.path.realpath(workdir)
    for root in _private_dirs:
        with contextlib.suppress(OSError):
            for entry in os.scandir(root):
                if _inside(keep, os.path.realpath(entry.path)):
                    continue
                if entry.is_dir(follow_symlinks=False):
                    remove_tree(Path(entry.path))
                else:
                    with contextlib.suppress(OSError):
                        os.unlink(entry.path)


def disk_usage(root: Path, max_entries: int) -> tuple[int, int]:
    """(bytes allocated, entries) under ``root``, stopping early past ``max_entries``;
    allocated blocks, so a sparse file counts for what it really occupies."""
    total = entries = 0
    stack = [str(root)]
    while stack and entries <= max_entries:
        with contextlib.suppress(OSError), os.scandir(stack.pop()) as it:
            for entry in it:
                entries += 1
                with contextlib.suppress(OSError):
                    info = entry.stat(follow_symlinks=False)
                    total += info.st_blocks * 512
                    if stat.S_ISDIR(info.st_mode):
                        stack.append(entry.path)
    return total, entries


# --- messages: 4-byte big-endian length, then UTF-8 JSON -----------------------------------
MAX_MESSAGE_BYTES = 256 * 1024 * 1024


def send_message(sock: socket.socket, message: dict[str, Any]) -> None:
    data = json.dumps(message).encode()
    sock.sendall(struct.pack(">I", len(data)) + data)


def _recv_exact(sock: socket.socket, size: int, deadline: float | None) -> bytes | None:
    buf = bytearray()
    while len(buf) < size:
        if deadline is not None:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("no answer in time")
            sock.settimeout(left)
        chunk = sock.recv(min(size - len(buf), 1 << 20))
        if not chunk:
            return None
        buf += chunk
    return bytes(buf)


def recv_message(sock: socket.socket, deadline: float | None = None) -> dict[str, Any] | None:
    """The next message, or None at end of stream; TimeoutError after ``deadline``
    (time.monotonic()); ValueError if the stream is not this protocol."""
    header = _recv_exact(sock, 4, deadline)
    if header is None:
        return None
    (size,) = struct.unpack(">I", header)
    if size > MAX_MESSAGE_BYTES:
        raise ValueError(f"message of {size} bytes exceeds the protocol limit")
    body = _recv_exact(sock, size, deadline)
    if body is None:
        return None
    message = json.loads(body)
    if not isinstance(message, dict):
        raise ValueError("message is not a JSON object")
    return message


# --- captured output ----------------------------------------------------------------------
def clip(text: str, limit: int) -> str:
    """The last ``limit`` characters of ``text``, saying how much was cut."""
    if len(text) <= limit:
        return text
    return f"[... {len(text) - limit} characters truncated ...]\n" + text[len(text) - limit :]


def read_tail(path: Path, limit: int) -> str:
    """The last ``limit`` characters of a (possibly huge) output file, saying how much was
    cut; never reads more than the tail."""
    try:
        with open(path, "rb") as f:
            size = f.seek(0, os.SEEK_END)
            start = max(0, size - 4 * limit)  # UTF-8: at most 4 bytes a character
            f.seek(start)
            text = f.read().decode("utf-8", errors="replace")
    except OSError:
        return ""
    if start == 0:
        return clip(text, limit)
    return f"[... output truncated: showing the last {limit} characters ...]\n" + text[-limit:]


# --- process clean-up ---------------------------------------------------------------------
def kill_uid(uid: int, gid: int) -> None:
    """SIGKILL every process running as ``uid``: the one sweep that also catches candidate
    processes that escaped their session and outlived their worker. kill(-1) from a helper
    that *is* that uid, so nothing else can be hit; a subprocess, because changing uid in the
    multithreaded platform would change it for every thread."""
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        subprocess.run(
            ["/bin/sh", "-c", "kill -s KILL -- -1"],
            user=uid,
            group=gid,
            extra_groups=[],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            timeout=10,
            check=False,
        )


def remove_tree(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)
    if path.exists():  # a same-uid candidate may have made its dirs unreadable: undo that
        with contextlib.suppress(OSError):
            os.chmod(path, 0o700)
        for top, dirs, _ in os.walk(path):
            for name in dirs:
                with contextlib.suppress(OSError):
                    os.chmod(os.path.join(top, name), 0o700)
        shutil.rmtree(path, ignore_errors=True)


def signal_name(signum: int) -> str:
    try:
        return signal.Signals(signum).name
    except ValueError:
        return f"signal {signum}"


# --- what this machine allows -------------------------------------------------------------
DEFAULT_UID_BASE = 64000
_MAX_SANDBOX_UID = 65533  # below nobody (65534); within the 16-bit range every system maps


def lease_uids(count: int, base: int = DEFAULT_UID_BASE) -> tuple[list[int], list[IO[str]]]:
    """Claim ``count`` sandbox uids no other progressbench process on this machine uses, so
    that killing "every process of uid N" can never hit another run's candidates. Each claim
    is an flock on a file in a root-only directory; it lasts until the returned files are
    closed (or the process dies)."""
    folder = Path(tempfile.gettempdir()) / "progressbench-uids"
    with contextlib.suppress(FileExistsError):
        os.mkdir(folder, 0o700)
    info = os.lstat(folder)
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != 0 or info.st_mode & 0o077:
        raise UserError(f"{folder} must be a directory owned by root with mode 0700")
    uids: list[int] = []
    locks: list[IO[str]] = []
    for uid in range(base, _MAX_SANDBOX_UID + 1):
        if len(uids) == count:
            break
        lock = open(folder / str(uid), "a")  # held open: the lock is the claim
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            lock.close()
            continue
        uids.append(uid)
        locks.append(lock)
    if len(uids) < count:
        for lock in locks:
            lock.close()
        raise UserError(f"no free sandbox uids in {base}..{_MAX_SANDBOX_UID}")
    return uids, locks


@functools.cache
def _probe_network_namespace() -> bool:
    code = "import ctypes,sys;sys.exit(ctypes.CDLL(None,use_errno=True).unshare(0x40000000)!=0)"
    try:
        return subprocess.run([sys.executable, "-S", "-c", code], timeout=20).returncode == 0
    except (OSError, subprocess.SubprocessError):
        return False


@functools.cache
def uid_can_read(uid: int, paths: tuple[str, ...]) -> bool:
    """Whether ``uid`` can run this interpreter and read ``paths``. When it cannot (a Python
    under /root, mode 0700), candidates keep CAP_DAC_READ_SEARCH: read access everywhere,
    still no write access and no access to other processes' memory or environment."""
    code = "import os,sys;sys.exit(not all(os.access(p,os.R_OK|os.X_OK) for p in sys.argv[1:]))"
    try:
        done = subprocess.run(
            [sys.executable, "-S", "-c", code, *paths],
            user=uid,
            group=uid,
            extra_groups=[],
            cwd="/",
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            timeout=20,
        )
    except (OSError, subprocess.SubprocessError):
        return False
    return done.returncode == 0


def import_paths() -> tuple[str, ...]:
    """The directories a worker and its children import from."""
    found = [sys.executable, *sys.path]
    return tuple(sorted({p for p in found if p and os.path.exists(p)}))


def _isolation_here() -> dict[str, Any]:
    """Set up a worker's private file system in this (throw-away) process and report what the
    candidate uid can then read; run by ``capabilities`` in a subprocess, as root."""
    import progressbench

    keep = {sys.prefix, sys.base_prefix, sys.exec_prefix, *import_paths()}
    keep.add(os.path.dirname(os.path.dirname(progressbench.__file__)))
    workdir = Path(tempfile.mkdtemp(prefix="progressbench-probe-"))
    try:
        done = private_filesystem(keep, workdir, 64)
    except OSError as exc:
        return {"private_fs": False, "error": str(exc)}
    finally:
        with contextlib.suppress(OSError):
            os.rmdir(workdir)
    paths = tuple(sorted(p for p in keep if os.path.exists(p)))
    return {"private_fs": True, **done, "read_all": not uid_can_read(DEFAULT_UID_BASE, paths)}


@functools.cache
def _probe_isolation() -> dict[str, Any]:
    code = "import json,progressbench.sandbox.core as s;print(json.dumps(s._isolation_here()))"
    try:
        done = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, timeout=60
        )
        return json.loads(done.stdout.strip().splitlines()[-1])
    except (OSError, subprocess.SubprocessError, ValueError, IndexError) as exc:
        return {"private_fs": False, "error": str(exc)}


def capabilities() -> dict[str, bool | str]:
    """Which protections this machine gives candidates (for ``progressbench doctor``), as
    the ``local`` evaluator would apply them with its default options."""
    linux = sys.platform == "linux"
    root = linux and os.geteuid() == 0
    has_prctl = _libc is not None and hasattr(_libc, "prctl")
    fs = _probe_isolation() if root else {"private_fs": False}
    if fs["private_fs"]:
        read_all = bool(fs["read_all"])
    else:
        read_all = root and not uid_can_read(DEFAULT_UID_BASE, import_paths())
    if not root:
        user = "the platform's own uid (run as root to drop candidates to their own uid)"
    elif read_all:
        user = f"uid {DEFAULT_UID_BASE}+slot, with read (not write) access to all files"
    else:
        user = f"uid {DEFAULT_UID_BASE}+slot, reading only world-readable files"
    if fs.get("hidden"):
        home = f"{', '.join(fs['hidden'])}: hidden (only the interpreter and packages remain)"
    elif root:
        home = f"readable as far as file modes allow ({fs.get('error') or 'no mount namespace'})"
    else:
        home = "readable: candidates share the platform's uid (run as root to hide it)"
    return {
        "platform": sys.platform,
        "rlimits": linux,
        "prctl": has_prctl,
        "subreaper": has_prctl,
        "pdeathsig": has_prctl,
        "no_new_privs": has_prctl,
        "pidfd": hasattr(os, "pidfd_open"),
        "uid_drop": root,
        "read_all": read_all,
        # Non-root: the platform turns itself non-dumpable so a same-uid candidate cannot
        # read its /proc/PID/environ (API keys).
        "platform_dumpable_off": has_prctl and not root,
        "network_namespace": root and _probe_network_namespace(),
        "mount_namespace": bool(fs["private_fs"]),
        "home_directory": home,
        "private_tmp": bool(fs.get("private_tmp")),
        "file_size_limit": "RLIMIT_FSIZE, 256 MB a file unless the environment sets file_mb",
        "disk_limit": "scratch size checked every 0.5 s: the environment's disk_mb, else half "
        "the free space",
        "process_limit": (
            "RLIMIT_NPROC per candidate uid"
            if root
            else "RLIMIT_NPROC, counted over all of the platform user's processes"
        ),
        # A candidate with the platform's uid may signal it (kill it); another uid may not.
        "can_signal_platform": not root,
        "candidate_user": user,
    }


# --- live evaluators, for the Ctrl-C path and interpreter exit -----------------------------
class _Closeable(Protocol):
    def close(self) -> None: ...


_live: weakref.WeakSet[_Closeable] = weakref.WeakSet()


def track(obj: _Closeable) -> None:
    """Remember ``obj`` so that ``close_all`` (called at exit, and by a Ctrl-C handler) stops
    its workers and candidates."""
    _live.add(obj)


def close_all() -> None:
    for obj in list(_live):
        with contextlib.suppress(Exception):
            obj.close()


atexit.register(close_all)


# --- the platform's end of one worker ------------------------------------------------------
class WorkerLost(Exception):
    """The worker died, stopped answering or was stopped while a job ran."""


class WorkerStartError(UserError):
    """A worker could not import the environment or its preload modules."""


class WarmWorker:
    """One long-lived worker process. Not thread-safe for ``run``: the evaluator hands each
    worker to one job at a time; ``stop`` may come from any thread."""

    def __init__(self, slot: int, init: dict[str, Any], environ: dict[str, str], home: Path):
        self.slot = slot
        self.uid: int | None = init.get("uid")
        self._init = init
        self._environ = environ
        self._home = home
        self._log = home / f"worker-{slot}.log"
        self._lock = threading.Lock()
        self._stopped = False
        self._proc: subprocess.Popen[bytes] | None = None
        self._sock: socket.socket | None = None
        # The process group of the candidate now running: killed from here if the worker
        # dies under it (its pdeathsig only reaches the direct child).
        self._candidate_pgid: int | None = None
        self.info: dict[str, Any] = {}

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    @property
    def alive(self) -> bool:
        return self._proc is not None and self._proc.poll() is None and self._sock is not None

    def spawn(self) -> None:
        with self._lock:
            if self._stopped:
                raise WorkerLost("the evaluator is closed")
            ours, theirs = socket.socketpair()
            with open(self._log, "ab") as log:
                self._proc = subprocess.Popen(
                    [
                        sys.executable,
                        "-P",
                        "-m",
                        "progressbench.sandbox.worker",
                        str(theirs.fileno()),
                    ],
                    pass_fds=(theirs.fileno(),),
                    env=self._environ,
                    cwd=self._home,
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    # Its own session: the terminal's Ctrl-C reaches the platform only, which
                    # then closes the evaluator in order.
                    start_new_session=True,
                )
            theirs.close()
            self._sock = ours
            send_message(ours, {"op": "init", **self._init})

    def wait_ready(self, deadline: float) -> None:
        """Wait for the worker's warm-up (imports) to finish; WorkerStartError if it fails."""
        sock = self._sock
        try:
            if sock is None:
                raise WorkerLost("the evaluator is closed")
            reply = recv_message(sock, deadline)
        except (OSError, ValueError, WorkerLost) as exc:
            reply = {"op": "failed", "error": f"{type(exc).__name__}: {exc}"}
        if reply is not None and reply.get("op") == "ready":
            self.info = reply
            return
        error = str(reply.get("error", "")).strip() if reply else ""
        self.kill()
        log = read_tail(self._log, 2000).strip()
        details = "\n".join(part for part in (error, log) if part)
        # The cause (a traceback's last line) first: it is what a one-line report shows.
        cause = details.splitlines()[-1] if details else "the worker exited during start-up"
        raise WorkerStartError(
            f"sandbox worker {self.slot} failed to start: {cause}"
            + (f"\n{details}" if details != cause else "")
        )

    def run(self, job: dict[str, Any], deadline: float) -> dict[str, Any]:
        """Send one job; return the worker's outcome dict. WorkerLost when the worker dies,
        breaks protocol or has not answered by ``deadline`` (a backstop: the worker enforces
        the job's own time limits)."""
        sock = self._sock
        if sock is None or self._proc is None:
            raise WorkerLost("the worker is not running")
        try:
            sock.settimeout(None)  # a timeout left from the last reply must not cut this send
            send_message(sock, {"op": "job", **job})
            while True:
                message = recv_message(sock, deadline)
                if message is None:
                    raise WorkerLost(self._death_reason())
                if message.get("op") == "started":
                    self._candidate_pgid = int(message["pgid"])
                elif message.get("op") == "done":
                    self._candidate_pgid = None
                    return dict(message["outcome"])
                else:
                    raise WorkerLost(f"the worker sent an unexpected message {message.get('op')!r}")
        except TimeoutError:
            self.kill()
            raise WorkerLost("the worker did not answer in time and was killed") from None
        except (OSError, ValueError, KeyError, TypeError) as exc:
            self.kill()
            raise WorkerLost(f"lost contact with the worker: {exc}") from None

    def _death_reason(self) -> str:
        if self._stopped:
            return "the evaluator was closed while the candidate ran"
        assert self._proc is not None
        try:
            code = self._proc.wait(timeout=1.0)
        except subprocess.TimeoutExpired:
            return "the worker closed its connection"
        how = f"killed by {signal_name(-code)}" if code < 0 else f"exited with code {code}"
        return f"the worker process died ({how}) while the candidate ran"

    def hang_up(self) -> None:
        """Tell the worker to stop (it kills its candidate and exits when its socket closes);
        wakes any thread blocked on this worker."""
        with self._lock:
            self._stopped = True
            if self._sock is not None:
                with contextlib.suppress(OSError):
                    self._sock.shutdown(socket.SHUT_RDWR)

    def stop(self, grace: float = 2.0) -> None:
        """Stop for good: hang up, give the worker ``grace`` seconds to clean up, then kill it
        and whatever it left."""
        self.hang_up()
        if self._proc is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                self._proc.wait(timeout=grace)
        self.kill()

    def kill(self) -> None:
        """SIGKILL the worker and every candidate process it may have left behind."""
        with self._lock:
            proc, sock, pgid = self._proc, self._sock, self._candidate_pgid
            self._sock = None
            self._candidate_pgid = None
        if sock is not None:
            sock.close()
        if proc is not None:
            with contextlib.suppress(OSError):
                proc.kill()
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=5)
        if pgid is not None:
            with contextlib.suppress(OSError):
                os.killpg(pgid, signal.SIGKILL)
        uid, gid = self._init.get("uid"), self._init.get("gid")
        if uid is not None and gid is not None:
            kill_uid(uid, gid)

    def restart(self, deadline: float) -> None:
        self.kill()
        self.spawn()
        self.wait_ready(deadline)
