"""Job review: ``reviewed_at`` and ``reviewed_by`` on jobs (both NULL: not reviewed, NEW).

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-15

A job nobody on staff has marked reviewed shows a NEW badge on the staff pages
(``PrintRequests.mark_reviewed``). The jobs already there when a lab upgrades are marked
reviewed at migration time (``reviewed_at`` = the moment of the upgrade, UTC) by
``'before upgrade'`` (not a staff name, and no event is written for it), so an upgraded
lab is not flooded with NEW badges for work it has long seen. Downgrading drops both
columns, and with them every review.

Written by hand to match adapters.sql.tables (a test compares them).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

from adapters.sql.types import UTCDateTime

revision: str = "0006"
down_revision: str | Sequence[str] | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

#: ``reviewed_by`` of the jobs that were there before this migration.
BEFORE_UPGRADE = "before upgrade"


def upgrade() -> None:
    op.add_column("jobs", sa.Column("reviewed_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column("jobs", sa.Column("reviewed_by", sa.String(), nullable=True))
    jobs = sa.table(
        "jobs",
        sa.column("reviewed_at", UTCDateTime()),
        sa.column("reviewed_by", sa.String()),
    )
    op.get_bind().execute(
        sa.update(jobs).values(reviewed_at=datetime.now(UTC), reviewed_by=BEFORE_UPGRADE)
    )


def downgrade() -> None:
    op.drop_column("jobs", "reviewed_by")
    op.drop_column("jobs", "reviewed_at")
