"""The schema, checked on open: a store writes only into a database that is its own, at a
schema revision it knows, upgraded by the migrations in ``progressbench.store.migrations``.

- empty: the tables are created and stamped with the newest revision;
- stamped with an older revision: upgraded (alembic) to the newest, rows untouched;
- no stamp but exactly the tables this version had before revisions existed (the baseline):
  stamped with the baseline, then upgraded;
- anything else is refused with one line, and nothing is written: tables that are not ours
  (a foreign database), our tables with other columns (an unversioned older or clashing
  schema), a revision this code does not know (written by a newer progressbench), a SQLite
  file whose pages are corrupt.

The stamp lives in ``progressbench_version`` (alembic's version table under our own name), so a
database that another application versions with alembic is never mistaken for ours.
"""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import Column, MetaData, PrimaryKeyConstraint, String, Table, inspect, select
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError
from sqlmodel import SQLModel

from progressbench.errors import RunFailed
from progressbench.store import tables

VERSION_TABLE = "progressbench_version"
# Oldest first; tests check them against the migrations folder. HEAD is what the tables are.
REVISIONS = ("r0001_baseline", "r0002_run_lease")
BASELINE, HEAD = REVISIONS[0], REVISIONS[-1]
# Tables the migrations after the baseline added: an unversioned database predates them.
AFTER_BASELINE = {tables.RunLease.__tablename__}
MIGRATIONS = Path(__file__).with_name("migrations")

# The version table exactly as alembic makes it, so alembic reads and moves the stamp.
_version = Table(
    VERSION_TABLE,
    MetaData(),
    Column("version_num", String(32), nullable=False),
    PrimaryKeyConstraint("version_num", name=f"{VERSION_TABLE}_pkc"),
)


class StoreError(RunFailed):
    """The database cannot be used (a storage fault, a schema this code must not write):
    exit code 1; what is stored stays as it was."""


def prepare(engine: Engine, location: str) -> None:
    """Make the database at ``engine`` ready for this code, or raise StoreError. A database
    created at the same moment by another process is seen on the second look."""
    for attempt in (1, 2):
        try:
            _prepare(engine, location)
            return
        except DBAPIError:
            if attempt == 2:
                raise


def _prepare(engine: Engine, location: str) -> None:
    with engine.connect() as conn:
        names = {n for n in inspect(conn).get_table_names() if not n.startswith("sqlite_")}
        stamp = (
            conn.execute(select(_version.c.version_num)).scalar()
            if VERSION_TABLE in names
            else None
        )
    names.discard(VERSION_TABLE)
    if stamp == HEAD:
        return
    if names:  # about to change a database that has data: its pages first
        check_pages(engine, location)
    if stamp is None:
        if names:
            _check_unversioned(engine, names, location)
        with engine.begin() as conn:
            wanted = [
                t
                for n, t in SQLModel.metadata.tables.items()
                if not names or n not in AFTER_BASELINE
            ]
            SQLModel.metadata.create_all(conn, tables=wanted)
            _version.create(conn, checkfirst=True)
            conn.execute(_version.insert().values(version_num=HEAD if not names else BASELINE))
        if not names:
            return
        stamp = BASELINE
    if stamp not in REVISIONS:
        raise StoreError(
            f"database {location} has schema revision {stamp!r}, which this progressbench does "
            f"not know (newest known: {HEAD}): it was written by a newer version; upgrade "
            "progressbench to use it"
        )
    upgrade(engine)


def check_pages(engine: Engine, location: str) -> None:
    """Refuse a SQLite file with corrupt pages before writing into it (a reader meets the
    corruption as an error on the page it reads)."""
    if engine.dialect.name != "sqlite":
        return
    with engine.connect() as conn:
        found = [row[0] for row in conn.exec_driver_sql("PRAGMA quick_check").fetchall()]
    if found != ["ok"]:
        first = " ".join(str(found[0]).split()) if found else "no answer"
        raise StoreError(
            f"database {location} is corrupt ({first}); nothing was written: restore it from "
            "a backup or give another --db"
        )


def _check_unversioned(engine: Engine, names: set[str], location: str) -> None:
    """``names`` (no stamp) must be the baseline's tables with the baseline's columns."""
    ours = set(SQLModel.metadata.tables) - AFTER_BASELINE
    foreign = sorted(names - ours)
    if foreign:
        shown = ", ".join(foreign[:4]) + (", ..." if len(foreign) > 4 else "")
        raise StoreError(
            f"database {location} is not a progressbench database (it has other tables: "
            f"{shown}, and no {VERSION_TABLE}); nothing was written: give another --db"
        )
    inspector = inspect(engine)
    for name in sorted(names):
        have = {c["name"] for c in inspector.get_columns(name)}
        want = {c.name for c in SQLModel.metadata.tables[name].columns}
        if have != want:
            diff = sorted(want - have) or sorted(have - want)
            what = "lacks" if want - have else "has unknown"
            raise StoreError(
                f"database {location} has a progressbench schema this version cannot upgrade "
                f"(table {name} {what} columns {', '.join(diff)}; it carries no "
                f"{VERSION_TABLE}); nothing was written: give another --db"
            )


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Run the migrations up to ``revision`` in one transaction."""
    from alembic import command
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    with engine.begin() as conn:
        config.attributes["connection"] = conn
        command.upgrade(config, revision)
