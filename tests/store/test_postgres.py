"""Any SQLAlchemy URL works: a real PostgreSQL 15 cluster started in a temp dir for the test."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
from conftest import cli_env, pb

PORT = "54391"


def _as_postgres_user(cmd: list[str]) -> list[str]:
    # PostgreSQL refuses to run as root; CI machines run tests as root.
    return ["runuser", "-u", "nobody", "--", *cmd] if os.geteuid() == 0 else cmd


class Cluster:
    """A PostgreSQL 15 cluster in a temp dir, on a Unix socket only."""

    def __init__(self) -> None:
        self.base = Path(tempfile.mkdtemp(prefix="pb-pg-"))
        if os.geteuid() == 0:
            shutil.chown(self.base, "nobody")
        self.data = self.base / "data"
        self.url = f"postgresql+psycopg://pb@/postgres?host={self.base}&port={PORT}"
        subprocess.run(
            _as_postgres_user(["initdb", "-D", str(self.data), "-A", "trust", "-U", "pb"]),
            check=True,
            capture_output=True,
        )

    def start(self) -> None:
        opts = f"-k {self.base} -c listen_addresses='' -p {PORT}"
        subprocess.run(
            _as_postgres_user(
                [
                    "pg_ctl",
                    "-D",
                    str(self.data),
                    "-o",
                    opts,
                    "-l",
                    str(self.base / "log"),
                    "-w",
                    "start",
                ]
            ),
            check=True,
            capture_output=True,
        )

    def stop(self) -> None:
        subprocess.run(
            _as_postgres_user(["pg_ctl", "-D", str(self.data), "-m", "immediate", "stop"]),
            capture_output=True,
        )


@pytest.fixture(scope="module")
def cluster():
    if not (shutil.which("initdb") and shutil.which("pg_ctl")):
        pytest.skip("PostgreSQL server binaries (initdb, pg_ctl) are not installed")
    pg = Cluster()
    pg.start()
    try:
        yield pg
    finally:
        pg.stop()
        shutil.rmtree(pg.base, ignore_errors=True)


@pytest.fixture(scope="module")
def pg_url(cluster):
    return cluster.url


def test_run_resume_and_leaderboard_on_postgresql(pg_url):
    res = pb("run", "--budget", "6", "--strategy", "greedy", "--db", pg_url)
    assert res.returncode == 0, res.stderr
    rows = json.loads(pb("leaderboard", "--format", "json", "--db", pg_url).stdout)
    assert (
        len(rows) == 1 and rows[0]["evaluations"] == 6 and rows[0]["best"] >= rows[0]["reference"]
    )
    rid = rows[0]["run"]
    res = pb("run", "--resume", rid, "--budget", "9", "--db", pg_url)
    assert res.returncode == 0, res.stderr
    show = pb("show", rid, "--db", pg_url)
    assert "children 9/9" in show.stdout


def test_unreachable_postgresql_is_one_clear_line(tmp_path):
    res = pb("leaderboard", "--db", f"postgresql+psycopg://pb@/postgres?host={tmp_path}&port=1")
    assert res.returncode == 2
    assert res.stderr.startswith("error: cannot open database postgresql+psycopg://pb@/postgres")
    assert len(res.stderr.strip().splitlines()) == 1


def start_run(url: str, *args: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "progressbench.cli", "run", "--workers", "2", "--db", url, *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=cli_env(),
    )


def children(url: str, rid: str) -> int:
    shown = pb("show", rid, "--db", url).stdout
    return int(shown.split("children ")[1].split("/")[0])


def wait_for_children(url: str, rid: str, n: int, proc: subprocess.Popen) -> None:
    deadline = time.monotonic() + 120
    while children(url, rid) < n:
        assert proc.poll() is None and time.monotonic() < deadline, "the run made no progress"
        time.sleep(0.2)


def test_one_process_runs_a_run_and_a_stopped_server_is_one_line(cluster):
    url = cluster.url
    res = pb("run", "--budget", "2", "--strategy", "greedy", "--db", url)
    assert res.returncode == 0, res.stderr
    rid = json.loads(pb("leaderboard", "--format", "json", "--db", url).stdout)[-1]["run"]
    proc = start_run(url, "--resume", rid, "--budget", "400")
    wait_for_children(url, rid, 5, proc)
    second = pb("run", "--resume", rid, "--db", url)
    assert second.returncode == 2 and f"run {rid} is being run by host" in second.stderr
    cluster.stop()  # the database server goes away mid-run
    try:
        _, err = proc.communicate(timeout=120)
    finally:
        cluster.start()
    assert proc.returncode == 1, err
    assert "Traceback" not in err
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and errors[0].startswith("error: database postgresql+psycopg://pb@/")
    kept = children(url, rid)
    assert kept >= 5
    res = pb("run", "--resume", rid, "--budget", str(kept + 3), "--db", url)
    assert res.returncode == 0, res.stderr
    assert f"children {kept + 3}/{kept + 3}" in pb("show", rid, "--db", url).stdout
