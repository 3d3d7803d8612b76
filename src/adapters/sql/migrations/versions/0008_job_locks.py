"""Soft locks on jobs: ``job_locks``, one row per job (printcore.requests.locks).

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-01

A row says who holds the job's lock (staff name, workstation, action) and until when
(UTC); it stays after it expires until the next take or release replaces or removes it.
Downgrading drops the table, and with it every lock (they last two minutes anyway).

Written by hand to match adapters.sql.tables (a test compares them).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | Sequence[str] | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "job_locks",
        sa.Column("job_id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("staff_name", sa.String(), nullable=False),
        sa.Column("workstation", sa.String(), nullable=False),
        sa.Column("action", sa.String(length=32), nullable=False),
        sa.Column("taken_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("job_id", name="pk_job_locks"),
    )


def downgrade() -> None:
    op.drop_table("job_locks")
