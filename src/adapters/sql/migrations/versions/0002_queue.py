"""The self-service queue: printers and tickets.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23

Written by hand to match adapters.sql.tables (a test compares them).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "printers",
        sa.Column("id", sa.Integer(), sa.Identity(), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("label", sa.String(), nullable=False),
        sa.Column("status", sa.String(length=32), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("holder_ticket", sa.Integer(), nullable=True),
        sa.Column("holder", sa.String(), nullable=True),
        sa.Column("claim_deadline", sa.DateTime(timezone=True), nullable=True),
        sa.Column("start_deadline", sa.DateTime(timezone=True), nullable=True),
        sa.Column("print_ticket", sa.Integer(), nullable=True),
        sa.Column("print_member", sa.String(), nullable=True),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("predicted_end", sa.DateTime(timezone=True), nullable=True),
        sa.Column("offer_not_before", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_printers"),
        sa.UniqueConstraint("name", name="uq_printers_name"),
        sqlite_autoincrement=True,
    )
    op.create_table(
        "tickets",
        sa.Column("id", sa.Integer(), sa.Identity(), nullable=False),
        sa.Column("member", sa.String(), nullable=False),
        sa.Column("member_name", sa.String(), nullable=False),
        sa.Column("job_name", sa.String(), nullable=False),
        sa.Column("est_minutes", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("queue_key", sa.Float(precision=53), nullable=False),
        sa.Column("status", sa.String(length=32), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("printer", sa.String(length=64), nullable=True),
        sa.Column("offered_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("claimed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("outcome", sa.String(length=16), nullable=True),
        sa.Column("actual_minutes", sa.Integer(), nullable=True),
        sa.Column("photo_url", sa.String(), nullable=True),
        sa.Column("misses", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_tickets"),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_tickets_status_queue_key", "tickets", ["status", "queue_key"])
    op.create_index("ix_tickets_member_id", "tickets", ["member", "id"])


def downgrade() -> None:
    op.drop_index("ix_tickets_member_id", table_name="tickets")
    op.drop_index("ix_tickets_status_queue_key", table_name="tickets")
    op.drop_table("tickets")
    op.drop_table("printers")
