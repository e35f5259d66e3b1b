"""Emptying the private /tmp, /var/tmp and /dev/shm between jobs touches only what candidates
could have written: code that lives under /tmp (a throw-away venv, a CI checkout) is bound
back read-only into the private /tmp, and cleaning must not walk it (issue 15 §1: ~168k
``unlinkat`` calls answered EROFS per job, 1.6 s of overhead per evaluation).

The evidence is counted, never timed: calls made by the cleaning itself (in a throw-away
process that sets up a worker's private file system), and inotify's record of which of the
fake venv's directories anything opened while a real worker ran jobs.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import shutil
import struct
import subprocess
import sys
import tempfile
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import sandbox_env

from progressbench import plugins
from progressbench.contracts.evaluator import EvalJob, Limits
from progressbench.sandbox import doctor
from progressbench_plugins.evaluators.local import LocalEvaluator

ROOT = sys.platform == "linux" and os.geteuid() == 0
pytestmark = [
    pytest.mark.skipif(
        not (ROOT and doctor.capabilities()["mount_namespace"]),
        reason="needs root and mount namespaces (the private /tmp)",
    ),
    pytest.mark.timeout(180),
]

DIRS, FILES = 40, 50  # the fake venv: 2,000 files in 40 packages
MARKER = "pbtest_private_tmp_marker"
PRIVATE_DIRS = ("/tmp", "/var/tmp", "/dev/shm")


@pytest.fixture(scope="module", autouse=True)
def registered(module_plugin) -> None:
    module_plugin(sandbox_env)


@pytest.fixture
def fake_venv() -> Iterator[Path]:
    """A code tree of its own top-level folder under the host's /tmp, readable by candidates:
    ``lib/site-packages`` with a marker module and ``DIRS`` packages of ``FILES`` files."""
    root = Path(tempfile.mkdtemp(prefix="pbtest-venv-", dir="/tmp"))
    try:
        root.chmod(0o755)
        site = root / "lib" / "site-packages"
        site.mkdir(parents=True)
        (site / f"{MARKER}.py").write_text("VALUE = 42\n")
        for i in range(DIRS):
            package = site / f"pbtest_pkg{i}"
            package.mkdir()
            for j in range(FILES):
                (package / f"m{j}.py").write_text("")
        yield root
    finally:
        shutil.rmtree(root, ignore_errors=True)


def packages(venv: Path) -> list[Path]:
    return sorted((venv / "lib" / "site-packages").glob("pbtest_pkg*"))


CLEAN_ONCE = r"""
import json, os, shutil, sys
from pathlib import Path
from progressbench.sandbox import filesystem

venv, workdir, extra = sys.argv[1], Path(sys.argv[2]), sys.argv[3:]
filesystem.private_filesystem([venv, *extra, *filesystem.import_paths()], workdir, 16)
hidden = {{d: sorted(os.listdir(d)) for d in {dirs!r}}}
(workdir / "worker-file").write_text("the worker's own")
for d in {dirs!r}:  # what a candidate leaves behind
    Path(d, "left-file").write_text("x")
    Path(d, "left-dir", "deep").mkdir(parents=True)
    Path(d, "left-dir", "deep", "f").write_text("x")
calls = dict.fromkeys(("unlink", "rmdir", "scandir", "open"), 0)
real = {{name: getattr(os, name) for name in calls}}
def counting(name):
    def call(*args, **kwargs):
        calls[name] += 1
        return real[name](*args, **kwargs)
    return call
for name in calls:
    setattr(os, name, counting(name))
filesystem.clear_private_tmp(workdir)
for name, function in real.items():
    setattr(os, name, function)
print(json.dumps({{
    "calls": calls,
    "left": {{d: sorted(n for n in os.listdir(d) if n.startswith("left-")) for d in {dirs!r}}},
    "venv_files": sum(len(files) for _, _, files in os.walk(venv)),
    "worker_files": os.listdir(workdir),
    "seen_before": hidden,
}}))
"""


def clean_once(venv: Path, workdir: Path, *extra: str) -> dict:
    done = subprocess.run(
        [sys.executable, "-c", CLEAN_ONCE.format(dirs=PRIVATE_DIRS), str(venv), str(workdir),
         *extra],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_cleaning_skips_code_bound_back_under_tmp(fake_venv: Path) -> None:
    """``clear_private_tmp`` removes what a candidate left in each private directory, keeps
    the worker's directory, and makes a handful of calls, not one per file of the venv."""
    work_top = Path(tempfile.mkdtemp(prefix="pbtest-work-", dir="/tmp"))
    try:
        workdir = work_top / "worker"  # nested: its parent exists only in the private /tmp
        workdir.mkdir()
        report = clean_once(fake_venv, workdir)
        assert report["left"] == {d: [] for d in PRIVATE_DIRS}
        assert report["worker_files"] == ["worker-file"]
        assert report["venv_files"] == DIRS * FILES + 1
        # The candidate's leftovers take a few dozen calls; walking the venv took thousands.
        assert sum(report["calls"].values()) < 100, report["calls"]
        assert (workdir / "worker-file").exists()  # the worker's own directory, bound back
    finally:
        shutil.rmtree(work_top, ignore_errors=True)


