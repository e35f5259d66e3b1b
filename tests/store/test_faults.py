"""Storage faults are one line naming the database and the cause, exit 1, and the stored work
is kept: a full disk mid-run (SQLite's page limit stands in for it), a write refused."""

from __future__ import annotations

import sqlite3
import subprocess
import sys

import pytest
from conftest import cli_env, pb, query
from sqlalchemy import event

from progressbench.store import Store, StoreError

# The real CLI, with the database file limited to PAGES pages from the first connection on.
LIMITED = """
import sys
from progressbench.store import connect
plain = connect._sqlite_pragmas
def limited(conn, record):
    plain(conn, record)
    conn.execute("PRAGMA max_page_count = {pages}")
connect._sqlite_pragmas = limited
from progressbench.cli import main
sys.argv[0] = "progressbench"
main()
"""


def test_a_full_disk_mid_run_is_one_line_and_the_run_resumes(db):
    res = pb("run", "--budget", "3", "--strategy", "greedy", "--db", str(db))
    assert res.returncode == 0, res.stderr
    rid = query(db, "select id from run")[0][0]
    con = sqlite3.connect(db)
    pages = con.execute("pragma page_count").fetchone()[0]
    con.close()
    code = LIMITED.format(pages=pages + 40)
    full = subprocess.run(
        [sys.executable, "-c", code, "run", "--resume", rid, "--budget", "60", "--db", str(db)],
        capture_output=True, text=True, env=cli_env(), timeout=300,
    )  # fmt: skip
    assert full.returncode == 1, full.stderr
    assert "Traceback" not in full.stderr
    errors = [line for line in full.stderr.splitlines() if line.startswith("error:")]
    assert errors == [
        f"error: database {db}: database or disk is full; what is stored is kept "
        f"(progressbench run --resume {rid} --db {db})"
    ]
    stored = query(db, "select n_children from run")[0][0]
    assert 3 < stored < 60
    # Room again: the resume completes the budget, nothing lost or evaluated twice.
    res = pb("run", "--resume", rid, "--budget", "60", "--db", str(db))
    assert res.returncode == 0, res.stderr
    assert query(db, "select status, n_children from run") == [("finished", 60)]
    assert len(query(db, "select id from program where is_reference=0")) == 60
    dup = "select program_id from evaluation where kind='full' group by program_id having count(*) > 1"
    assert query(db, dup) == []


def test_a_refused_write_is_a_store_error_naming_the_database(tmp_path):
    store = Store(str(tmp_path / "pb.db"))

    def refuse(conn, cursor, statement, *_):
        if statement.lstrip().upper().startswith("INSERT"):
            raise sqlite3.OperationalError("attempt to write a readonly database")

    event.listen(store.engine, "before_cursor_execute", refuse)
    with pytest.raises(StoreError) as caught:
        store.create_run(env="e", variant="v", strategy="s", agent="a", budget=1, config_json="{}")
    assert (
        str(caught.value) == f"database {tmp_path / 'pb.db'}: attempt to write a readonly database"
    )
    assert caught.value.exit_code == 1
    store.close()
