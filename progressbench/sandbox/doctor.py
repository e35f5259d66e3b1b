"""What this machine allows, as ``progressbench doctor`` reports it: probes (each in a
throw-away subprocess, since setting up isolation cannot be undone) and the summary built
from them, matching what the ``local`` evaluator would put in place with its defaults.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from progressbench.sandbox.devices import device_groups, gpu_device_nodes
from progressbench.sandbox.filesystem import (
    MAX_FILES,
    import_paths,
    mount_scratch,
    private_filesystem,
    unmount,
)
from progressbench.sandbox.syscalls import CLONE_NEWIPC, prctl_available, unshare
from progressbench.sandbox.uids import DEFAULT_UID_BASE, lease_uids, uid_can_read

MIB = 1 << 20
# Run as a candidate's uid in the probe's namespace: every directory it may create files in
# and every file it may write, outside the private temporary directories (argv), found by
# walking each mount that is not read-only (nothing under a read-only one is writable).
_WRITABLE_PROBE = r"""
import json, os, re, sys
allowed, found, points = set(sys.argv[1:]), [], {}
for line in open("/proc/self/mountinfo"):
    f = line.split()
    points[re.sub(r"\\([0-7]{3})", lambda m: chr(int(m[1], 8)), f[4])] = f[5]
for point, options in sorted(points.items()):
    if "ro" in options.split(",") or point in allowed or not os.path.isdir(point):
        continue
    dev, stack, seen = os.lstat(point).st_dev, [point], 0
    while stack and seen < 20000:
        top = stack.pop()
        if os.access(top, os.W_OK | os.X_OK):
            found.append(top)
        try:
            entries = list(os.scandir(top))
        except OSError:
            continue
        for e in entries:
            seen += 1
            try:
                if e.stat(follow_symlinks=False).st_dev != dev:
                    continue
                if e.is_dir(follow_symlinks=False):
                    stack.append(e.path)
                elif e.is_file(follow_symlinks=False) and os.access(e.path, os.W_OK):
                    found.append(e.path)
            except OSError:
                pass
print(json.dumps(sorted(found)))
"""
# Run as a candidate's uid on a 1 MB scratch tmpfs (argv[1]): exit 0 when writing past its
# size fails with ENOSPC, for a plain file and for one unlinked while open.
_QUOTA_PROBE = r"""
import errno, os, sys
def fills(f):
    try:
        for _ in range(4):
            f.write(b"x" * (1 << 20))
    except OSError as exc:
        return exc.errno == errno.ENOSPC
    return False
path = os.path.join(sys.argv[1], "probe")
with open(path, "wb", buffering=0) as f:
    plain = fills(f)
os.unlink(path)
with open(path, "wb", buffering=0) as f:
    os.unlink(path)
    unlinked = fills(f)
sys.exit(0 if plain and unlinked else 1)
"""


@functools.cache
def _probe_network_namespace() -> bool:
    code = "import ctypes,sys;sys.exit(ctypes.CDLL(None,use_errno=True).unshare(0x40000000)!=0)"
    try:
        return subprocess.run([sys.executable, "-S", "-c", code], timeout=20).returncode == 0
    except (OSError, subprocess.SubprocessError):
        return False


def _isolation_here() -> dict[str, Any]:
    """Set up a worker's private file system in this (throw-away) process and report what the
    candidate uid can then read and write, and whether a scratch tmpfs caps it; run by
    ``capabilities`` in a subprocess, as root."""
    import progressbench

    keep = {sys.prefix, sys.base_prefix, sys.exec_prefix, *import_paths()}
    keep.add(os.path.dirname(os.path.dirname(progressbench.__file__)))
    try:
        unshare(CLONE_NEWIPC)
        ipc = True
    except OSError:
        ipc = False
    workdir = Path(tempfile.mkdtemp(prefix="progressbench-probe-"))
    try:
        done = private_filesystem(keep, workdir, 64)
    except OSError as exc:
        with contextlib.suppress(OSError):
            os.rmdir(workdir)
        return {"private_fs": False, "error": str(exc), "ipc_namespace": ipc}
    paths = tuple(sorted(p for p in keep if os.path.exists(p)))
    with _leased_uid() as uid:
        return {
            "private_fs": True,
            **done,
            "read_all": not uid_can_read(uid, paths),
            "writable": _as_uid(uid, _WRITABLE_PROBE, *done["private_dirs"]),
            "disk_quota": _quota_holds(uid, workdir),
            "ipc_namespace": ipc,
        }


@contextlib.contextmanager
def _leased_uid() -> Iterator[int]:
    """A sandbox uid leased for a probe: another run on this machine kills every process of
    the uids it leases, and would kill a probe borrowing one of them."""
    leased, locks = lease_uids(1)
    try:
        yield leased[0]
    finally:
        for lock in locks:
            lock.close()


def _as_uid(uid: int, code: str, *args: str, groups: Sequence[int] = ()) -> Any:
    """What ``code`` prints (JSON) when run as ``uid`` (with supplementary ``groups``); None
    if it fails."""
    try:
        done = subprocess.run(
            [sys.executable, "-S", "-c", code, *args],
            user=uid, group=uid, extra_groups=list(groups), cwd="/",
            stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        return json.loads(done.stdout) if done.returncode == 0 else None
    except (OSError, subprocess.SubprocessError, ValueError):
        return None


def _quota_holds(uid: int, workdir: Path) -> bool:
    """Whether a 1 MB scratch tmpfs, as a worker mounts one, refuses the candidate's second
    megabyte (plain and unlinked files)."""
    os.chmod(workdir, 0o711)  # traversable, as a worker's directory is
    scratch = workdir / "scratch"
    scratch.mkdir()
    try:
        mount_scratch(scratch, MIB, (uid, uid), noexec=True)
    except OSError:
        return False
    try:
        done = subprocess.run(
            [sys.executable, "-S", "-c", _QUOTA_PROBE, str(scratch)],
            user=uid, group=uid, extra_groups=[], cwd="/", stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=60,
        )  # fmt: skip
        return done.returncode == 0
    except (OSError, subprocess.SubprocessError):
        return False
    finally:
        unmount(scratch)


def _leased_uid_can_read(paths: tuple[str, ...]) -> bool:
    """``uid_can_read`` as a sandbox uid leased for the probe."""
    with _leased_uid() as uid:
        return uid_can_read(uid, paths)


@functools.cache
def _probe_isolation() -> dict[str, Any]:
    code = "import json,progressbench.sandbox.doctor as s;print(json.dumps(s._isolation_here()))"
    try:
        done = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, timeout=60
        )
        return json.loads(done.stdout.strip().splitlines()[-1])
    except (OSError, subprocess.SubprocessError, ValueError, IndexError) as exc:
        return {"private_fs": False, "error": str(exc)}


def _writable(root: bool, fs: dict[str, Any]) -> str:
    """What the candidate uid can write outside its scratch and the private temporary
    directories, as the probe found it: "none" is the goal."""
    if not root:
        return "everything the platform's user can write (candidates share its uid)"
    if not fs["private_fs"]:
        return f"not tested ({fs.get('error') or 'no mount namespace'})"
    found = fs.get("writable")
    if found is None:
        return "unknown: the probe failed"
    refused = fs.get("not_read_only") or []
    extra = f" (not read-only: {', '.join(refused)})" if refused else ""
    return (", ".join(found) if found else "none") + extra


# Run as a candidate's uid with the groups a GPU job keeps: which device nodes (argv) it can
# open for reading and writing, as CUDA does.
_DEVICE_PROBE = r"""
import json, os, sys
ok = []
for path in sys.argv[1:]:
    try:
        os.close(os.open(path, os.O_RDWR))
        ok.append(path)
    except OSError:
        pass
