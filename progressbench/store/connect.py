"""Reaching the database: a ``--db`` argument as a URL, the engine (SQLite in WAL mode), and
the one-line texts of what went wrong."""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError
from sqlmodel import create_engine

from progressbench.errors import UserError

DEFAULT_DB = "progressbench.db"
SQLITE = "sqlite:///"


def resolve_url(db: str | None) -> str:
    """A database argument (a path or any SQLAlchemy URL) as a URL, or a one-line error."""
    db = db or DEFAULT_DB
    if "://" not in db:
        path = Path(db).expanduser()
        if path.is_dir():
            raise UserError(f"--db {db!r} is a directory; give a file path or a database URL")
        if not path.parent.exists():
            raise UserError(f"--db {db!r}: folder {str(path.parent)!r} does not exist")
        return f"{SQLITE}{path.resolve()}"
    try:
        url = make_url(db)
    except (ArgumentError, ValueError):
        raise UserError(f"--db {db!r} is not a valid database URL") from None
    return url.render_as_string(hide_password=False)


def sqlite_path(url: str) -> Path | None:
    """The database file of a SQLite URL; None for a server database."""
    return Path(url[len(SQLITE) :]) if url.startswith(SQLITE) else None


def db_flag(url: str) -> str:
    """`` --db WHERE`` for a command that must reach this database, or nothing for the
    default file (a server URL keeps its password: the command must be able to connect)."""
    path = sqlite_path(url)
    if path is not None and path == Path(DEFAULT_DB).resolve():
        return ""
    return f" --db {shlex.quote(str(path) if path is not None else url)}"


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA busy_timeout=30000")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.close()


def connect(url: str) -> Engine:
    """The engine of ``url`` (nothing is reached yet), or a one-line error."""
    try:
        engine = create_engine(url)
    except (ArgumentError, SQLAlchemyError, ImportError) as exc:
        raise UserError(f"cannot open database {safe_url(url)}: {first_line(exc)}") from None
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)
    return engine


def first_line(exc: BaseException) -> str:
    """The first line of a database error (the driver's own message where there is one)."""
    text = str(getattr(exc, "orig", None) or exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def safe_url(url: str) -> str:
    """The URL without its password, for messages."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return url


def use_wal(engine: Engine) -> None:
    """WAL: readers never block the writer, and a killed writer loses no committed work. Set
    once the file is known to be ours (the mode is kept in the file: a foreign file stays as
    it was)."""
    if engine.dialect.name == "sqlite":
        with engine.connect() as conn:
            conn.exec_driver_sql("PRAGMA journal_mode=WAL")
