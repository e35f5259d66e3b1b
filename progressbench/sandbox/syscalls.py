"""The Linux system calls the sandbox needs and Python's standard library lacks (prctl,
unshare, mount, umount, capset through libc), the ioctl that brings up loopback, and their
constants.

Kept apart so that every ctypes call, the one place a wrong argument is undefined behaviour
rather than an exception, lives in one small module.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import fcntl
import os
import socket
import struct
import sys

PR_SET_PDEATHSIG = 1
PR_SET_DUMPABLE = 4
PR_SET_KEEPCAPS = 8
PR_SET_CHILD_SUBREAPER = 36
PR_SET_NO_NEW_PRIVS = 38
PR_CAP_AMBIENT = 47
PR_CAP_AMBIENT_RAISE = 2
CLONE_NEWNET = 0x40000000
CLONE_NEWNS = 0x00020000
CLONE_NEWIPC = 0x08000000
MS_NOSUID, MS_NODEV, MS_REMOUNT, MS_BIND, MS_MOVE, MS_REC = 0x2, 0x4, 0x20, 0x1000, 0x2000, 0x4000
MS_RDONLY, MS_NOEXEC, MS_PRIVATE = 0x1, 0x8, 1 << 18
MNT_DETACH = 0x2
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


def prctl_available() -> bool:
    """Whether this libc offers prctl(2) (for ``progressbench doctor``)."""
    return _libc is not None and hasattr(_libc, "prctl")


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


def umount(target: str, flags: int = MNT_DETACH) -> None:
    """Linux umount2(2), lazily by default (what is still open stays usable until closed)."""
    if _libc is None:
        raise OSError("umount needs Linux")
    if _libc.umount2(target.encode(), ctypes.c_int(flags)) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"umount {target}: {os.strerror(err)}")


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
