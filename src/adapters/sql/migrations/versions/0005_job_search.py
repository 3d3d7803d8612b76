"""Job search: a ``search_text`` column on jobs, backfilled, and an index fit for LIKE.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-08

``search_text`` is :func:`printcore.requests.search.search_text` (folded name, email and
file names, one per line); the repository writes it with every add and update, and this
migration fills it in for the rows already there.

On PostgreSQL the index is a GIN trigram index (``pg_trgm``), which serves
``LIKE '%…%'``: the migration creates the extension if it is not there yet (in a
savepoint: a server without the extension, or a role that may not create it, keeps
going) and uses the schema it lives in for the operator class. Without ``pg_trgm`` the
index is a B-tree of the same name (same columns, so the schema check still agrees) and a
search reads the whole table. On SQLite it is a plain index; a search is a plain LIKE.

Written by hand to match adapters.sql.tables (a test compares them).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.exc import DBAPIError

from printcore.requests.search import search_text_of

revision: str = "0005"
down_revision: str | Sequence[str] | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

INDEX = "ix_jobs_search_text"
_log = logging.getLogger(__name__)


def _trigram_schema(conn: sa.Connection) -> str | None:
    """The schema holding pg_trgm, creating the extension if it can; None without it."""
    try:
        with conn.begin_nested():
            conn.exec_driver_sql("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    except DBAPIError as exc:
        _log.warning("pg_trgm is not available (%s); job search will scan the table.",
                     exc.orig)
    schema = conn.exec_driver_sql(
        "SELECT n.nspname FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace "
        "WHERE e.extname = 'pg_trgm'"
    ).scalar_one_or_none()
    return None if schema is None else str(schema)


def _backfill(conn: sa.Connection) -> None:
    jobs = sa.table(
        "jobs",
        sa.column("id", sa.Integer()),
        sa.column("student_name", sa.String()),
        sa.column("email", sa.String()),
        sa.column("files", sa.JSON()),
        sa.column("search_text", sa.Text()),
    )
    rows = conn.execute(sa.select(jobs.c.id, jobs.c.student_name, jobs.c.email, jobs.c.files))
    values = []
    for job_id, name, email, files in rows:
        names: list[str] = []
        for f in files or []:
            names.extend(str(f.get(key) or "") for key in ("original_name", "stored_name"))
        values.append({"b_id": job_id, "b_text": search_text_of(name or "", email or "", names)})
    if values:
        conn.execute(
            sa.update(jobs).where(jobs.c.id == sa.bindparam("b_id"))
            .values(search_text=sa.bindparam("b_text")),
            values,
        )


def upgrade() -> None:
    op.add_column(
        "jobs", sa.Column("search_text", sa.Text(), server_default="", nullable=False)
    )
    conn = op.get_bind()
    _backfill(conn)
    if conn.dialect.name == "postgresql":
        schema = _trigram_schema(conn)
        if schema is not None:
            opclass = f'"{schema}".gin_trgm_ops'
            op.execute(f"CREATE INDEX {INDEX} ON jobs USING gin (search_text {opclass})")
            return
    op.create_index(INDEX, "jobs", ["search_text"])


def downgrade() -> None:
    op.drop_index(INDEX, table_name="jobs")
    op.drop_column("jobs", "search_text")
