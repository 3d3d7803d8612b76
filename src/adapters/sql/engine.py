"""Engines for SQLite (the embedded default) and PostgreSQL, and the start-up check.

A configured database that cannot be reached is a hard error (StorageError): printcore
never falls back to SQLite (DESIGN.md, Configuration and defaults).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, SQLAlchemyError

from printcore.errors import StorageError

__all__ = ["check_connection", "database_kind", "make_engine", "normalise_url"]

#: SQLite waits this long (milliseconds) for another writer before giving up.
SQLITE_BUSY_TIMEOUT_MS = 15_000
#: PostgreSQL connection attempts give up after this many seconds.
PG_CONNECT_TIMEOUT_S = 10


def normalise_url(url: str) -> URL:
    """Parse a database URL; ``postgres://`` and ``postgresql://`` become psycopg 3.

    Raises StorageError for an unparsable URL or a database printcore does not support.
    """
    raw = url.strip()
    for prefix in ("postgres://", "postgresql://"):
        if raw.startswith(prefix):
            raw = "postgresql+psycopg://" + raw[len(prefix) :]
    try:
        parsed = make_url(raw)
    except ArgumentError as exc:
        raise StorageError(
            "DATABASE_URL is not a database URL; use sqlite:///path/to/printcore.db or "
            "postgresql://user:password@host:5432/dbname."
        ) from exc
    if parsed.drivername not in ("sqlite", "sqlite+pysqlite", "postgresql+psycopg"):
        raise StorageError(
            f"DATABASE_URL uses {parsed.drivername!r}; printcore supports sqlite:/// and "
            "postgresql:// (psycopg 3) only."
        )
    return parsed


def make_engine(url: str, *, echo: bool = False) -> Engine:
    """An Engine for ``url``; nothing is connected yet.

    SQLite (``sqlite:///var/printcore.db``): the parent folder is created, and each
    connection gets WAL journal mode, ``busy_timeout`` of SQLITE_BUSY_TIMEOUT_MS, foreign
    keys on, and transactions that begin with ``BEGIN IMMEDIATE`` (the write lock is taken
    up front, so two concurrent writers queue instead of failing with "database is
    locked"). PostgreSQL: psycopg 3 with a ``connect_timeout`` of PG_CONNECT_TIMEOUT_S
    unless the URL sets one. Raises StorageError for an unsupported URL.
    """
    parsed = normalise_url(url)
    if parsed.get_backend_name() == "sqlite":
        return _sqlite_engine(parsed, echo)
    connect_args: dict[str, Any] = {}
    if "connect_timeout" not in parsed.query:
        connect_args["connect_timeout"] = PG_CONNECT_TIMEOUT_S
    return create_engine(parsed, echo=echo, pool_pre_ping=True, connect_args=connect_args)


def _sqlite_engine(url: URL, echo: bool) -> Engine:
    database = url.database or ""
    in_memory = database in ("", ":memory:") or database.startswith("file::memory:")
    if not in_memory and not url.query.get("uri"):
        folder = Path(database).expanduser().resolve().parent
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StorageError(
                f"Cannot create the folder {folder} for the SQLite database (DATABASE_URL): "
                f"{exc.strerror or exc}. Choose a writable location."
            ) from exc
    engine = create_engine(url, echo=echo)

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Take BEGIN away from the sqlite3 driver; SQLAlchemy emits it (below).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
            cursor.execute("PRAGMA foreign_keys = ON")
            if not in_memory:
                mode = cursor.execute("PRAGMA journal_mode").fetchone()[0]
                if str(mode).lower() != "wal":
                    cursor.execute("PRAGMA journal_mode = WAL")
        finally:
            cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        # execution option sqlite_begin: "IMMEDIATE" (default), "DEFERRED" or "EXCLUSIVE"
        mode = conn.get_execution_options().get("sqlite_begin", "IMMEDIATE")
        conn.exec_driver_sql(f"BEGIN {mode}")

    return engine


def database_kind(engine: Engine) -> Literal["sqlite", "postgresql"]:
    """Which database ``engine`` talks to. Raises StorageError for any other."""
    name = engine.dialect.name
    if name == "sqlite":
        return "sqlite"
    if name == "postgresql":
        return "postgresql"
    raise StorageError(f"Unsupported database {name!r}; use SQLite or PostgreSQL.")


def describe_location(engine: Engine) -> str:
    """``host:port`` of a PostgreSQL engine, or the SQLite file path (no password)."""
    url = engine.url
    if engine.dialect.name == "sqlite":
        return url.database or ":memory:"
    return f"{url.host or 'localhost'}:{url.port or 5432}"


def _reason(exc: BaseException) -> str:
    text_ = str(getattr(exc, "orig", None) or exc)
    lowered = text_.lower()
    known = [
        ("connection refused", "connection refused"),
        ("could not translate host name", "the host name does not resolve"),
        ("name or service not known", "the host name does not resolve"),
        ("nodename nor servname", "the host name does not resolve"),
        ("temporary failure in name resolution", "the host name does not resolve"),
        ("timeout expired", "timed out"),
        ("timed out", "timed out"),
        ("no password supplied", "a password is required"),
        ("unable to open database file", "the file cannot be opened"),
    ]
    for needle, reason in known:
        if needle in lowered:
            return reason
    if "fatal:" in lowered:  # the server answered, e.g. 'database "x" does not exist'
        return text_[lowered.rindex("fatal:") + 6 :].strip().splitlines()[0].rstrip(".")
    first = text_.strip().splitlines()[0] if text_.strip() else type(exc).__name__
    return first.rstrip(".")


def check_connection(engine: Engine, setting: str = "DATABASE_URL") -> None:
    """Connect once and run ``SELECT 1``.

    Raises StorageError naming the host and port (or the SQLite file) and the reason,
    e.g. "Cannot reach the database at 10.1.2.3:5432 (DATABASE_URL): connection refused.
    ...". ``setting`` names the configuration the URL came from.
    """
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
            conn.rollback()
    except (DBAPIError, SQLAlchemyError, OSError) as exc:
        raise connection_error(engine, exc, setting) from exc


def connection_error(
    engine: Engine, exc: BaseException, setting: str = "DATABASE_URL"
) -> StorageError:
    """The StorageError to raise when ``engine`` cannot connect (see check_connection)."""
    where = describe_location(engine)
    reason = _reason(exc)
    if engine.dialect.name == "sqlite":
        return StorageError(
            f"Cannot open the SQLite database at {where} ({setting}): {reason}. "
            "Check that the folder exists and is writable."
        )
    return StorageError(
        f"Cannot reach the database at {where} ({setting}): {reason}. Check that "
        f"PostgreSQL is running and {setting} is right; printcore never falls back to SQLite."
    )
