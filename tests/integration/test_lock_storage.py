"""Jobs' soft locks in storage: the ``JobLockRepository`` contract on memory, SQLite and
PostgreSQL, and races of real threads through ``JobLocks`` (exactly one take wins).

Bad inputs tried: a swap whose expected lock is stale (another holder, an older
version), a swap expecting no lock while one is stored, a new lock for another job.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import attrs
import pytest
from sqlalchemy import Engine

from adapters.sql import SqlUnitOfWork
from printcore.events import Actor
from printcore.memory import SystemClock
from printcore.ports import StaffMember
from printcore.requests.job import Job
from printcore.requests.locks import JobLock, JobLocks, LockHeldError

NOW = datetime(2026, 9, 1, 15, 0, 0, 123456, tzinfo=UTC)
THREADS = 8


def _job(uow_factory: Callable[[], object]) -> int:
    job = Job("Ada", "ada@example.edu", "Art", "ART 1", "filament", "red", NOW, updated_at=NOW)
    with uow_factory() as uow:  # type: ignore[attr-defined]
        job_id: int = uow.jobs.add(job)
        for n in range(THREADS):
            uow.staff.add(StaffMember(f"Staff {n}", True, NOW))
        uow.commit()
    return job_id


def _lock(job_id: int, who: str = "Ana", version: int = 1) -> JobLock:
    return JobLock(job_id, who, "Front desk", "approve", NOW, NOW + timedelta(seconds=120),
                   version)


def test_swap_contract(uow_factory: Callable[[], object]) -> None:
    job_id = _job(uow_factory)
    first = _lock(job_id)
    with uow_factory() as uow:  # type: ignore[attr-defined]
        assert uow.locks.get(job_id) is None
        assert uow.locks.swap(job_id, None, first)
        uow.commit()
    with uow_factory() as uow:  # type: ignore[attr-defined]
        stored = uow.locks.get(job_id)
        assert stored == first  # times round-trip exactly, as aware UTC
        assert stored.expires_at.tzinfo is not None
        # stale expectations change nothing
        assert not uow.locks.swap(job_id, None, _lock(job_id, "Ben"))
        assert not uow.locks.swap(job_id, _lock(job_id, "Ben"), None)
        assert not uow.locks.swap(job_id, attrs.evolve(first, version=7), None)
        assert uow.locks.get(job_id) == first
        # the holder's heartbeat
        beat = attrs.evolve(first, expires_at=first.expires_at + timedelta(seconds=30),
                            version=2)
        assert uow.locks.swap(job_id, first, beat)
        uow.commit()
    with uow_factory() as uow:  # type: ignore[attr-defined]
        assert uow.locks.get(job_id) == beat
        assert uow.locks.for_jobs([job_id, job_id + 1]) == {job_id: beat}
        assert uow.locks.swap(job_id, beat, None)
        uow.commit()
    with uow_factory() as uow:  # type: ignore[attr-defined]
        assert uow.locks.get(job_id) is None
        assert uow.locks.for_jobs([job_id]) == {}


def test_a_rolled_back_swap_leaves_nothing(uow_factory: Callable[[], object]) -> None:
    job_id = _job(uow_factory)
    with uow_factory() as uow:  # type: ignore[attr-defined]
        assert uow.locks.swap(job_id, None, _lock(job_id))
    with uow_factory() as uow:  # type: ignore[attr-defined]
        assert uow.locks.get(job_id) is None


def test_a_lock_for_another_job_is_refused(sql_engine: Engine) -> None:
    job_id = _job(lambda: SqlUnitOfWork(sql_engine))
    with SqlUnitOfWork(sql_engine) as uow, pytest.raises(ValueError):
        uow.locks.swap(job_id, None, _lock(job_id + 1))


def _race(engine: Engine, job_id: int, take_over: bool = False) -> Counter[str]:
    locks = JobLocks(lambda: SqlUnitOfWork(engine), SystemClock())
    barrier = threading.Barrier(THREADS, timeout=30)
    outcomes: list[str] = []
    guard = threading.Lock()

    def worker(n: int) -> None:
        try:
            barrier.wait()
            _, outcome = locks.take(job_id, Actor.staff(f"Staff {n}", f"Desk {n}"), "approve",
                                    take_over=take_over)
        except LockHeldError:
            outcome = "held"
        except Exception as exc:  # anything else is a failure of the test
            outcome = f"{type(exc).__name__}: {exc}"
        with guard:
            outcomes.append(outcome)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    return Counter(outcomes)


@pytest.mark.parametrize("round_", range(3))
def test_concurrent_takes_of_a_free_lock_have_one_winner(sql_engine: Engine,
                                                         round_: int) -> None:
    job_id = _job(lambda: SqlUnitOfWork(sql_engine))
    outcomes = _race(sql_engine, job_id)
    assert outcomes == Counter({"taken": 1, "held": THREADS - 1})
    with SqlUnitOfWork(sql_engine) as uow:
        events = [e.kind for e in uow.events.for_subject("job", job_id)]
        holder = uow.locks.get(job_id)
    assert events == ["lock"]
    assert holder is not None and holder.version == 1


def test_concurrent_take_overs_all_land_one_after_another(sql_engine: Engine) -> None:
    """Deliberate take-overs never fail for a race: each lost swap is decided again."""
    job_id = _job(lambda: SqlUnitOfWork(sql_engine))
    outcomes = _race(sql_engine, job_id, take_over=True)
    assert outcomes["taken"] == 1 and outcomes["taken_over"] == THREADS - 1, outcomes
    with SqlUnitOfWork(sql_engine) as uow:
        holder = uow.locks.get(job_id)
        kinds = Counter(e.kind for e in uow.events.for_subject("job", job_id))
    assert holder is not None and holder.version == THREADS
    assert kinds == Counter({"lock": 1, "lock_taken_over": THREADS - 1})
