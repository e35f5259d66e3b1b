"""One process runs a run: a second --resume is refused with the holder named, a dead holder's
lease is taken over (one of two takers wins), SIGTERM stops a run like Ctrl-C, and a killed
run shows as interrupted and leaves no scratch behind once resumed."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import cli_env, pb, query

from progressbench.errors import RunFailed, UserError
from progressbench.store import Store
from progressbench.store.lease import TTL_S


def start(db: Path, tmp: Path, *args: str) -> subprocess.Popen:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "progressbench.cli",
            "run",
            "--workers",
            "2",
            "--db",
            str(db),
            *args,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=cli_env(TMPDIR=str(tmp)),
        start_new_session=True,
    )


def wait_for(db: Path, proc: subprocess.Popen, n: int, timeout: float = 120) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"run ended early: {proc.stderr.read() if proc.stderr else ''}")
        try:
            rows = query(db, "select id, n_children from run")
        except Exception:  # not created yet
            rows = []
        if rows and rows[0][1] >= n:
            return rows[0][0]
        time.sleep(0.05)
    pytest.fail("the run made no progress")


def scratch(tmp: Path) -> list[str]:
    return sorted(p.name for p in tmp.glob("progressbench-*") if p.name != "progressbench-uids")


def wait_for_scratch(tmp: Path, db: Path, timeout: float = 30) -> list[str]:
    """The run's scratch folders, once its lease has recorded them (the heartbeat, each second)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        rows = query(db, "select scratch_json from run_lease")
        if rows and rows[0][0] not in ("[]", None):
            return scratch(tmp)
        time.sleep(0.1)
    pytest.fail("the lease never recorded the run's scratch folder")


@pytest.fixture
def tmp(tmp_path: Path) -> Path:
    folder = tmp_path / "tmp"
    folder.mkdir()
    return folder


def no_duplicates(db: Path, rid: str) -> None:
    assert (
        query(
            db,
            "select program_id from evaluation where kind='full' group by program_id having count(*) > 1",
        )
        == []
    )
    assert (
        query(
            db,
            "select program_id from task where run_id=? and program_id is not null group by program_id having count(*) > 1",
            rid,
        )
        == []
    )


def test_a_killed_run_is_interrupted_and_two_resumes_at_once_run_it_once(db, tmp):
    proc = start(db, tmp, "--budget", "400", "--strategy", "greedy")
    rid = wait_for(db, proc, 3)
    left = wait_for_scratch(tmp, db)
    # While it runs, a second resume is refused with the holder named, and changes nothing.
    res = pb("run", "--resume", rid, "--budget", "500", "--db", str(db))
    assert res.returncode == 2, res.stderr
    assert f"run {rid} is being run by host" in res.stderr and f"pid {proc.pid}" in res.stderr
    assert len(res.stderr.strip().splitlines()) == 1
    assert query(db, "select budget from run") == [(400,)]
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    budget = query(db, "select n_children from run")[0][0] + 60  # long enough to overlap
    assert left and scratch(tmp) == left  # what the killed run left
    # Its lease holder is dead: shown as interrupted, with the command that resumes it.
    board = pb("leaderboard", "--db", str(db)).stdout
    assert "interrupted" in board and f"progressbench run --resume {rid}" in board
    assert "[interrupted: its process is gone]" in pb("show", rid, "--db", str(db)).stdout
    # Two resumes at once: one takes the lease over, the other is refused naming it.
    a = start(db, tmp, "--resume", rid, "--budget", str(budget))
    b = start(db, tmp, "--resume", rid, "--budget", str(budget))
    outs = [p.communicate(timeout=300) for p in (a, b)]
    codes = sorted([a.returncode, b.returncode])
    assert codes == [0, 2], outs
    loser = outs[[a.returncode, b.returncode].index(2)][1]
    assert f"run {rid} is being run by host" in loser
    status, n, _ = query(db, "select status, n_children, budget from run")[0]
    assert (status, n) == ("finished", budget) and query(db, "select budget from run") == [
        (budget,)
    ]
    assert len(query(db, "select id from program where is_reference=0")) == budget
    assert query(db, "select count(*) from program where status='pending'") == [(0,)]
    no_duplicates(db, rid)
    assert scratch(tmp) == [] and query(db, "select count(*) from run_lease") == [(0,)]


def test_sigterm_stops_a_run_like_ctrl_c(db, tmp):
    proc = start(db, tmp, "--budget", "400", "--strategy", "greedy")
    rid = wait_for(db, proc, 3)
    assert wait_for_scratch(tmp, db)
    proc.terminate()
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert f"interrupted; resume with: progressbench run --resume {rid}" in err
    assert "Traceback" not in err
    assert query(db, "select status from run") == [("interrupted",)]
    assert scratch(tmp) == [] and query(db, "select count(*) from run_lease") == [(0,)]
    res = pb("run", "--resume", rid, "--budget", "12", "--db", str(db))
    assert res.returncode == 0, res.stderr
    no_duplicates(db, rid)


def test_a_stale_lease_is_taken_over_by_one_of_two_takers(tmp_path):
    """Two stores take a dead holder's lease at once: the compare-and-set lets one win, and the
    old holder, should it come back, can no longer write the run."""
    path = tmp_path / "pb.db"
    first = Store(str(path))
    run = first.create_run(
        env="e", variant="v", strategy="s", agent="a", budget=3, config_json="{}"
    )
    con = sqlite3.connect(path)  # silent for longer than the TTL, on another machine
    con.execute(
        "update run_lease set heartbeat_s = ?, node = 'elsewhere'", (time.time() - TTL_S - 5,)
    )
    con.commit()
    con.close()
    a, b = Store(str(path), create=False), Store(str(path), create=False)
    a.claim(run.id)
    with pytest.raises(UserError, match=f"run {run.id} is being run by host .* pid {os.getpid()}"):
        b.claim(run.id)
    assert a.update_run(run.id, status="running").status == "running"
    with pytest.raises(RunFailed, match="was taken over"):
        first.update_run(run.id, n_children=1)
    assert a.get_run(run.id).n_children == 0
    # Stopping the run gives the lease up: the other store may take it now.
    a.update_run(run.id, status="interrupted")
    b.claim(run.id)
    for s in (first, a, b):
        s.close()
