"""``printcore db copy --to URL`` (issue 13): move a lab from SQLite to PostgreSQL.

    printcore db copy --to postgresql://user:password@host:5432/printcore

copies every table of the current database (DATABASE_URL, normally the embedded SQLite)
into an EMPTY PostgreSQL database (adapters.sql.copy: migrated to the head first, one
transaction, identity sequences reset, row counts verified) and prints the rows per
table. The storage root is unchanged. Stop the server first (writes after the copy's
snapshot would stay behind in the old database), then set DATABASE_URL to the new URL.

Exit codes: 0 copied; 1 refused (the target has rows, the source is not at the head),
nothing copied; 2 a URL that is not PostgreSQL or a database that cannot be reached.
``db upgrade`` stays in entrypoints.cli.
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

from printcore.errors import StorageError

if TYPE_CHECKING:  # annotations only: main() loads the settings
    from entrypoints.settings import Settings

__all__ = ["add_db_parsers"]


def _target_url(raw: str) -> str:
    """``raw`` as a psycopg URL; StorageError (exit 2) unless it is a PostgreSQL URL."""
    from adapters.sql.engine import normalise_url

    hint = ("--to needs a PostgreSQL URL of an empty database, e.g. "
            "postgresql://user:password@host:5432/printcore.")
    try:
        url = normalise_url(raw)
    except StorageError:
        raise StorageError(f"{raw!r} is not a database URL; {hint}") from None
    if url.get_backend_name() != "postgresql" or not url.database:
        shown = url.render_as_string(hide_password=True)
        raise StorageError(f"{shown} is not a PostgreSQL database; {hint}")
    return url.render_as_string(hide_password=False)


def cmd_db_copy(settings: Settings, args: argparse.Namespace) -> int:
    from sqlalchemy.engine import make_url

    from adapters.sql.copy import copy_database
    from adapters.sql.engine import check_connection, make_engine

    url = _target_url(args.to)
    shown = make_url(url).render_as_string(hide_password=True)
    source = make_engine(settings.database_url)
    target = make_engine(url)
    try:
        check_connection(source)
        check_connection(target, "--to")
        result = copy_database(source, target)
    finally:
        source.dispose()
        target.dispose()
    width = max(len(name) for name in result.counts)
    print(f"copied into {shown} (migration revision {result.revision}), in one transaction:")
    for name, count in result.counts.items():
        print(f"  {name:<{width}}  {count:>8} rows  (verified)")
    print(f"the storage root is unchanged: {settings.storage_root}")
    secret = " (with its password)" if make_url(url).password else ""
    print(f"next: stop the server, set DATABASE_URL={shown}{secret} and start it again")
    return 0


def add_db_parsers(db_sub: Any) -> None:
    """Add ``copy`` to ``printcore db``'s subparsers ``db_sub``."""
    copy = db_sub.add_parser(
        "copy", help="copy every table into an empty PostgreSQL database",
        description="Copy every table of the current database into an empty PostgreSQL "
                    "database (migrated first; one transaction; counts verified). The "
                    "storage root is unchanged.")
    copy.add_argument("--to", required=True, metavar="URL",
                      help="postgresql://user:password@host:5432/dbname of an empty database")
    copy.set_defaults(func=cmd_db_copy)
