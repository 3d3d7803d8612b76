"""Fixtures for the Discord adapter's tests: a real ``QueueService`` on the in-memory
queue and on SQLite (when the SQL unit of work has the queue repositories), and members."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _discord_fakes import FakeUser, Lab, make_lab

from printcore.queue.memory import MemoryQueueDatabase, MemoryQueueUnitOfWork


def _sql_factory(tmp_path: Path) -> Any:
    from adapters.sql import SqlUnitOfWork, make_engine, upgrade

    engine = make_engine("sqlite:///" + str(tmp_path / "q.db"))
    if not hasattr(SqlUnitOfWork(engine), "printers"):
        engine.dispose()
        return None
    upgrade(engine)
    return engine, (lambda: SqlUnitOfWork(engine))


@pytest.fixture(params=["memory", "sqlite"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Any:
    """A queue unit-of-work factory: in memory, or SQLite with the migrations applied."""
    if request.param == "memory":
        db = MemoryQueueDatabase()
        yield lambda: MemoryQueueUnitOfWork(db)
        return
    made = _sql_factory(tmp_path)
    if made is None:
        pytest.skip("the SQL unit of work has no queue repositories yet")
    engine, factory = made
    yield factory
    engine.dispose()


@pytest.fixture
def lab(backend: Any) -> Lab:
    return make_lab(backend)


@pytest.fixture
def alice() -> FakeUser:
    return FakeUser(1001, "Alice")


@pytest.fixture
def bob() -> FakeUser:
    return FakeUser(1002, "Bob")


@pytest.fixture
def carol() -> FakeUser:
    return FakeUser(1003, "Carol")
