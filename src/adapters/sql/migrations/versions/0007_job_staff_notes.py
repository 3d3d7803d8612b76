"""Staff notes on jobs: ``staff_notes`` (text, '' when none), ``staff_notes_by`` and
``staff_notes_at`` (who last changed them and when, UTC; NULL until someone does).

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-01

Written by ``PrintRequests.set_staff_notes`` (one ``notes`` event per change). Jobs that
were there before the upgrade start without notes. Downgrading drops the three columns,
and with them every note (the ``notes`` events keep their texts).

Written by hand to match adapters.sql.tables (a test compares them).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | Sequence[str] | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("jobs", sa.Column("staff_notes", sa.Text(), nullable=False,
                                    server_default=""))
    op.add_column("jobs", sa.Column("staff_notes_by", sa.String(), nullable=True))
    op.add_column("jobs", sa.Column("staff_notes_at", sa.DateTime(timezone=True),
                                    nullable=True))


def downgrade() -> None:
    op.drop_column("jobs", "staff_notes_at")
    op.drop_column("jobs", "staff_notes_by")
    op.drop_column("jobs", "staff_notes")
