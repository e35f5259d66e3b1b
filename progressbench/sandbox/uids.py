"""The unprivileged uids candidates run as (as root): leasing them machine-wide, killing
every process of one, and checking what one can read.

A leased uid is what makes "kill every process of uid N" safe: no other run's candidates can
hold it at the same time.
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import os
import stat
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import IO

from progressbench.errors import UserError

DEFAULT_UID_BASE = 64000
MAX_SANDBOX_UID = 65533  # below nobody (65534); within the 16-bit range every system maps


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
    for uid in range(base, MAX_SANDBOX_UID + 1):
        if len(uids) == count:
            break
        lock: IO[str] = open(folder / str(uid), "a")  # held open: the lock is the claim
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
        raise UserError(f"no free sandbox uids in {base}..{MAX_SANDBOX_UID}")
    return uids, locks


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
