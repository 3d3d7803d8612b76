"""Confirmation reminders and the print line.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-01

Reserved for issue 12 (student side); filled in by that work. Written by hand to match
adapters.sql.tables (a test compares them).
"""

from __future__ import annotations

from collections.abc import Sequence

revision: str = "0009"
down_revision: str | Sequence[str] | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
