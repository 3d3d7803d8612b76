"""``printcore db copy --to URL`` (issue 13): move a lab from SQLite to PostgreSQL.
Registration point; ``db upgrade`` stays in entrypoints.cli."""

from __future__ import annotations

from typing import Any

__all__ = ["add_db_parsers"]


def add_db_parsers(db_sub: Any) -> None:
    """Add subcommands to ``printcore db``'s subparsers ``db_sub``."""
    del db_sub
