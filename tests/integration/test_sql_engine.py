"""The SQL adapter's engine, column types, connection check and migrations."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Column, Engine, MetaData, Table, inspect, select
from sqlalchemy.exc import StatementError

from adapters.sql import (
    SqlUnitOfWork,
    check_connection,
    current_revision,
    database_kind,
    make_engine,
    upgrade,
)
from adapters.sql.migrate import MIGRATIONS, downgrade, head_revision
from adapters.sql.tables import metadata
from adapters.sql.types import UTCDateTime
from printcore.errors import StorageError
from printcore.requests.job import Job

TABLES = {"jobs", "events", "staff", "settings", "printers", "tickets"}


def _job(at: datetime) -> Job:
    return Job("Ada", "ada@example.edu", "Art", "ART 1", "filament", "red", at, updated_at=at)


# --- SQLite ---------------------------------------------------------------------------


def test_sqlite_file_gets_wal_busy_timeout_and_foreign_keys(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'deep' / 'er' / 'printcore.db'}")
    try:
        with engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == 15000
            assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        assert (tmp_path / "deep" / "er" / "printcore.db").is_file()
        assert database_kind(engine) == "sqlite"
    finally:
        engine.dispose()


def test_sqlite_returns_aware_utc_datetimes(sqlite_engine: Engine) -> None:
    chicago = timezone(timedelta(hours=-5))
    at = datetime(2026, 9, 1, 10, 0, 0, 5, tzinfo=chicago)
    with SqlUnitOfWork(sqlite_engine) as uow:
        job_id = uow.jobs.add(_job(at))
        uow.commit()
    with SqlUnitOfWork(sqlite_engine) as uow:
        stored = uow.jobs.get(job_id)
    assert stored.created_at == at
    assert stored.created_at.tzinfo is UTC
    assert stored.created_at == datetime(2026, 9, 1, 15, 0, 0, 5, tzinfo=UTC)


def test_naive_datetimes_are_refused(sqlite_engine: Engine) -> None:
    with SqlUnitOfWork(sqlite_engine) as uow, pytest.raises(ValueError, match="naive"):
        uow.jobs.add(_job(datetime(2026, 9, 1, 15)))
    table = Table("t", MetaData(), Column("at", UTCDateTime))
    with sqlite_engine.connect() as conn:
        table.create(conn)
        with pytest.raises(StatementError) as caught:
            conn.execute(table.insert().values(at=datetime(2026, 9, 1)))
        assert isinstance(caught.value.orig, ValueError)
        conn.execute(table.insert().values(at=datetime(2026, 9, 1, tzinfo=UTC)))
        assert conn.execute(select(table.c.at)).scalar() == datetime(2026, 9, 1, tzinfo=UTC)


@pytest.mark.postgres
def test_postgresql_returns_aware_utc_datetimes(pg_engine: Engine) -> None:
    at = datetime(2026, 9, 1, 10, 0, 0, 5, tzinfo=timezone(timedelta(hours=-5)))
    with SqlUnitOfWork(pg_engine) as uow:
        job_id = uow.jobs.add(_job(at))
        uow.commit()
    with SqlUnitOfWork(pg_engine) as uow:
        stored = uow.jobs.get(job_id)
    assert stored.created_at == at and stored.created_at.utcoffset() == timedelta(0)
    assert database_kind(pg_engine) == "postgresql"


# --- URLs and the connection check ----------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "postgres://u:secret@db:5433/pc",
        "postgresql://u:secret@db:5433/pc",
        "postgresql+psycopg://u:secret@db:5433/pc",
    ],
)
def test_postgresql_urls_use_psycopg_3(url: str) -> None:
    engine = make_engine(url)
    assert engine.url.drivername == "postgresql+psycopg"
    assert (engine.url.host, engine.url.port, engine.url.database) == ("db", 5433, "pc")


@pytest.mark.parametrize("url", ["mysql://u@h/db", "postgresql+psycopg2://u@h/db", "nonsense"])
def test_unsupported_urls_are_refused(url: str) -> None:
    with pytest.raises(StorageError):
        make_engine(url)


@pytest.mark.parametrize(
    ("url", "where"),
    [
        ("postgresql+psycopg://postgres:hunter2@127.0.0.1:1/x", "127.0.0.1:1"),
        ("postgresql://postgres:hunter2@db.invalid/x?connect_timeout=3", "db.invalid:5432"),
    ],
)
def test_unreachable_postgresql_is_a_clear_storage_error(url: str, where: str) -> None:
    engine = make_engine(url)
    started = time.monotonic()
    try:
        with pytest.raises(StorageError) as caught:
            check_connection(engine)
        with pytest.raises(StorageError), SqlUnitOfWork(engine):
            pass
    finally:
        engine.dispose()
    message = str(caught.value)
    assert f"Cannot reach the database at {where} (DATABASE_URL)" in message
    assert "never falls back to SQLite" in message
    assert "hunter2" not in message
    assert time.monotonic() - started < 15


def test_unusable_sqlite_locations_are_storage_errors(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(StorageError, match="Cannot create the folder"):
        make_engine(f"sqlite:///{blocker / 'printcore.db'}")
    folder_as_db = make_engine(f"sqlite:///{tmp_path}")  # a folder, not a database file
    try:
        with pytest.raises(StorageError, match="Cannot open the SQLite database"):
            check_connection(folder_as_db)
    finally:
        folder_as_db.dispose()


# --- migrations -----------------------------------------------------------------------


def _check_migrated(engine: Engine) -> None:
    assert current_revision(engine) == head_revision() is not None
    assert set(inspect(engine).get_table_names()) >= TABLES
    with engine.connect() as conn:
        diffs = compare_metadata(MigrationContext.configure(conn), metadata)
    assert diffs == []


def test_migrations_on_an_empty_sqlite_database(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'fresh.db'}")
    try:
        assert current_revision(engine) is None
        upgrade(engine)
        _check_migrated(engine)
        upgrade(engine)  # idempotent
        downgrade(engine, "base")
        assert not TABLES & set(inspect(engine).get_table_names())
        upgrade(str(engine.url))  # a URL works too
        _check_migrated(engine)
    finally:
        engine.dispose()


@pytest.mark.postgres
def test_migrations_on_an_empty_postgresql_schema(pg_empty_engine: Engine) -> None:
    assert current_revision(pg_empty_engine) is None
    upgrade(pg_empty_engine)
    _check_migrated(pg_empty_engine)
    downgrade(pg_empty_engine, "base")
    assert not TABLES & set(inspect(pg_empty_engine).get_table_names())
    upgrade(pg_empty_engine)
    _check_migrated(pg_empty_engine)


def test_migrations_ship_inside_the_package() -> None:
    assert (MIGRATIONS / "env.py").is_file()
    assert (MIGRATIONS / "script.py.mako").is_file()
    assert (MIGRATIONS / "versions" / "0001_initial.py").is_file()
    assert (MIGRATIONS / "__init__.py").is_file()
    assert (MIGRATIONS / "versions" / "__init__.py").is_file()
