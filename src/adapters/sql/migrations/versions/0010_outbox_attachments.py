"""Attachments on outbox rows: ``attachment_name``, ``attachment_type`` and
``attachment`` (the file's bytes) on ``outbox``, all NULL for a message without one.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-01

An email row may carry one file (the payments export for the finance office,
``printcore.outbox.Attachment``, at most 10 MB). The bytes are kept in a binary column
(BYTEA on PostgreSQL, BLOB on SQLite) rather than base64 in the JSON ``payload``, so the
row lists stay small and a retry sends the same file. Existing rows have none.
Downgrading drops the three columns, and with them the files of unsent messages.

Written by hand to match adapters.sql.tables (a test compares them).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | Sequence[str] | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("outbox", sa.Column("attachment_name", sa.String(), nullable=True))
    op.add_column("outbox", sa.Column("attachment_type", sa.String(), nullable=True))
    op.add_column("outbox", sa.Column("attachment", sa.LargeBinary(), nullable=True))


def downgrade() -> None:
    op.drop_column("outbox", "attachment")
    op.drop_column("outbox", "attachment_type")
    op.drop_column("outbox", "attachment_name")
