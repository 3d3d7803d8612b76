"""Issue 16: the sweeper's wall clock jumping (an NTP step, a DST night) while claim
windows are open. In the pure domain with a clock the test moves: no window lapses before
its deadline by the clock that fires it, none lapses twice, a step back never offers or
fires anything again, and claim windows across a clock change in the lab's zone count
real open time (the process-level version with libfaketime is
tests/fault/test_clock_jumps.py and bench/faults_sweep.py --only clock)."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest

from printcore.memory import FixedClock
from printcore.queue.access_hours import AccessHours
from printcore.queue.memory import MemoryQueueDatabase, MemoryQueueUnitOfWork
from printcore.queue.service import QueuePolicy, QueueService

T0 = datetime(2026, 12, 2, 18, 0, tzinfo=UTC)  # a Wednesday, noon in Chicago
#: Open on both nights around the clock change (see bench/faults_sweep.py: CLOSED).
ACCESS = "daily 00:00-01:30, 01:45-02:30, 03:01-23:00"


def world(start: datetime, access: AccessHours | None = None,
          members: int = 12) -> tuple[MemoryQueueDatabase, FixedClock, QueueService]:
    db = MemoryQueueDatabase()
    clock = FixedClock(start)
    svc = QueueService(uow=lambda: MemoryQueueUnitOfWork(db), clock=clock,
                       access=access or AccessHours.always(),
                       policy=QueuePolicy(claim_window=timedelta(minutes=1)))
    svc.sync_printers([(f"X1C-{i}", f"Bambu X1C #{i}") for i in range(1, 4)])
    for n in range(members):
        svc.join(f"m{n}", f"M{n}", "part", timedelta(hours=1))
    return db, clock, svc


def check_history(db: MemoryQueueDatabase) -> tuple[int, list[str]]:
    """Walk the offers and lapses in order: each lapse closes the open offer of its
    printer and ticket, at or after that offer's claim deadline. Returns (lapses,
    problems)."""
    open_: dict[str, tuple[int, datetime]] = {}
    lapses, problems = 0, []
    for e in db.events:
        if e.subject != "ticket" or e.kind not in ("offer", "missed", "expired"):
            continue
        printer = e.details["printer"]
        if e.kind == "offer":
            if printer in open_:
                problems.append(f"{printer} offered twice at {e.at}")
            open_[printer] = (e.subject_id, datetime.fromisoformat(e.details["claim_by"]))
            continue
        held = open_.pop(printer, None)
        if held is None or held[0] != e.subject_id:
            problems.append(f"ticket {e.subject_id} {e.kind} on {printer} with no offer open")
            continue
        lapses += 1
        if e.at < held[1]:
            problems.append(f"{printer} lapsed at {e.at}, before {held[1]}")
    return lapses, problems


@pytest.mark.parametrize("seed", range(8))
def test_a_clock_walking_both_ways_fires_each_window_once_and_never_early(seed: int) -> None:
    rng = random.Random(seed)
    db, clock, svc = world(T0)
    for _ in range(60):
        step = rng.choice([1, 1, -1]) * rng.choice([0.5, 5, 30, 59, 61, 600, 3600])
        clock.advance(seconds=step)
        svc.sweep()
        svc.sweep()  # a second sweep at the same instant finds nothing due
    lapses, problems = check_history(db)
    assert problems == []
    assert lapses >= 5  # the walk did make windows lapse


def test_a_step_back_after_an_offer_fires_nothing_again() -> None:
    db, clock, svc = world(T0)
    clock.advance(minutes=1, seconds=1)
    assert svc.sweep().missed == 3  # the three first windows lapse, three new offers
    seen = len(db.events)
    clock.advance(hours=-1)  # NTP steps the clock back an hour
    for _ in range(3):
        report = svc.sweep()
        assert (report.offered, report.missed, report.expired) == (0, 0, 0)
        clock.advance(seconds=20)
    assert len(db.events) == seen
    clock.advance(hours=1, seconds=1)  # back at the true time, past the new deadlines
    report = svc.sweep()
    assert report.missed + report.expired == 3
    assert check_history(db)[1] == []


@pytest.mark.parametrize(("offered_at", "claim_by"), [
    # 2026-11-01, Chicago: 02:00 CDT becomes 01:00 CST at 07:00 UTC; open throughout.
    ("2026-11-01T06:59:30", "2026-11-01T07:00:30"),
    # 2027-03-14: 02:00 CST becomes 03:00 CDT at 08:00 UTC; 01:45-02:30 closes then
    # (the clock jumps past 02:30) and 03:01 opens at 08:01 UTC: a minute closed.
    ("2027-03-14T07:59:40", "2027-03-14T08:01:40"),
])
def test_claim_windows_across_a_clock_change_count_open_time(offered_at: str,
                                                             claim_by: str) -> None:
    start = datetime.fromisoformat(offered_at).replace(tzinfo=UTC)
    db, clock, svc = world(start, AccessHours.parse(ACCESS, "America/Chicago"), members=4)
    with MemoryQueueUnitOfWork(db) as uow:
        deadlines = {p.claim_deadline for p in uow.printers.list()}
    assert deadlines == {datetime.fromisoformat(claim_by).replace(tzinfo=UTC)}
    clock.current = min(deadlines) - timedelta(microseconds=1)
    assert svc.sweep().missed == 0  # not a microsecond early
    clock.current = min(deadlines)
    assert svc.sweep().missed == 3


def test_nothing_is_offered_in_the_minute_the_spring_change_closes() -> None:
    start = datetime(2027, 3, 14, 7, 59, 0, tzinfo=UTC)
    db, clock, svc = world(start, AccessHours.parse(ACCESS, "America/Chicago"), members=6)
    # Offered at 07:59: a minute of open time ends as the lab closes, at 08:00.
    clock.current = datetime(2027, 3, 14, 8, 0, 30, tzinfo=UTC)
    report = svc.sweep()
    assert (report.missed, report.offered) == (3, 0)  # lapsed, and nothing offered
    clock.current = datetime(2027, 3, 14, 8, 0, 59, 999999, tzinfo=UTC)
    assert svc.sweep().offered == 0
    clock.current = datetime(2027, 3, 14, 8, 1, 0, tzinfo=UTC)  # 03:01 CDT: open
    assert svc.sweep().offered == 3
    assert check_history(db)[1] == []
