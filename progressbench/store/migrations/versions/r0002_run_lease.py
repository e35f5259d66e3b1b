"""The run lease: which process runs a run (``progressbench.store.lease``).

Revision ID: r0002_run_lease
Revises: r0001_baseline
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "r0002_run_lease"
down_revision = "r0001_baseline"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "run_lease",
        sa.Column("run_id", sa.String(), nullable=False),
        sa.Column("token", sa.String(), nullable=False),
        sa.Column("host", sa.String(), nullable=False),
        sa.Column("pid", sa.Integer(), nullable=False),
        sa.Column("node", sa.String(), nullable=False),
        sa.Column("pid_started", sa.String(), nullable=False),
        sa.Column("since_s", sa.Float(), nullable=False),
        sa.Column("heartbeat_s", sa.Float(), nullable=False),
        sa.Column("scratch_json", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(["run_id"], ["run.id"]),
        sa.PrimaryKeyConstraint("run_id"),
    )


def downgrade() -> None:
    op.drop_table("run_lease")
