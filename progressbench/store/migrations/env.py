"""Alembic's entry point: migrate the connection ``progressbench.store.schema.upgrade`` opened,
recording the revision in our own version table."""

from __future__ import annotations

from alembic import context
from sqlmodel import SQLModel

from progressbench.store import tables  # noqa: F401  (the tables, for autogenerate)
from progressbench.store.schema import VERSION_TABLE

context.configure(
    connection=context.config.attributes["connection"],
    target_metadata=SQLModel.metadata,
    version_table=VERSION_TABLE,
    # SQLite alters a table by copying it: batch mode does that.
    render_as_batch=True,
)
with context.begin_transaction():
    context.run_migrations()
