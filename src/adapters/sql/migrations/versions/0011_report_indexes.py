"""An index for the reports: ``events (subject, at)``, on PostgreSQL covering ``kind``
and ``subject_id`` too (``INCLUDE``).

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-01

The reports (``adapters.sql.analytics``) read the events of a date range by subject
(``job``, ``ticket``) and time; until now only ``(subject, subject_id, id)`` was
indexed, so every report scanned the whole log. With this index a month's counts and
rejection reasons read the month's entries only (bench/bench_reports.py: 28 → 6 ms and
21 → 4 ms on 100,000 events); a year still reads most of the log. Downgrading drops it.

Written by hand to match adapters.sql.tables (a test compares them).
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0011"
down_revision: str | Sequence[str] | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_events_subject_at", "events", ["subject", "at"],
                    postgresql_include=["kind", "subject_id"])


def downgrade() -> None:
    op.drop_index("ix_events_subject_at", table_name="events")
