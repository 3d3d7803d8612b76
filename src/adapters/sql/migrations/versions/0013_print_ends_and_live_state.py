"""Known print ends and upper bounds (issue 14, defect 2) and what watched printers
report (issue 15).

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-01

``tickets``: ``ended_at`` (when the print ended, if someone said or the printer
reported it), ``ended_by`` (``member``, ``printer``, ``staff``), ``bound_minutes`` (the
close time − the start when the end is not known: an upper bound on the duration).
Before this revision every closed ticket's ``actual_minutes`` was close − start, known
or not: the upgrade moves those to ``bound_minutes`` (a print closed the next morning was
stored as 11 h for a 58-minute print); the downgrade moves bounds back.

``printers``: the last state a watched printer reported (``live_*``, see
``printcore.queue.printer_status.PrinterLiveState``), ``print_key`` of the open print
and ``last_print_key`` of the last one closed (a repeated report changes nothing),
``unclaimed_since`` (a print the printer reported that nobody claimed).

Written by hand to match adapters.sql.tables (a test compares them).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013"
down_revision: str | Sequence[str] | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_PRINTER_COLUMNS = [
    ("live_state", sa.String(16)),
    ("live_at", sa.DateTime(timezone=True)),
    ("live_percent", sa.Integer()),
    ("live_layer", sa.Integer()),
    ("live_total_layers", sa.Integer()),
    ("live_remaining_minutes", sa.Integer()),
    ("live_file", sa.String()),
    ("live_error", sa.String()),
    ("print_key", sa.String()),
    ("last_print_key", sa.String()),
    ("unclaimed_since", sa.DateTime(timezone=True)),
]


def upgrade() -> None:
    with op.batch_alter_table("tickets") as batch:
        batch.add_column(sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("ended_by", sa.String(16), nullable=True))
        batch.add_column(sa.Column("bound_minutes", sa.Integer(), nullable=True))
    op.execute("UPDATE tickets SET bound_minutes = actual_minutes, actual_minutes = NULL "
               "WHERE actual_minutes IS NOT NULL")
    with op.batch_alter_table("printers") as batch:
        for name, kind in _PRINTER_COLUMNS:
            batch.add_column(sa.Column(name, kind, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("printers") as batch:
        for name, _ in reversed(_PRINTER_COLUMNS):
            batch.drop_column(name)
    op.execute("UPDATE tickets SET actual_minutes = bound_minutes "
               "WHERE actual_minutes IS NULL AND bound_minutes IS NOT NULL")
    with op.batch_alter_table("tickets") as batch:
        batch.drop_column("bound_minutes")
        batch.drop_column("ended_by")
        batch.drop_column("ended_at")
