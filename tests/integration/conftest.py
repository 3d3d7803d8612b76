"""Fixtures for the adapters' integration tests.

Databases: ``sqlite_engine`` (a migrated file database under tmp_path), ``pg_engine``
(PostgreSQL at PRINTCORE_TEST_PG_URL, default postgresql+psycopg://postgres@127.0.0.1:5432/test)
and ``uow_factory``, a unit-of-work factory parametrized over memory, sqlite and postgresql.

PostgreSQL isolation: each test run creates its own schema (``pc_test_<random>``), points
the engine's ``search_path`` at it, migrates it once, empties every table before each test
and drops the schema at the end, so parallel runs (and other projects' tables in the same
database) never meet. When PostgreSQL cannot be reached the PostgreSQL tests are skipped,
or fail when CI=true.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, text

from adapters.sql import SqlUnitOfWork, check_connection, make_engine, upgrade
from adapters.sql.engine import normalise_url
from adapters.sql.tables import metadata
from printcore.errors import StorageError
from printcore.ports import UnitOfWork
from printcore.queue.memory import MemoryQueueDatabase, MemoryQueueUnitOfWork
from printcore.queue.ports import QueueUnitOfWork
from printcore.requests.memory import MemoryDatabase, MemoryUnitOfWork

DEFAULT_PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


def pg_url() -> str:
    return os.environ.get("PRINTCORE_TEST_PG_URL", DEFAULT_PG_URL)


def _in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in ("1", "true", "yes")


@pytest.fixture(scope="session")
def pg_admin_engine() -> Iterator[Engine]:
    """An engine on the test database itself (public schema); skips if unreachable."""
    url = normalise_url(pg_url()).update_query_dict({"connect_timeout": "3"})
    engine = make_engine(url.render_as_string(hide_password=False))
    try:
        check_connection(engine, "PRINTCORE_TEST_PG_URL")
    except StorageError as exc:
        engine.dispose()
        if _in_ci():
            pytest.fail(f"PostgreSQL is required in CI: {exc}")
        pytest.skip(f"PostgreSQL tests skipped: {exc}")
    yield engine
    engine.dispose()


@pytest.fixture(scope="session")
def pg_schema_factory(pg_admin_engine: Engine) -> Iterator[Callable[[], Engine]]:
    """Makes engines on fresh, empty schemas; drops them all at the end of the run."""
    made: list[tuple[str, Engine]] = []

    def make() -> Engine:
        schema = f"pc_test_{uuid.uuid4().hex[:12]}"
        with pg_admin_engine.begin() as conn:
            conn.execute(text(f'CREATE SCHEMA "{schema}"'))
        url = pg_admin_engine.url.update_query_dict({"options": f"-csearch_path={schema}"})
        engine = make_engine(url.render_as_string(hide_password=False))
        made.append((schema, engine))
        return engine

    yield make
    for schema, engine in made:
        engine.dispose()
        with pg_admin_engine.begin() as conn:
            conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))


@pytest.fixture(scope="session")
def _pg_migrated(pg_schema_factory: Callable[[], Engine]) -> Engine:
    engine = pg_schema_factory()
    upgrade(engine)
    return engine


@pytest.fixture
def pg_engine(_pg_migrated: Engine) -> Engine:
    """The run's migrated PostgreSQL schema, emptied (identities restarted) for this test."""
    names = ", ".join(f'"{t.name}"' for t in metadata.sorted_tables)
    with _pg_migrated.begin() as conn:
        conn.execute(text(f"TRUNCATE {names} RESTART IDENTITY"))
    return _pg_migrated


@pytest.fixture
def pg_empty_engine(pg_schema_factory: Callable[[], Engine]) -> Engine:
    """A fresh PostgreSQL schema with no tables at all (for migration tests)."""
    return pg_schema_factory()


@pytest.fixture
def sqlite_engine(tmp_path: Path) -> Iterator[Engine]:
    """A migrated SQLite file database of this test alone."""
    engine = make_engine(f"sqlite:///{tmp_path / 'var' / 'printcore.db'}")
    upgrade(engine)
    yield engine
    engine.dispose()


@pytest.fixture(
    params=[
        "memory",
        "sqlite",
        pytest.param("postgresql", marks=pytest.mark.postgres),
    ]
)
def uow_factory(request: pytest.FixtureRequest) -> Callable[[], UnitOfWork]:
    """``factory()`` → a new unit of work on this test's empty database."""
    if request.param == "memory":
        db = MemoryDatabase()
        return lambda: MemoryUnitOfWork(db)
    fixture = "pg_engine" if request.param == "postgresql" else "sqlite_engine"
    engine: Engine = request.getfixturevalue(fixture)
    return lambda: SqlUnitOfWork(engine)


@pytest.fixture
def backend(uow_factory: Callable[[], UnitOfWork], request: pytest.FixtureRequest) -> str:
    """The name of the backend ``uow_factory`` is for: memory, sqlite or postgresql."""
    return str(request.node.callspec.params["uow_factory"])


@pytest.fixture(
    params=[
        "memory",
        "sqlite",
        pytest.param("postgresql", marks=pytest.mark.postgres),
    ]
)
def queue_uow_factory(request: pytest.FixtureRequest) -> Callable[[], QueueUnitOfWork]:
    """``factory()`` → a new queue unit of work on this test's empty database."""
    if request.param == "memory":
        db = MemoryQueueDatabase()
        return lambda: MemoryQueueUnitOfWork(db)
    fixture = "pg_engine" if request.param == "postgresql" else "sqlite_engine"
    engine: Engine = request.getfixturevalue(fixture)
    return lambda: SqlUnitOfWork(engine)


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def sql_engine(request: pytest.FixtureRequest) -> Engine:
    """A migrated, empty SQLite or PostgreSQL database."""
    fixture = "pg_engine" if request.param == "postgresql" else "sqlite_engine"
    engine: Engine = request.getfixturevalue(fixture)
    return engine
