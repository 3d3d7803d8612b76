"""SQL persistence (SQLAlchemy Core + Alembic) for SQLite and PostgreSQL."""

from __future__ import annotations

from adapters.sql.engine import check_connection, database_kind, make_engine
from adapters.sql.migrate import current_revision, upgrade
from adapters.sql.uow import SqlUnitOfWork

__all__ = [
    "SqlUnitOfWork",
    "check_connection",
    "current_revision",
    "database_kind",
    "make_engine",
    "upgrade",
]
