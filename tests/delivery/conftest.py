"""Fixtures for the delivery tests (real Redis, a real SMTP server, real worker processes).

``database``: an installation's DATABASE_URL; SQLite (a file in the test's home) unless a
test parametrizes it indirectly with ``"postgresql"`` (a fresh schema in the ``test``
database, dropped afterwards). Under ``CI=true`` a missing Redis or PostgreSQL fails the
test; elsewhere it skips (``_support.service_missing``).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from _delivery import OwnRedis, RedisDb, WorkerProcess

from _live import PG_DSN
from _smtp import SmtpServer
from _support import service_missing


@pytest.fixture()
def home(tmp_path: Path) -> Path:
    folder = tmp_path / "home"
    folder.mkdir()
    return folder


@pytest.fixture()
def smtp() -> Iterator[SmtpServer]:
    server = SmtpServer()
    server.start()
    yield server
    server.stop()


@pytest.fixture()
def redis_db() -> Iterator[RedisDb]:
    """An empty Redis database of our own on the shared Redis (no crosstalk)."""
    db = RedisDb().claim()
    yield db
    db.release()


@pytest.fixture()
def own_redis(tmp_path: Path) -> Iterator[OwnRedis]:
    """A private redis-server we can take down and bring back on the same port."""
    server = OwnRedis(tmp_path)
    server.start()
    yield server
    server.stop()


@pytest.fixture()
def database(request: pytest.FixtureRequest, home: Path) -> Iterator[str]:
    kind = getattr(request, "param", "sqlite")
    if kind == "sqlite":
        yield f"sqlite:///{home / 'printcore.db'}"
        return
    schema = f"pc_delivery_{uuid.uuid4().hex[:10]}"
    try:
        with psycopg.connect(PG_DSN, connect_timeout=3, autocommit=True) as conn:
            conn.execute(f'CREATE SCHEMA "{schema}"')
    except psycopg.OperationalError as err:
        service_missing(f"PostgreSQL at {PG_DSN}: {err}")
    yield (PG_DSN.replace("postgresql://", "postgresql+psycopg://", 1)
           + f"?options=-csearch_path%3D{schema}")
    with psycopg.connect(PG_DSN, autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


@pytest.fixture()
def workers(database: str) -> Iterator[list[WorkerProcess]]:
    """Every worker a test starts goes in here and is stopped afterwards (before the
    database goes away)."""
    started: list[WorkerProcess] = []
    yield started
    for worker in started:
        worker.stop()