print(json.dumps(ok))
"""


def _gpus(root: bool, network_namespace: bool) -> dict[str, str]:
    """The GPU lines: the device nodes, what a candidate of a GPU job keeps of them (opened
    as one, where the platform is root), and where NCCL can reach."""
    nodes = gpu_device_nodes()
    nccl = (
        "one host only: the network namespace leaves loopback, so NCCL uses shared memory, "
        "P2P and loopback sockets; multi-node runs are not possible in the sandbox"
        if network_namespace
        else "the host's network (no network namespace)"
    )
    if not nodes:
        return {"gpu_devices": "none on this host (no /dev/nvidia*, /dev/dri, /dev/kfd)",
                "nccl_transport": nccl}  # fmt: skip
    groups, unreachable = device_groups(nodes)
    if not root:
        seen = f"{len(nodes)} device nodes; candidates share the platform's uid and groups"
    else:
        with _leased_uid() as uid:
            opened = _as_uid(uid, _DEVICE_PROBE, *nodes, groups=groups) or []
        kept = f"groups {', '.join(map(str, groups))} kept" if groups else "no groups kept"
        seen = f"{len(opened)} of {len(nodes)} device nodes open as a candidate ({kept})"
        missing = [n for n in nodes if n not in opened]
        if missing:
            seen += f"; cannot open: {', '.join(missing)}"
    if unreachable:
        seen += f" ({'; '.join(unreachable)})"
    return {"gpu_devices": seen, "nccl_transport": nccl}


def _disk_limit(fs: dict[str, Any]) -> str:
    if fs.get("disk_quota"):
        return (
            f"a tmpfs per job as scratch (size: the environment's disk_mb, else half the "
            f"free space and at most half the memory; {MAX_FILES} files), enforced by the "
            "kernel: ENOSPC past it, unlinked files included; scratch and /tmp noexec"
        )
    return (
        "scratch size checked every 0.5 s: the environment's disk_mb, else half the free "
        "space (no tmpfs scratch here)"
    )


def capabilities() -> dict[str, bool | str]:
    """Which protections this machine gives candidates (for ``progressbench doctor``), as
    the ``local`` evaluator would apply them with its default options."""
    linux = sys.platform == "linux"
    root = linux and os.geteuid() == 0
    has_prctl = prctl_available()
    fs: dict[str, Any] = _probe_isolation() if root else {"private_fs": False}
    if fs["private_fs"]:
        read_all = bool(fs["read_all"])
    else:
        read_all = root and not _leased_uid_can_read(import_paths())
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
    network = root and _probe_network_namespace()
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
        "network_namespace": network,
        "mount_namespace": bool(fs["private_fs"]),
        "home_directory": home,
        "private_tmp": bool(fs.get("private_tmp")),
        "writable_paths": _writable(root, fs),
        "ipc_namespace": bool(fs.get("ipc_namespace")),
        "file_size_limit": "RLIMIT_FSIZE, 256 MB a file unless the environment sets file_mb",
        "disk_limit": _disk_limit(fs),
        "process_limit": (
            "RLIMIT_NPROC per candidate uid"
            if root
            else "RLIMIT_NPROC, counted over all of the platform user's processes"
        ),
        # A candidate with the platform's uid may signal it (kill it); another uid may not.
        "can_signal_platform": not root,
        "candidate_user": user,
        **_gpus(root, network),
    }
