"""The file system a worker and its candidates see: the private mount namespace (home
directories hidden, private size-capped noexec /tmp, /var/tmp and /dev/shm, every other mount
read-only), each job's scratch directory (a tmpfs of its own, capped by the kernel), emptying
the private directories between phases, measuring a scratch directory where there is no
tmpfs, and removing a tree a candidate may have booby-trapped.

The order of the mounts is part of the isolation (the comments say why where it matters);
one module keeps it in one reading.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import stat
import sys
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from progressbench.sandbox.syscalls import (
    CLONE_NEWNS,
    MS_BIND,
    MS_MOVE,
    MS_NODEV,
    MS_NOEXEC,
    MS_NOSUID,
    MS_PRIVATE,
    MS_RDONLY,
    MS_REC,
    MS_REMOUNT,
    mount,
    umount,
    unshare,
)

# Size of the private /tmp and /var/tmp (memory-backed): room for a library's temporary files,
# not for a flood; the candidate's real workspace is its scratch directory.
PRIVATE_TMP_MB = 128
# Entries a private temporary directory or a scratch directory may hold: each inode costs
# kernel memory that the tmpfs size does not count.
MAX_FILES = 100_000
# Per-mount flags a read-only remount keeps (it would clear them otherwise).
_KEPT_FLAGS = {"nosuid": MS_NOSUID, "nodev": MS_NODEV, "noexec": MS_NOEXEC}


@dataclass(frozen=True)
class _PrivateDir:
    """A temporary directory this process covered with a tmpfs of its own: the only kind
    ``clear_private_tmp`` may empty (never the host's)."""

    root: str
    device: int  # st_dev of that tmpfs, checked again before each clean
    bound: tuple[str, ...]  # the paths bound back into it (code, the worker's directory)


_private_dirs: list[_PrivateDir] = []


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


def _overlay(
    target: str, keep: list[str], staging: Path, mode: str, size_mb: int, noexec: bool = False
) -> None:
    """Replace the directory ``target`` by a fresh tmpfs holding only the ``keep`` paths
    (bound back, read-only unless they are the worker's own directory; a bind keeps its own
    flags, so code stays executable under a noexec tmpfs). Built aside and moved in, since
    the originals vanish from view once ``target`` is covered."""
    stage = tempfile.mkdtemp(prefix="mount-", dir=staging)
    flags = MS_NOSUID | MS_NODEV | (MS_NOEXEC if noexec else 0)
    try:
        mount("tmpfs", stage, "tmpfs", flags, f"mode={mode},size={size_mb}m,nr_inodes={MAX_FILES}")
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
    the imported packages; read-only), /tmp, /var/tmp and /dev/shm become private,
    size-capped, noexec tmpfs (``workdir``, the worker's own directory, stays reachable), and
    every other mount becomes read-only, whatever world-writable directories the host has
    (/run/lock, ...). Returns what is in effect; raises OSError when the host allows none of
    it."""
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
    for path, size in ((tmp, PRIVATE_TMP_MB), ("/var/tmp", PRIVATE_TMP_MB), ("/dev/shm", shm_mb)):
        path = os.path.realpath(path)
        if os.path.isdir(path) and not any(d.root == path for d in _private_dirs):
            _private_tmp(path, wanted, workdir, size)
    done["private_tmp"] = True
    if str(workdir) not in mount_points():
        mount(str(workdir), str(workdir), None, MS_BIND)  # its own mount: it stays writable
    done["private_dirs"] = [d.root for d in _private_dirs]
    done["not_read_only"] = read_only_world([str(workdir), *done["private_dirs"]])
    return done


def _unescape(field: str) -> str:
    """A path as /proc/self/mountinfo writes it (space as \\040, ...)."""
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m[1], 8)), field)


def mount_points() -> dict[str, str]:
    """Mount point -> its per-mount options ("rw,nosuid,relatime"), from
    /proc/self/mountinfo; for a point mounted over, the topmost mount (listed last)."""
    found: dict[str, str] = {}
    with open("/proc/self/mountinfo") as f:
        for line in f:
            fields = line.split()
            found[_unescape(fields[4])] = fields[5]
    return found


def read_only_world(writable: Iterable[str]) -> list[str]:
    """Remount every mount of this namespace read-only (a bind remount: the host's mounts are
    untouched) except the ``writable`` mount points, keeping nosuid, nodev and noexec.
    Read-only binds even stop root; device nodes (/dev/null, GPUs) stay writable. Returns
    the mount points that refused."""
    keep = {os.path.realpath(p) for p in writable}
    refused = []
    for point, options in mount_points().items():
        opts = set(options.split(","))
        if point in keep or "ro" in opts:
            continue
        flags = MS_REMOUNT | MS_BIND | MS_RDONLY
        for name, bit in _KEPT_FLAGS.items():
            if name in opts:
                flags |= bit
        try:
            mount(None, point, None, flags)
        except OSError:
            refused.append(point)
    return refused


def mount_scratch(path: Path, size: int, owner: tuple[int, int], noexec: bool) -> None:
    """Mount a fresh tmpfs on the directory ``path``, owned by ``owner`` (uid, gid): the
    kernel caps what is stored there at ``size`` bytes and ``MAX_FILES`` entries, files
    unlinked while open and paths longer than PATH_MAX included (the write that passes the
    cap fails with ENOSPC). Memory-backed: what a candidate stores there is memory."""
    flags = MS_NOSUID | MS_NODEV | (MS_NOEXEC if noexec else 0)
    # size=0 would mean no limit at all.
    data = (
        f"size={max(size, 4096)},nr_inodes={MAX_FILES + 1},mode=0700,uid={owner[0]},gid={owner[1]}"
    )
    mount("scratch", str(path), "tmpfs", flags, data)


def mount_jobs(path: Path) -> None:
    """A tmpfs of the worker's own for its job directories (programs, capture files, the
    scratch mount points): on a host disk mounted with ``discard``, removing each job's
    files cost milliseconds per job; here they are memory, bounded by ``file_mb`` each."""
    path.mkdir(mode=0o711, exist_ok=True)
    mount("jobs", str(path), "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, "mode=0711")


def unmount(path: Path) -> None:
    """Detach the tmpfs on ``path``; its memory is freed once nothing holds a file of it."""
    with contextlib.suppress(OSError):
        umount(str(path))


def _private_tmp(root: str, wanted: list[str], workdir: Path, size_mb: int) -> None:
    """Cover the temporary directory ``root`` with a private tmpfs, binding back what of
    ``wanted`` lies in it. Code (a CI checkout, a throw-away venv) is bound back as its whole
    top-level folder: binding deep paths alone left lazily imported subpackages unreachable.
    What was bound is recorded, so that emptying ``root`` never walks it."""
    # ``root`` itself is never bound back (that would be the host's directory again).
    inside = [p for p in wanted if _inside(p, root) and p != root]
    if _inside(str(workdir), root) and not any(_inside(str(workdir), p) for p in inside):
        inside.append(str(workdir))
    tops = {
        p
        if _inside(str(workdir), p) or _inside(p, str(workdir))
        else os.path.join(root, os.path.relpath(p, root).split(os.sep)[0])
        for p in inside
    }
    bound = _outermost(tops)
    _overlay(root, bound, workdir, "1777", size_mb, noexec=True)
    _private_dirs.append(_PrivateDir(root, os.stat(root).st_dev, tuple(bound)))


def clear_private_tmp(workdir: Path) -> None:
    """Empty the private /tmp, /var/tmp and /dev/shm between jobs: only the directories
    ``private_filesystem`` mounted in this process, never the host's. Only what candidates
    could have written goes: the paths bound back (the code, read-only; ``workdir``, the
    worker's own directory) are neither entered nor removed, and neither is anything that
    lies on another file system than the private tmpfs."""
    keep = os.path.realpath(workdir)
    for private in _private_dirs:
        with contextlib.suppress(OSError):
            if os.stat(private.root).st_dev != private.device:
                continue  # not the tmpfs this process mounted there: not ours to empty
            _empty(private.root, private.device, (*private.bound, keep))


def _empty(directory: str, device: int, protected: tuple[str, ...]) -> None:
    """Remove what is in ``directory`` except the ``protected`` paths; a directory that only
    leads to one of them (created when it was bound back) stays, emptied of the rest."""
    with os.scandir(directory) as it:
        entries = list(it)
    for entry in entries:
        path = entry.path
        with contextlib.suppress(OSError):
            if any(_inside(p, path) for p in protected):
                if path not in protected and entry.is_dir(follow_symlinks=False):
                    _empty(path, device, protected)
                continue
            info = entry.stat(follow_symlinks=False)
            if info.st_dev != device:
                continue  # a mount point: nothing a candidate could have made
            if stat.S_ISDIR(info.st_mode):
                remove_tree(Path(path))
            else:
                os.unlink(path)


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


def import_paths() -> tuple[str, ...]:
    """The directories a worker and its children import from."""
    found = [sys.executable, *sys.path]
    return tuple(sorted({p for p in found if p and os.path.exists(p)}))
