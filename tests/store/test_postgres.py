"""Any SQLAlchemy URL works: a real PostgreSQL 15 cluster started in a temp dir for the test."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest
from conftest import pb

PORT = "54391"


def _as_postgres_user(cmd: list[str]) -> list[str]:
    # PostgreSQL refuses to run as root; CI machines run tests as root.
    return ["runuser", "-u", "nobody", "--", *cmd] if os.geteuid() == 0 else cmd


@pytest.fixture(scope="module")
def pg_url():
    if not (shutil.which("initdb") and shutil.which("pg_ctl")):
        pytest.skip("PostgreSQL server binaries (initdb, pg_ctl) are not installed")
    base = Path(tempfile.mkdtemp(prefix="pb-pg-"))
    if os.geteuid() == 0:
        shutil.chown(base, "nobody")
    data = base / "data"
    subprocess.run(
        _as_postgres_user(["initdb", "-D", str(data), "-A", "trust", "-U", "pb"]),
        check=True,
        capture_output=True,
    )
    opts = f"-k {base} -c listen_addresses='' -p {PORT}"
    subprocess.run(
        _as_postgres_user(
            ["pg_ctl", "-D", str(data), "-o", opts, "-l", str(base / "log"), "-w", "start"]
        ),
        check=True,
        capture_output=True,
    )
    try:
        yield f"postgresql+psycopg://pb@/postgres?host={base}&port={PORT}"
    finally:
        subprocess.run(
            _as_postgres_user(["pg_ctl", "-D", str(data), "-m", "immediate", "stop"]),
            capture_output=True,
        )
        shutil.rmtree(base, ignore_errors=True)


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
