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
from pathlib import Path
from typing import Any

from progressbench.sandbox.filesystem import import_paths, private_filesystem
from progressbench.sandbox.syscalls import prctl_available
from progressbench.sandbox.uids import DEFAULT_UID_BASE, lease_uids, uid_can_read


@functools.cache
def _probe_network_namespace() -> bool:
    code = "import ctypes,sys;sys.exit(ctypes.CDLL(None,use_errno=True).unshare(0x40000000)!=0)"
    try:
        return subprocess.run([sys.executable, "-S", "-c", code], timeout=20).returncode == 0
    except (OSError, subprocess.SubprocessError):
        return False


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
    return {"private_fs": True, **done, "read_all": not _leased_uid_can_read(paths)}


def _leased_uid_can_read(paths: tuple[str, ...]) -> bool:
    """``uid_can_read`` as a sandbox uid leased for the probe: another run on this machine
    kills every process of the uids it leases, and would kill a probe borrowing one of them
    (the probe then reads as "cannot read")."""
    leased, locks = lease_uids(1)
    try:
        return uid_can_read(leased[0], paths)
    finally:
        for lock in locks:
            lock.close()


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
