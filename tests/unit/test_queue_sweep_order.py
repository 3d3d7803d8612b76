"""Issue 14, defect 1: windows lapsing in one sweep must not swap the members' order.

Five members join, three printers are offered at one instant (they share one claim
deadline), one claims; the other two windows lapse. Whether the sweep runs once after the
deadline or at every deadline, the member who joined first gets a printer first, and the
outcome is the same. Also with the two deadlines 20 s apart, and with a printer whose
print ends before a window lapses (it is offered first).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from printcore.memory import FixedClock
from printcore.queue.access_hours import AccessHours
from printcore.queue.memory import MemoryQueueDatabase, MemoryQueueUnitOfWork
from printcore.queue.service import QueuePolicy, QueueService

T0 = datetime(2026, 9, 7, 15, 0, tzinfo=UTC)
MEMBERS = ("m1", "m2", "m3", "m4", "m5")


def world(printers: int = 3) -> tuple[MemoryQueueDatabase, FixedClock, QueueService]:
    db = MemoryQueueDatabase()
    clock = FixedClock(T0)
    svc = QueueService(uow=lambda: MemoryQueueUnitOfWork(db), clock=clock,
                       access=AccessHours.always(), policy=QueuePolicy())
    svc.sync_printers([(f"X1C-{i}", f"Bambu X1C #{i}") for i in range(1, printers + 1)])
    return db, clock, svc


def holders(db: MemoryQueueDatabase) -> dict[str, str | None]:
    with MemoryQueueUnitOfWork(db) as uow:
        return {p.name: p.holder for p in uow.printers.list()}


def order(db: MemoryQueueDatabase) -> list[tuple[str, str]]:
    with MemoryQueueUnitOfWork(db) as uow:
        return [(t.member, t.status) for t in uow.tickets.open_tickets()]


def five_join(clock: FixedClock, svc: QueueService, gap: timedelta) -> None:
    for member in MEMBERS:
        svc.join(member, member.upper(), f"{member}'s part", timedelta(minutes=30))
        if member in ("m1", "m2"):
            clock.advance(seconds=gap.total_seconds())


@pytest.mark.parametrize("sweeps", ["once", "at_every_deadline"])
def test_windows_lapsing_together_keep_the_join_order(sweeps: str) -> None:
    db, clock, svc = world()
    five_join(clock, svc, timedelta(0))  # m1, m2, m3 offered at one instant
    assert holders(db) == {"X1C-1": "m1", "X1C-2": "m2", "X1C-3": "m3"}
    svc.claim("m3", "X1C-3")
    if sweeps == "at_every_deadline":
        clock.current = T0 + timedelta(minutes=10)
        svc.sweep()
    clock.current = T0 + timedelta(minutes=11)
    report = svc.sweep()
    # m1 joined first: it goes behind m4 only, and gets the second printer freed.
    assert holders(db) == {"X1C-1": "m4", "X1C-2": "m1", "X1C-3": "m3"}
    assert order(db) == [("m3", "claimed"), ("m4", "offered"), ("m1", "offered"),
                         ("m2", "queued"), ("m5", "queued")]
    if sweeps == "once":
        assert (report.missed, report.offered, report.expired) == (2, 2, 0)


@pytest.mark.parametrize("sweeps", ["once", "at_every_deadline"])
def test_deadlines_twenty_seconds_apart_give_the_same_winners(sweeps: str) -> None:
    db, clock, svc = world()
    five_join(clock, svc, timedelta(seconds=10))  # m1 at T0, m2 at +10 s, m3 at +20 s
    svc.claim("m3", "X1C-3")
    if sweeps == "at_every_deadline":
        for seconds in (0, 10):
            clock.current = T0 + timedelta(minutes=10, seconds=seconds)
            svc.sweep()
    clock.current = T0 + timedelta(minutes=11)
    svc.sweep()
    assert holders(db) == {"X1C-1": "m4", "X1C-2": "m1", "X1C-3": "m3"}
    assert [m for m, s in order(db) if s == "queued"] == ["m2", "m5"]


def test_a_print_ending_before_a_window_lapses_is_offered_first() -> None:
    """X1C-1 prints m1's part until +5 min; m2 holds an offer of X1C-2 until +10 min.
    One sweep at +11 min: X1C-1 went free first, so m3 (next in line) gets it, then m2's
    window lapses and X1C-2 goes to m4 (m2 behind m4)."""
    db, clock, svc = world(printers=2)
    svc.join("m1", "M1", "part", timedelta(minutes=5))
    svc.claim("m1", "X1C-1")
    svc.report_started("m1")
    svc.join("m2", "M2", "part", timedelta(minutes=30))  # offered X1C-2 at T0
    for member in ("m3", "m4", "m5"):
        svc.join(member, member.upper(), "part", timedelta(minutes=30))
    clock.current = T0 + timedelta(minutes=11)
    svc.sweep()
    assert holders(db) == {"X1C-1": "m3", "X1C-2": "m4"}
    assert [m for m, s in order(db) if s == "queued"] == ["m2", "m5"]
