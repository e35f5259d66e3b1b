"""GPU device nodes and the groups candidates keep to open them.

A candidate drops to its own uid with no supplementary groups, which on hosts where the GPU's
nodes are mode 0660 (``/dev/nvidia*`` of group ``video``, ``/dev/dri/*`` of ``render``, AMD's
``/dev/kfd``) would lose the GPU. For an environment that declares GPUs, the worker keeps the
groups that own such nodes, and only those: a group that also owns other files (root's, 0) is
never kept, and ``doctor`` names the nodes candidates then cannot open.
"""

from __future__ import annotations

import glob
import os
import stat

DEVICE_GLOBS = ("/dev/nvidia*", "/dev/nvidia-caps/*", "/dev/dri/*", "/dev/kfd")


def gpu_device_nodes() -> list[str]:
    """The character devices a CUDA or ROCm program opens, as present on this host."""
    found = []
    for pattern in DEVICE_GLOBS:
        for path in sorted(glob.glob(pattern)):
            try:
                if stat.S_ISCHR(os.stat(path).st_mode):
                    found.append(path)
            except OSError:
                continue
    return found


def device_groups(nodes: list[str]) -> tuple[list[int], list[str]]:
    """(the groups a candidate keeps so that it can read and write every node that others may
    not, the nodes it still cannot open, each with why)."""
    keep: set[int] = set()
    unreachable = []
    for path in nodes:
        try:
            st = os.stat(path)
        except OSError as exc:
            unreachable.append(f"{path}: {exc.strerror}")
            continue
        if st.st_mode & 0o006 == 0o006:
            continue  # read-write for everyone: nothing to keep
        if st.st_mode & 0o060 != 0o060:
            unreachable.append(f"{path}: mode {stat.filemode(st.st_mode)}, no group access")
        elif st.st_gid == 0:
            unreachable.append(
                f"{path}: owned by group root (mode {stat.filemode(st.st_mode)}): not kept "
                "for candidates; give the node a group of its own or mode 0666"
            )
        else:
            keep.add(st.st_gid)
    return sorted(keep), unreachable
