"""Two (or eight) workstations acting on one job at once: exactly one wins.

Each thread loads the job in its own unit of work, all wait at a barrier, then each
stores its change in a new unit of work with the version it loaded (as the web forms do
with ``expected_version``). The losers must get ConcurrentChangeError, never SQLite's
"database is locked" or a lost update.
"""

from __future__ import annotations

import threading
from collections import Counter
from datetime import UTC, datetime

import pytest
from sqlalchemy import Engine

from adapters.sql import SqlUnitOfWork
from printcore.errors import ConcurrentChangeError, NotFoundError
from printcore.requests.job import Job

THREADS = 8
ROUNDS = 3


def _new_job(engine: Engine) -> int:
    now = datetime(2026, 9, 1, 15, tzinfo=UTC)
    job = Job("Ada", "ada@example.edu", "Art", "ART 1", "filament", "red", now, updated_at=now)
    with SqlUnitOfWork(engine) as uow:
        job_id = uow.jobs.add(job)
        uow.commit()
    return job_id


def _race(engine: Engine, job_id: int, action: str) -> Counter[str]:
    barrier = threading.Barrier(THREADS, timeout=30)
    outcomes: list[str] = []
    lock = threading.Lock()

    def worker(n: int) -> None:
        try:
            with SqlUnitOfWork(engine) as uow:
                job = uow.jobs.get(job_id)
            barrier.wait()
            with SqlUnitOfWork(engine) as uow:
                if action == "remove" and n == 0:
                    uow.jobs.remove(job)
                else:
                    job.notes = f"thread {n}"
                    uow.jobs.update(job)
                uow.commit()
            outcome = "won"
        except ConcurrentChangeError:
            outcome = "changed"
        except NotFoundError:
            outcome = "gone"
        except Exception as exc:
            outcome = f"{type(exc).__name__}: {exc}"
        with lock:
            outcomes.append(outcome)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    return Counter(outcomes)


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def engine(request: pytest.FixtureRequest) -> Engine:
    fixture = "pg_engine" if request.param == "postgresql" else "sqlite_engine"
    found: Engine = request.getfixturevalue(fixture)
    return found


@pytest.mark.parametrize("round_", range(ROUNDS))
def test_concurrent_updates_have_exactly_one_winner(engine: Engine, round_: int) -> None:
    job_id = _new_job(engine)
    outcomes = _race(engine, job_id, "update")
    assert outcomes == Counter({"won": 1, "changed": THREADS - 1}), outcomes
    with SqlUnitOfWork(engine) as uow:
        stored = uow.jobs.get(job_id)
    assert stored.version == 2
    assert stored.notes.startswith("thread ")


def test_concurrent_update_and_remove_have_exactly_one_winner(engine: Engine) -> None:
    """When the removal wins the others find the job gone; otherwise it changed under them."""
    job_id = _new_job(engine)
    outcomes = _race(engine, job_id, "remove")
    with SqlUnitOfWork(engine) as uow:
        removed = uow.jobs.count_by_status() == {}
    if removed:
        assert outcomes == Counter({"won": 1, "gone": THREADS - 1}), outcomes
    else:
        assert outcomes == Counter({"won": 1, "changed": THREADS - 1}), outcomes


def test_a_writer_waits_for_a_long_transaction_instead_of_failing(engine: Engine) -> None:
    """A transaction held open for a while makes others wait (busy timeout), not fail."""
    job_id = _new_job(engine)
    holding = threading.Event()
    results: list[str] = []

    def slow() -> None:
        with SqlUnitOfWork(engine) as uow:
            job = uow.jobs.get(job_id)
            job.notes = "slow"
            uow.jobs.update(job)
            holding.set()
            threading.Event().wait(1.0)
            uow.commit()

    t = threading.Thread(target=slow)
    t.start()
    assert holding.wait(10)
    with SqlUnitOfWork(engine) as uow:
        uow.settings.set("other", "write")
        uow.commit()
        results.append("ok")
    t.join()
    assert results == ["ok"]
    with SqlUnitOfWork(engine) as uow:
        assert uow.jobs.get(job_id).notes == "slow"


def test_read_modify_write_in_one_transaction_loses_nothing(engine: Engine) -> None:
    """The service pattern (get, change, update, commit in one unit of work), many times
    over from many threads: no "database is locked", no lost update. SQLite queues whole
    transactions (BEGIN IMMEDIATE), so all succeed; PostgreSQL may report a concurrent
    change instead, which the caller shows to the user."""
    job_id = _new_job(engine)
    outcomes: list[str] = []
    lock = threading.Lock()

    def worker() -> None:
        for _ in range(10):
            try:
                with SqlUnitOfWork(engine) as uow:
                    job = uow.jobs.get(job_id)
                    job.failed_attempts += 1
                    uow.jobs.update(job)
                    uow.commit()
                outcome = "won"
            except ConcurrentChangeError:
                outcome = "changed"
            except Exception as exc:
                outcome = f"{type(exc).__name__}: {exc}"
            with lock:
                outcomes.append(outcome)

    threads = [threading.Thread(target=worker) for _ in range(THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    counts = Counter(outcomes)
    assert set(counts) <= {"won", "changed"}, counts
    assert sum(counts.values()) == THREADS * 10
    if engine.dialect.name == "sqlite":
        assert counts["won"] == THREADS * 10
    with SqlUnitOfWork(engine) as uow:
        stored = uow.jobs.get(job_id)
    assert stored.failed_attempts == counts["won"]
    assert stored.version == 1 + counts["won"]
