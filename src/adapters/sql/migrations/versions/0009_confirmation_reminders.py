"""Confirmation reminders and the print line.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-01

Adds to ``jobs``:

* ``confirmed_at`` (UTC): when the student (or staff) confirmed; the lab prints ready
  jobs in this order, so the student's status page counts the jobs ahead by it. Jobs past
  confirmation when a lab upgrades get the time of their ``confirm``/``force_confirm``
  event from the ``events`` table; one without such an event (history lost) gets its
  ``updated_at``, else its ``created_at``, so none is left out of the line.
* ``reminder_sent_at`` (UTC) and ``reminder_nonce``: when the reminder that a
  confirmation link expires soon went out, and the nonce of the link it was about (a
  resend makes a new link, which may be reminded of again). Existing pending jobs start
  with none, so they are reminded once if their link expires within the lead time.
* indexes on (status, confirmed_at) and (status, confirmation_expires_at) for the
  place-in-line count and the reminder sweep.

Downgrading drops them. Written by hand to match adapters.sql.tables (a test compares
them).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | Sequence[str] | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

#: The states a job is in once confirmed.
CONFIRMED_STATES = ("ready_to_print", "printing", "completed", "paid_picked_up")


def upgrade() -> None:
    op.add_column("jobs", sa.Column("confirmed_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column("jobs", sa.Column("reminder_sent_at", sa.DateTime(timezone=True),
                                    nullable=True))
    op.add_column("jobs", sa.Column("reminder_nonce", sa.String(), nullable=True))
    op.create_index("ix_jobs_status_confirmed_at", "jobs", ["status", "confirmed_at"])
    op.create_index("ix_jobs_status_confirmation_expires_at", "jobs",
                    ["status", "confirmation_expires_at"])
    jobs = sa.table("jobs", sa.column("id", sa.Integer()), sa.column("status", sa.String()),
                    sa.column("confirmed_at"), sa.column("updated_at"),
                    sa.column("created_at"))
    events = sa.table("events", sa.column("subject", sa.String()),
                      sa.column("subject_id", sa.Integer()), sa.column("kind", sa.String()),
                      sa.column("at"))
    confirmed = (
        sa.select(sa.func.max(events.c.at))
        .where(events.c.subject == "job", events.c.subject_id == jobs.c.id,
               events.c.kind.in_(("confirm", "force_confirm")))
        .scalar_subquery()
    )
    bind = op.get_bind()
    past = jobs.c.status.in_(CONFIRMED_STATES)
    bind.execute(sa.update(jobs).where(past).values(confirmed_at=confirmed))
    bind.execute(
        sa.update(jobs).where(past, jobs.c.confirmed_at.is_(None))
        .values(confirmed_at=sa.func.coalesce(jobs.c.updated_at, jobs.c.created_at))
    )


def downgrade() -> None:
    op.drop_index("ix_jobs_status_confirmation_expires_at", table_name="jobs")
    op.drop_index("ix_jobs_status_confirmed_at", table_name="jobs")
    op.drop_column("jobs", "reminder_nonce")
    op.drop_column("jobs", "reminder_sent_at")
    op.drop_column("jobs", "confirmed_at")
