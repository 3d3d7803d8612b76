"""Issue 15: the queue's rules for printers that report for themselves
(``QueueService.printer_reported``), on the in-memory queue with a frozen clock.

Covered: the seed's flow (IDLE → offer → claim → RUNNING meets the start window →
FINISH closes with the printer's own end → the next member is offered); the member
reporting first or second (a start counts once, a close too); a repeated report after a
watcher restart; FAILED asks for the photo afterwards and /close adds it; IDLE straight
after RUNNING (cancelled); a print nobody claimed (recorded, the printer is not offered
while it runs, offered again when it ends, staff can release it); RUNNING after the start
window ended does not count as the start; the remaining time moves the predicted end and
the ETAs behind it; a new print while the previous one was never closed; an unknown
printer (NotFoundError).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from printcore.errors import NotFoundError
from printcore.memory import FixedClock
from printcore.queue.access_hours import AccessHours
from printcore.queue.memory import MemoryQueueDatabase, MemoryQueueUnitOfWork
from printcore.queue.ports import queue_notice_of
from printcore.queue.printer_status import PrinterLiveState, PrinterReport
from printcore.queue.service import QueuePolicy, QueueService
from printcore.requests.job import Actor

T0 = datetime(2026, 9, 7, 15, 0, tzinfo=UTC)
H1 = timedelta(hours=1)
STATE = {"started": "RUNNING", "progress": "RUNNING", "paused": "PAUSE", "finished": "FINISH",
         "failed": "FAILED", "cancelled": "IDLE", "idle": "IDLE", "offline": "OFFLINE",
         "online": "IDLE"}


class Lab:
    def __init__(self, printers: int = 1) -> None:
        self.db = MemoryQueueDatabase()
        self.clock = FixedClock(T0)
        self.svc = QueueService(uow=lambda: MemoryQueueUnitOfWork(self.db), clock=self.clock,
                                access=AccessHours.always(), policy=QueuePolicy())
        self.svc.sync_printers([(f"X1C-{i}", "") for i in range(1, printers + 1)])

    def report(self, kind: str, printer: str = "X1C-1", key: str | None = "job-1",
               remaining: int | None = None, **live: object) -> str:
        now = self.clock.now()
        state = PrinterLiveState(state=STATE[kind], reported_at=now,
                                 remaining_minutes=remaining, **live)  # type: ignore[arg-type]
        return self.svc.printer_reported(PrinterReport(printer, kind, now, state,  # type: ignore[arg-type]
                                                       print_key=key))

    def printer(self, name: str = "X1C-1"):  # type: ignore[no-untyped-def]
        with MemoryQueueUnitOfWork(self.db) as uow:
            return uow.printers.get(name)

    def ticket(self, member: str):  # type: ignore[no-untyped-def]
        return self.svc.myjobs(member)[0]

    def events(self, member: str, kind: str) -> list:
        ticket = self.ticket(member)
        with MemoryQueueUnitOfWork(self.db) as uow:
            return [e for e in uow.events.for_subject("ticket", ticket.id or 0)
                    if e.kind == kind]

    def notices(self, member: str) -> list[str]:
        return [queue_notice_of(m).kind for m in self.db.outbox.messages("discord")
                if queue_notice_of(m).member == member]


def test_the_seed_flow_runs_on_the_printers_own_reports() -> None:
    lab = Lab()
    assert lab.report("idle", key=None) == "live"
    lab.svc.join("ann", "Ann", "bracket", H1)
    lab.svc.join("bob", "Bob", "gear", H1)
    assert lab.printer().holder == "ann"  # IDLE → the next member is pinged
    lab.svc.claim("ann", "X1C-1")
    lab.clock.advance(minutes=4)
    assert lab.report("started", remaining=62, file="bracket.gcode.3mf") == "started"
    ann = lab.ticket("ann")
    assert ann.status == "printing" and ann.started_at == T0 + timedelta(minutes=4)
    assert lab.printer().predicted_end == T0 + timedelta(minutes=66)
    assert lab.printer().live_file == "bracket.gcode.3mf"
    assert "print_started" in lab.notices("ann")
    lab.clock.advance(minutes=58)
    assert lab.report("finished", remaining=0) == "closed"
    ann = lab.ticket("ann")
    assert (ann.status, ann.outcome, ann.actual_minutes, ann.ended_by) == (
        "done", "finished", 58, "printer")
    assert ann.ended_at == T0 + timedelta(minutes=62) and ann.bound_minutes is None
    assert lab.printer().holder == "bob" and lab.printer().status == "offered"
    assert lab.notices("bob") == ["offered"]
    assert lab.report("finished", remaining=0) == "repeat"  # a watcher restart repeats it
    assert len(lab.events("ann", "close")) == 1


def test_the_member_reporting_first_or_second_counts_once() -> None:
    lab = Lab()
    lab.svc.join("ann", "Ann", "a", H1)
    lab.svc.claim("ann", "X1C-1")
    lab.svc.report_started("ann")  # the member first
    lab.clock.advance(minutes=1)
    assert lab.report("started", remaining=59) == "adopted"
    assert lab.ticket("ann").started_at == T0 and len(lab.events("ann", "start")) == 1
    lab.clock.advance(minutes=59)
    assert lab.report("finished") == "closed"
    closed = lab.svc.close("ann", "X1C-1", "finished")  # the member second
    assert closed.actual_minutes == 60 and len(lab.events("ann", "close")) == 1

    lab.svc.join("bob", "Bob", "b", H1)
    lab.svc.claim("bob", "X1C-1")
    assert lab.report("started", key="job-2") == "started"  # the printer first
    again = lab.svc.report_started("bob")
    assert again.status == "printing" and len(lab.events("bob", "start")) == 1


def test_a_failed_print_closes_then_the_photo_is_added() -> None:
    lab = Lab()
    lab.svc.join("ann", "Ann", "a", H1)
    lab.svc.claim("ann", "X1C-1")
    lab.report("started")
    lab.clock.advance(minutes=20)
    assert lab.report("failed", error_code="0300-4000") == "closed"
    ann = lab.ticket("ann")
    assert (ann.outcome, ann.actual_minutes, ann.photo_url) == ("failed", 20, None)
    assert "print_failed" in lab.notices("ann")
    with_photo = lab.svc.close("ann", "X1C-1", "failed", "https://cdn.example/f.jpg")
    assert with_photo.photo_url == "https://cdn.example/f.jpg"
    assert len(lab.events("ann", "photo_added")) == 1
    assert lab.printer().status == "idle"


def test_idle_straight_after_running_is_cancelled() -> None:
    lab = Lab()
    lab.svc.join("ann", "Ann", "a", H1)
    lab.svc.claim("ann", "X1C-1")
    lab.report("started")
    lab.clock.advance(minutes=3)
    assert lab.report("cancelled") == "closed"
    assert (lab.ticket("ann").outcome, lab.ticket("ann").actual_minutes) == ("cancelled", 3)


def test_a_print_nobody_claimed_is_recorded_and_blocks_offers_until_it_ends() -> None:
    lab = Lab()
    lab.svc.set_in_service("X1C-1", False, Actor("staff", "Sam"))
    lab.svc.set_in_service("X1C-1", True, Actor("staff", "Sam"))
    assert lab.report("started", key="walk-up") == "unclaimed"
    assert lab.printer().unclaimed_since == T0
    lab.svc.join("ann", "Ann", "a", H1)
    assert lab.ticket("ann").status == "queued"  # not offered while it runs
    assert lab.svc.sweep().offered == 0
    lab.clock.advance(minutes=30)
    assert lab.report("finished", key="walk-up") == "ended_unclaimed"
    assert lab.printer().unclaimed_since is None and lab.printer().holder == "ann"
    with MemoryQueueUnitOfWork(lab.db) as uow:
        kinds = [e.kind for e in uow.events.for_subject("printer", lab.printer().id or 0)
                 if e.kind != "reported"]
    assert kinds[-2:] == ["unclaimed_print", "unclaimed_print_ended"]

    other = Lab()
    other.report("started", key="walk-up")
    released = other.svc.release_printer("X1C-1", Actor("staff", "Sam"))  # staff saw to it
    assert released.unclaimed_since is None


def test_running_after_the_start_window_is_not_the_start() -> None:
    lab = Lab()
    lab.svc.join("ann", "Ann", "a", H1)
    lab.svc.claim("ann", "X1C-1")
    lab.clock.advance(minutes=16)  # the start window ended; the sweep has not run
    assert lab.report("started") == "unclaimed"
    assert lab.ticket("ann").status == "claimed"
    lab.svc.sweep()
    assert lab.ticket("ann").status == "queued"  # the missed-window rule, as ever


def test_the_remaining_time_moves_the_end_and_the_etas() -> None:
    lab = Lab()
    lab.svc.join("ann", "Ann", "a", H1)
    lab.svc.claim("ann", "X1C-1")
    lab.report("started", remaining=60)
    lab.svc.join("bob", "Bob", "b", H1)
    assert lab.svc.placement("bob").eta == T0 + H1
    lab.clock.advance(minutes=10)
    assert lab.report("progress", remaining=95, layer=12, total_layers=300) == "moved"
    assert lab.printer().predicted_end == T0 + timedelta(minutes=105)
    assert lab.svc.placement("bob").eta == T0 + timedelta(minutes=105)
    assert (lab.printer().live_layer, lab.printer().live_total_layers) == (12, 300)
    assert lab.report("progress", remaining=95) == "live"  # nothing moved
    lab.report("offline", key=None)
    assert lab.printer().live_state == "OFFLINE" and lab.ticket("ann").status == "printing"


def test_a_new_print_replaces_one_never_closed() -> None:
    lab = Lab()
    lab.svc.join("ann", "Ann", "a", H1)
    lab.svc.claim("ann", "X1C-1")
    lab.report("started", key="k1")
    lab.svc.join("bob", "Bob", "b", H1)
    lab.clock.advance(minutes=61)
    # The FINISH of k1 was never seen (the watcher was down).
    lab.svc.sweep()  # past its predicted end: offered to bob, who claims
    lab.svc.claim("bob", "X1C-1")
    lab.report("idle", key=None)
    assert lab.report("started", key="k2") == "started"
    ann, bob = lab.ticket("ann"), lab.ticket("bob")
    assert ann.status == "done" and ann.actual_minutes is None and ann.bound_minutes == 61
    assert bob.status == "printing" and lab.printer().print_key == "k2"


def test_an_unknown_printer_is_refused() -> None:
    with pytest.raises(NotFoundError):
        Lab().report("idle", printer="Prusa", key=None)


def test_staff_pages_hear_of_state_changes_and_progress_in_tens() -> None:
    """The staff page's live updates follow the event log: a ``reported`` printer event
    for every change of state, and for progress only when it crosses a 10 % step."""
    from printcore.queue.printer_status import live_summary

    lab = Lab()
    lab.svc.join("ann", "Ann", "a", H1)
    lab.svc.claim("ann", "X1C-1")
    lab.report("started", percent=0, remaining=60)
    for percent in (1, 2, 9, 10, 11, 35):
        lab.report("progress", percent=percent, remaining=60 - percent, layer=percent,
                   total_layers=100)
    with MemoryQueueUnitOfWork(lab.db) as uow:
        reported = [e.details for e in uow.events.for_subject("printer", lab.printer().id or 0)
                    if e.kind == "reported"]
    assert [(d["report"], d["percent"]) for d in reported] == [
        ("started", 0), ("progress", 10), ("progress", 35)]
    assert live_summary(lab.printer()) == "printing, 35 %, layer 35/100, 25m left"
