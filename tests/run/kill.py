"""The `kill -9` tests' one way to start a run they can kill: `progressbench run` in a process
session of its own (so the kill reaches its workers too), watched through its database."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import cli_env, query


def start_run(db: Path, *args: str) -> subprocess.Popen[str]:
    """``progressbench run ARGS --db DB``, started in the background."""
    return subprocess.Popen(
        [sys.executable, "-m", "progressbench.cli", "run", *args, "--db", str(db)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=cli_env(),
        start_new_session=True,
    )


def wait_for_children(db: Path, n: int, proc: subprocess.Popen[str], timeout: float = 120) -> None:
    """Return once the run has stored ``n`` children; fail if it ends or stalls first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"run ended before the kill: {proc.stderr.read() if proc.stderr else ''}")
        try:
            rows = query(db, "select n_children from run")
        except Exception:  # the database may not exist yet
            rows = []
        if rows and rows[0][0] >= n:
            return
        time.sleep(0.02)
    pytest.fail("run made no progress")


def kill_9(proc: subprocess.Popen[str]) -> None:
    """SIGKILL the run and every process it started, and reap it."""
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
