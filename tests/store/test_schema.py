"""The schema on open: a fresh database is stamped, an older one upgraded by the migrations
with its rows untouched, and a foreign, corrupt, clashing or newer one refused with one line
and nothing written."""

from __future__ import annotations

import hashlib
import sqlite3
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from conftest import pb, query
from sqlalchemy import create_engine
from sqlmodel import SQLModel

from progressbench.store import Store, StoreError
from progressbench.store import schema as sch


def tables(db: Path) -> list[str]:
    return [
        r[0] for r in query(db, "select name from sqlite_master where type='table' order by name")
    ]


def digest(db: Path) -> str:
    return hashlib.sha256(db.read_bytes()).hexdigest()


def stamp(db: Path) -> list[tuple]:
    return query(db, f"select version_num from {sch.VERSION_TABLE}")


def test_the_revisions_named_in_schema_are_the_migrations_in_order():
    script = ScriptDirectory(str(sch.MIGRATIONS))
    walked = [r.revision for r in reversed(list(script.walk_revisions()))]
    assert tuple(walked) == sch.REVISIONS and script.get_current_head() == sch.HEAD


def test_a_new_database_is_stamped_with_the_newest_revision(db):
    Store(str(db)).close()
    assert stamp(db) == [(sch.HEAD,)]


def test_the_migrations_build_exactly_the_tables_schema(tmp_path):
    engine = create_engine(f"sqlite:///{tmp_path / 'm.db'}")
    sch.upgrade(engine)
    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"version_table": sch.VERSION_TABLE})
        diff = compare_metadata(context, SQLModel.metadata)
    assert diff == []


def baseline_db(db: Path) -> None:
    """A database as progressbench wrote it before revisions existed: the baseline's tables,
    no stamp, and a finished run."""
    res = pb("run", "--budget", "3", "--strategy", "greedy", "--db", str(db))
    assert res.returncode == 0, res.stderr
    con = sqlite3.connect(db)
    con.executescript(f"drop table run_lease; drop table {sch.VERSION_TABLE};")
    con.close()


def test_an_unversioned_database_of_the_baseline_is_upgraded_with_its_rows_untouched(db):
    baseline_db(db)
    before = {t: query(db, f"select * from {t}") for t in tables(db)}
    (rid,) = query(db, "select id from run")[0]
    res = pb("show", rid, "--db", str(db))
    assert res.returncode == 0, res.stderr
    assert stamp(db) == [(sch.HEAD,)] and "run_lease" in tables(db)
    assert {t: query(db, f"select * from {t}") for t in before} == before
    # Resuming the finished run without more budget says so and changes nothing.
    res = pb("run", "--resume", rid, "--db", str(db))
    assert res.returncode == 2 and "already finished its budget of 3" in res.stderr
    assert {t: query(db, f"select * from {t}") for t in before} == before
    assert query(db, "select count(*) from run_lease") == [(0,)]


def test_an_older_revision_is_upgraded(db):
    engine = create_engine(f"sqlite:///{db}")
    sch.upgrade(engine, sch.BASELINE)
    engine.dispose()
    assert "run_lease" not in tables(db)
    Store(str(db)).close()
    assert stamp(db) == [(sch.HEAD,)] and "run_lease" in tables(db)


def one_line(res) -> str:
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1, res.stderr
    return lines[0]


def test_a_foreign_database_is_refused_and_gains_no_table(db):
    con = sqlite3.connect(db)
    con.executescript(
        "create table customer (id integer primary key, name text);"
        "insert into customer values (1, 'ada');"
    )
    con.close()
    before = digest(db)
    res = pb("run", "--budget", "2", "--db", str(db))
    assert res.returncode == 1
    assert f"database {db} is not a progressbench database" in one_line(res)
    assert "customer" in one_line(res)
    assert tables(db) == ["customer"] and digest(db) == before


def test_a_clashing_unversioned_schema_is_refused(db):
    con = sqlite3.connect(db)
    con.executescript("create table run (id text primary key, budget integer);")
    con.close()
    res = pb("leaderboard", "--db", str(db))
    assert res.returncode == 1
    assert "table run lacks columns" in one_line(res) and str(db) in one_line(res)
    assert tables(db) == ["run"]


def test_a_newer_schema_is_refused(db):
    Store(str(db)).close()
    con = sqlite3.connect(db)
    con.execute(f"update {sch.VERSION_TABLE} set version_num = 'r9999_future'")
    con.commit()
    con.close()
    before = digest(db)
    res = pb("run", "--budget", "2", "--db", str(db))
    assert res.returncode == 1
    assert "'r9999_future'" in one_line(res) and "newer version" in one_line(res)
    assert digest(db) == before
    with pytest.raises(StoreError, match="newer version"):
        Store(str(db), create=False)


def test_a_file_with_corrupt_pages_is_refused_before_a_run_writes(db):
    res = pb("run", "--budget", "3", "--strategy", "greedy", "--db", str(db))
    assert res.returncode == 0, res.stderr
    con = sqlite3.connect(db)
    con.execute("pragma wal_checkpoint(truncate)")
    con.close()
    data = bytearray(db.read_bytes())
    page = 4096
    assert len(data) > 4 * page
    data[2 * page : 3 * page] = b"\xa5" * page  # an index or table page, garbled
    db.write_bytes(bytes(data))
    before = digest(db)
    res = pb("run", "--budget", "3", "--db", str(db))
    assert res.returncode in (1, 2)
    assert str(db) in one_line(res) and ("corrupt" in one_line(res) or "malformed" in one_line(res))
    assert digest(db) == before


def test_a_file_that_is_not_a_database_is_one_line(db):
    db.write_text("these are my notes, not a database\n" * 200)
    res = pb("leaderboard", "--db", str(db))
    assert res.returncode in (1, 2) and str(db) in one_line(res)
    assert "not a database" in one_line(res)