def test_tmp_itself_on_the_keep_list_stays_the_hosts(fake_venv: Path) -> None:
    """Code directly in /tmp (a plugin module there puts /tmp itself on the keep list): the
    host's /tmp is neither bound back into the private one nor emptied with it."""
    work_top = Path(tempfile.mkdtemp(prefix="pbtest-work-", dir="/tmp"))
    marker = Path(tempfile.mkstemp(prefix="pbtest-host-", dir="/tmp")[1])
    try:
        workdir = work_top / "worker"
        workdir.mkdir()
        report = clean_once(fake_venv, workdir, "/tmp")
        assert marker.name not in report["seen_before"]["/tmp"]  # still a private /tmp
        assert report["left"] == {d: [] for d in PRIVATE_DIRS}
        assert report["worker_files"] == ["worker-file"]
        assert marker.exists()
    finally:
        marker.unlink(missing_ok=True)
        shutil.rmtree(work_top, ignore_errors=True)


IN_OPEN, IN_NONBLOCK, IN_CLOEXEC = 0x20, os.O_NONBLOCK, os.O_CLOEXEC


@contextlib.contextmanager
def opened_dirs(paths: list[Path]) -> Iterator[Callable[[], set[Path]]]:
    """inotify watches on ``paths``; yields a function returning which of them anything
    opened (listing a directory opens it), in any mount namespace, since the watch."""
    libc = ctypes.CDLL(None, use_errno=True)
    fd = libc.inotify_init1(IN_NONBLOCK | IN_CLOEXEC)
    if fd < 0:
        pytest.skip(f"no inotify: {os.strerror(ctypes.get_errno())}")
    try:
        watches = {}
        for path in paths:
            wd = libc.inotify_add_watch(fd, os.fsencode(path), IN_OPEN)
            assert wd >= 0, os.strerror(ctypes.get_errno())
            watches[wd] = path
        seen: set[Path] = set()

        def opened() -> set[Path]:
            with contextlib.suppress(BlockingIOError):
                while data := os.read(fd, 1 << 16):
                    offset = 0
                    while offset < len(data):
                        wd, _mask, _cookie, size = struct.unpack_from("iIII", data, offset)
                        seen.add(watches[wd])
                        offset += 16 + size
            return seen

        yield opened
    finally:
        os.close(fd)


def test_jobs_leave_nothing_and_never_walk_the_venv(
    fake_venv: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A real worker whose code partly lives under /tmp: between jobs nothing opens the
    venv's directories, what a candidate wrote to /tmp, /var/tmp and /dev/shm is gone in the
    next job, and the venv stays importable and read-only."""
    site = fake_venv / "lib" / "site-packages"
    path = [str(site), *filter(None, [os.environ.get("PYTHONPATH")])]
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(path))
    env = plugins.get_environment("sandbox-test")
    ev = LocalEvaluator(env, "default", 1, {"plugin_modules": ["sandbox_env"]})
    ev.start()
    try:
        with opened_dirs(packages(fake_venv)) as opened:
            write = f"""
                import os, {MARKER}
                def main():
                    for d in {PRIVATE_DIRS!r}:
                        open(os.path.join(d, "left-file"), "w").write("x")
                        os.makedirs(os.path.join(d, "left-dir", "deep"))
                        open(os.path.join(d, "left-dir", "deep", "f"), "w").write("x")
                    try:
                        open({str(site / "planted.py")!r}, "w").write("x")
                    except OSError as exc:
                        return {{"marker": {MARKER}.VALUE, "plant": type(exc).__name__}}
                    return {{"marker": {MARKER}.VALUE, "plant": "written"}}
                """
            check = f"""
                import os, {MARKER}
                def main():
                    return {{"marker": {MARKER}.VALUE,
                             "left": [p for d in {PRIVATE_DIRS!r} for p in os.listdir(d)
                                      if p.startswith("left-")]}}
                """
            outcomes = []
            for body in (write, check, write, check):
                job = EvalJob(program=textwrap.dedent(body), phase="full",
                              limits=Limits(seconds=30, memory_mb=512))  # fmt: skip
                outcomes.append(ev.evaluate(job))
            assert all(o.ok for o in outcomes), [o.error for o in outcomes if not o.ok]
            for written, checked in (outcomes[0:2], outcomes[2:4]):
                assert written.raw["value"]["marker"] == 42
                assert written.raw["value"]["plant"] in ("OSError", "PermissionError")
                assert checked.raw["value"] == {"marker": 42, "left": []}
            assert opened() == set()  # nothing listed the venv's packages
    finally:
        ev.close()
    assert not (site / "planted.py").exists()
    assert all(len(list(p.iterdir())) == FILES for p in packages(fake_venv))
    assert not any(Path(d, "left-file").exists() for d in PRIVATE_DIRS)  # not the host's
