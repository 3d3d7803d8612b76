"""An index for the reports' per-kind reads: ``events (subject, kind, at)``, on
PostgreSQL covering ``subject_id`` too (``INCLUDE``).

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-01

The reports (``adapters.sql.analytics``) read some kinds of job events in a date range:
the rejections (their reasons), the pickups (the jobs whose payments give the material)
and the counted kinds per day. ``(subject, at)`` (0011) serves a range but not a kind, so
a year read the whole log for 4,375 rejections. With this index, on the benchmark's
100,000 events (bench/bench_reports.py, PostgreSQL's CPU time per query): the year's
reasons 19.5 → 4 ms, material 46 → 38 ms, counts 28 → 25 ms. Downgrading drops it.

Written by hand to match adapters.sql.tables (a test compares them).
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0012"
down_revision: str | Sequence[str] | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_events_subject_kind_at", "events", ["subject", "kind", "at"],
                    postgresql_include=["subject_id"])


def downgrade() -> None:
    op.drop_index("ix_events_subject_kind_at", table_name="events")
