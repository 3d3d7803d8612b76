"""The queue's storage: one repository contract on memory, SQLite and PostgreSQL (the
outbox rows of queue notices included); 50 threads claiming one printer; 50 sweeps at
once telling each member once; a restart after an hour of downtime.

Bad inputs tried: a stale version (another claim won), an unknown printer name (the
error lists the known ones), an unknown ticket id, a change left uncommitted, a commit
that fails after the change wrote its notice (nothing is told).
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
from printcore.errors import ConcurrentChangeError, InvalidTransitionError, NotFoundError
from printcore.memory import FixedClock
from printcore.queue.entities import Printer, Ticket
from printcore.queue.ports import (
    QueueNotice,
    QueueUnitOfWork,
    queue_notice_message,
    queue_notice_of,
)
from printcore.queue.service import QueuePolicy, QueueService

Factory = Callable[[], QueueUnitOfWork]
T0 = datetime(2026, 9, 7, 15, 0, 0, 250000, tzinfo=UTC)  # a Monday
THREADS = 50


@attrs.define
class Notices:
    """The queue notices committed to the outbox after row ``since``, oldest first."""

    engine: Engine
    since: int = 0

    @classmethod
    def from_now(cls, engine: Engine) -> Notices:
        with SqlUnitOfWork(engine) as uow:
            newest = uow.outbox.list(limit=1)
        return cls(engine, (newest[0].id or 0) if newest else 0)

    @property
    def sent(self) -> list[QueueNotice]:
        with SqlUnitOfWork(self.engine) as uow:
            rows = uow.outbox.list(subject="ticket", limit=10_000)
        return [queue_notice_of(m) for m in reversed(rows)
                if (m.id or 0) > self.since and m.channel == "discord"]


def ticket(member: str, key: float, **changes: object) -> Ticket:
    made = Ticket(member=member, member_name=member.title(), job_name=f"{member}'s part",
                  est_minutes=90, created_at=T0, queue_key=key)
    return attrs.evolve(made, **changes)


# --- the contract ---------------------------------------------------------------------


def test_printers_round_trip_and_compare_and_set(queue_uow_factory: Factory) -> None:
    with queue_uow_factory() as uow:
        uow.printers.add(Printer("X1C-2", "Bambu X1C #2"))
        uow.printers.add(Printer("X1C-1", "Bambu X1C #1"))
        uow.commit()
    with queue_uow_factory() as uow:
        assert [p.name for p in uow.printers.list()] == ["X1C-1", "X1C-2"]
        printer = uow.printers.get("X1C-1")
        assert (printer.status, printer.version, printer.label) == ("idle", 1, "Bambu X1C #1")
        with pytest.raises(NotFoundError, match="printers: X1C-1, X1C-2"):
            uow.printers.get("Prusa MK4")
    stale = attrs.evolve(printer)
    with queue_uow_factory() as uow:
        printer.status, printer.holder, printer.holder_ticket = "claimed", "ann", 7
        printer.start_deadline = T0 + timedelta(minutes=15)
        printer.predicted_end = T0 + timedelta(hours=2, microseconds=5)
        uow.printers.update(printer)
        uow.commit()
    assert printer.version == 2
    with queue_uow_factory() as uow:
        stored = uow.printers.get("X1C-1")
        assert stored == printer
        assert stored.start_deadline is not None and stored.start_deadline.tzinfo is not None
        stale.holder = "bob"
        with pytest.raises(ConcurrentChangeError, match="X1C-1 was changed by someone"):
            uow.printers.update(stale)
    with queue_uow_factory() as uow:  # nothing committed: nothing changed
        uow.printers.update(uow.printers.get("X1C-2"))
    with queue_uow_factory() as uow:
        assert uow.printers.get("X1C-2").version == 1
        assert uow.printers.get("X1C-1").holder == "ann"


def test_update_many_is_one_compare_and_set_for_all(queue_uow_factory: Factory) -> None:
    """The sweep writes its changed rows with ``update_many``: all stored and bumped at
    once, or — when any one was changed by someone else meanwhile (here: one stale copy
    among 30 printers and 30 tickets) — ConcurrentChangeError and nothing committed."""
    with queue_uow_factory() as uow:
        for n in range(30):
            uow.printers.add(Printer(f"P{n:02d}", ""))
            uow.tickets.add(ticket(f"m{n}", float(n)))
        uow.commit()
    with queue_uow_factory() as uow:
        printers, tickets = uow.printers.list(), uow.tickets.open_tickets()
    stale_p, stale_t = attrs.evolve(printers[7]), attrs.evolve(tickets[11])
    with queue_uow_factory() as uow:
        for p in printers:
            p.status = "offered"
        for t in tickets:
            t.misses = 1
        uow.printers.update_many(printers)
        uow.tickets.update_many(tickets)
        uow.commit()
    assert {p.version for p in printers} == {2} and {t.version for t in tickets} == {2}
    with queue_uow_factory() as uow:
        assert {p.status for p in uow.printers.list()} == {"offered"}
        assert {t.misses for t in uow.tickets.open_tickets()} == {1}
    for many, stale in (("printers", stale_p), ("tickets", stale_t)):
        with queue_uow_factory() as uow:
            fresh = (uow.printers.list() if many == "printers" else uow.tickets.open_tickets())
            batch = [stale if x.id == stale.id else x for x in fresh]  # one stale copy
            repo = uow.printers if many == "printers" else uow.tickets
            with pytest.raises(ConcurrentChangeError):
                repo.update_many(batch)  # type: ignore[attr-defined]
    with queue_uow_factory() as uow:  # nothing of the refused batches committed
        assert {p.version for p in uow.printers.list()} == {2}
        assert {t.version for t in uow.tickets.open_tickets()} == {2}


def test_tickets_fifo_members_and_history(queue_uow_factory: Factory) -> None:
    base = T0.timestamp()
    with queue_uow_factory() as uow:
        ids = [uow.tickets.add(ticket("ann", base + 2.5)),
               uow.tickets.add(ticket("bob", base)),
               uow.tickets.add(ticket("carl", base + 1.25)),
               uow.tickets.add(ticket("ann", base - 100, status="done", actual_minutes=80,
                                      outcome="finished", printer="X1C-1")),
               uow.tickets.add(ticket("dan", base + 3, status="cancelled"))]
        uow.commit()
    assert len(set(ids)) == 5
    with queue_uow_factory() as uow:
        assert [t.member for t in uow.tickets.open_tickets()] == ["bob", "carl", "ann"]
        assert uow.tickets.open_tickets()[2].queue_key == base + 2.5  # float precision kept
        assert [t.id for t in uow.tickets.for_member("ann")] == [ids[3], ids[0]]
        assert [t.id for t in uow.tickets.for_member("ann", open_only=True)] == [ids[0]]
        assert [t.id for t in uow.tickets.closed()] == [ids[3]]
        first = uow.tickets.get(ids[0])
        assert first.created_at == T0 and first.est_minutes == 90
        with pytest.raises(NotFoundError, match="no ticket #999"):
            uow.tickets.get(999)
        first.status, first.printer = "offered", "X1C-1"
        uow.tickets.update(first)
        uow.commit()
    with queue_uow_factory() as uow:
        stale = uow.tickets.get(ids[0])
        stale.version = 1
        with pytest.raises(ConcurrentChangeError):
            uow.tickets.update(stale)
        assert uow.tickets.get(ids[0]).status == "offered"


def test_the_light_reads_agree_with_the_full_one(queue_uow_factory: Factory) -> None:
    """Issue 14's speed: position (a count), last_queue_key (a max), queue_line (three
    columns) and open_tickets_page (held + first N queued) tell what open_tickets does."""
    base = T0.timestamp()
    with queue_uow_factory() as uow:
        assert uow.tickets.last_queue_key() is None and uow.tickets.queue_line() == []
        for n, (member, status) in enumerate([("a", "queued"), ("b", "offered"),
                                              ("c", "queued"), ("d", "printing"),
                                              ("e", "queued"), ("f", "done"),
                                              ("g", "queued")]):
            uow.tickets.add(ticket(member, base + n * 1.5, status=status))
        uow.commit()
    with queue_uow_factory() as uow:
        full = uow.tickets.open_tickets()
        assert [(s.id, s.status, s.est_minutes) for s in uow.tickets.queue_line()] == [
            (t.id, t.status, t.est_minutes) for t in full]
        queued = [t for t in full if t.status == "queued"]
        assert [uow.tickets.position(t) for t in queued] == [1, 2, 3, 4]
        assert uow.tickets.last_queue_key() == base + 6 * 1.5  # g; f is done
        page = uow.tickets.open_tickets_page(2)
        assert [t.member for t in page] == ["a", "b", "c", "d"]
        assert [t.member for t in uow.tickets.open_tickets_page(0)] == ["b", "d"]


def test_status_page_matches_the_full_status(queue_uow_factory: Factory) -> None:
    clock = FixedClock(T0)
    svc = QueueService(uow=queue_uow_factory, clock=clock, policy=QueuePolicy())
    svc.sync_printers([("X1C-1", ""), ("X1C-2", "")])
    for n in range(12):
        svc.join(f"m{n}", f"M{n}", "part", timedelta(minutes=30 + 7 * n))
    svc.claim("m0", "X1C-1")
    svc.report_started("m0")
    printers, full = svc.status()
    page = svc.status_page(3)
    assert page.waiting == 10 and page.printers == printers
    shown = [p for p in full if p.ticket.status != "queued"] + [
        p for p in full if p.ticket.status == "queued"][:3]
    key = lambda p: (p.ticket.queue_key, p.ticket.id)  # noqa: E731
    assert sorted(page.placements, key=key) == sorted(shown, key=key)
    last = svc.placement("m11")
    assert (last.position, last.eta) == (10, full[-1].eta)


def test_notice_rows_commit_and_roll_back_with_the_queue(queue_uow_factory: Factory) -> None:
    offer = QueueNotice("offered", "1001", "Ann", 7, "X1C-1", T0 + timedelta(minutes=10))
    with queue_uow_factory() as uow:  # left uncommitted: gone
        uow.tickets.add(ticket("ann", 1.0))
        uow.outbox.add(queue_notice_message(offer, T0))
    with queue_uow_factory() as uow:
        assert uow.outbox.list() == [] and uow.tickets.open_tickets() == []
        uow.tickets.add(ticket("ann", 1.0))
        message_id = uow.outbox.add(queue_notice_message(offer, T0))
        uow.commit()
    with queue_uow_factory() as uow:
        (row,) = uow.outbox.list(subject="ticket", subject_id=7)
        assert row.id == message_id and row.status == "pending"
        assert (row.channel, row.recipient, row.kind) == ("discord", "1001", "offered")
        assert queue_notice_of(row) == offer
        assert uow.outbox.due(T0, 10, ["discord"]) == [message_id]
        assert uow.outbox.due(T0, 10, ["email"]) == []


# --- 50 claims at once ------------------------------------------------------------------


def _service(engine: Engine, clock: FixedClock) -> QueueService:
    return QueueService(uow=lambda: SqlUnitOfWork(engine), clock=clock, policy=QueuePolicy())


def _race(work: Callable[[int], object]) -> Counter[str]:
    barrier = threading.Barrier(THREADS, timeout=60)
    outcomes: list[str] = []
    lock = threading.Lock()

    def run(n: int) -> None:
        barrier.wait()
        try:
            work(n)
            outcome = "won"
        except ConcurrentChangeError:
            outcome = "concurrent"
        except InvalidTransitionError:
            outcome = "refused"
        except Exception as exc:
            outcome = f"error: {type(exc).__name__}: {exc}"
        with lock:
            outcomes.append(outcome)

    threads = [threading.Thread(target=run, args=(n,)) for n in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert len(outcomes) == THREADS
    return Counter(outcomes)


def test_fifty_threads_storing_a_claim_on_one_printer(sql_engine: Engine) -> None:
    """The compare-and-set itself: every thread read version 1, exactly one update lands."""
    with SqlUnitOfWork(sql_engine) as uow:
        uow.printers.add(Printer("X1C-1"))
        uow.commit()
    with SqlUnitOfWork(sql_engine) as uow:
        loaded = uow.printers.get("X1C-1")

    def claim(n: int) -> None:
        mine = attrs.evolve(loaded, status="claimed", holder=f"member-{n}", holder_ticket=n)
        with SqlUnitOfWork(sql_engine) as uow:
            uow.printers.update(mine)
            uow.commit()

    outcomes = _race(claim)
    assert outcomes == Counter({"won": 1, "concurrent": THREADS - 1})
    with SqlUnitOfWork(sql_engine) as uow:
        stored = uow.printers.get("X1C-1")
    assert stored.version == 2 and stored.holder == f"member-{stored.holder_ticket}"


def test_fifty_threads_claiming_through_the_service(sql_engine: Engine) -> None:
    """A member's 50 taps on /claim at once: one claim, one event, the rest refused."""
    clock = FixedClock(T0)
    service = _service(sql_engine, clock)
    service.sync_printers([("X1C-1", "Bambu X1C #1")])
    service.join("ann", "Ann", "bracket", timedelta(hours=1))
    outcomes = _race(lambda n: service.claim("ann", "X1C-1"))
    assert outcomes["won"] == 1, outcomes
    assert outcomes["won"] + outcomes["concurrent"] + outcomes["refused"] == THREADS, outcomes
    with SqlUnitOfWork(sql_engine) as uow:
        printer = uow.printers.get("X1C-1")
        mine = uow.tickets.for_member("ann")[0]
        kinds = [e.kind for e in uow.events.for_subject("ticket", mine.id or 0)]
    assert printer.status == "claimed" and printer.holder == "ann"
    assert mine.status == "claimed" and kinds.count("claim") == 1


# --- restart ----------------------------------------------------------------------------


def test_restart_after_an_hour_down_fires_each_due_deadline_once(sql_engine: Engine) -> None:
    clock = FixedClock(T0)
    before = _service(sql_engine, clock)
    before.sync_printers([("X1C-1", ""), ("X1C-2", "")])
    before.join("ann", "Ann", "a", timedelta(hours=1))  # offered X1C-1
    before.join("bob", "Bob", "b", timedelta(hours=1))  # offered X1C-2
    before.join("carl", "Carl", "c", timedelta(hours=1))
    before.claim("bob", "X1C-2")  # start window of 15 min
    # Ann already missed once before: her lapse now expires her ticket.
    with SqlUnitOfWork(sql_engine) as uow:
        ann = uow.tickets.for_member("ann")[0]
        ann.misses = 1
        uow.tickets.update(ann)
        uow.commit()
    sql_engine.dispose()  # the process stops; nothing runs for an hour

    clock.advance(hours=1)
    notices = Notices.from_now(sql_engine)
    after = _service(sql_engine, clock)  # rebuilt from the database alone
    report = after.sweep()
    assert (report.expired, report.missed) == (1, 1)
    # Both printers freed; Carl (then Bob, dropped behind him) get fresh windows.
    assert report.offered == 2
    assert sorted((n.kind, n.member) for n in notices.sent) == [
        ("expired", "ann"), ("missed", "bob"), ("offered", "bob"), ("offered", "carl")]
    for notice in notices.sent:
        if notice.kind == "offered":
            assert notice.deadline == clock.now() + timedelta(minutes=10)

    def snapshot() -> tuple[list[Printer], list[Ticket], int]:
        with SqlUnitOfWork(sql_engine) as uow:
            events = sum(len(uow.events.for_subject("ticket", t.id or 0))
                         for t in [*uow.tickets.open_tickets(), *uow.tickets.for_member("ann")])
            return uow.printers.list(), uow.tickets.open_tickets(), events

    settled = snapshot()
    again = _service(sql_engine, clock)  # a second restart, same instant
    assert again.sweep() == type(report)()
    assert after.sweep() == type(report)()
    assert snapshot() == settled
    assert len(notices.sent) == 4  # the idle sweeps told no one again
    with SqlUnitOfWork(sql_engine) as uow:
        ann_id = uow.tickets.for_member("ann")[0].id or 0
        kinds = [e.kind for e in uow.events.for_subject("ticket", ann_id)]
    assert kinds.count("expired") == 1


# --- notices and transactions -----------------------------------------------------------


class _DiesAtCommit(SqlUnitOfWork):
    """The database goes away at commit, after the change wrote its outbox row."""

    def commit(self) -> None:
        assert self._outbox.added, "the change wrote no notice before commit"
        raise RuntimeError("server closed the connection unexpectedly")


def test_a_change_that_fails_at_commit_leaves_no_notice(sql_engine: Engine) -> None:
    clock = FixedClock(T0)
    service = _service(sql_engine, clock)
    service.sync_printers([("X1C-1", "")])
    notices = Notices.from_now(sql_engine)
    dying = attrs.evolve(service, uow=lambda: _DiesAtCommit(sql_engine))
    with pytest.raises(RuntimeError, match="closed the connection"):
        dying.join("ann", "Ann", "bracket", timedelta(hours=1))
    assert notices.sent == [] and service.status()[1] == []
    service.join("ann", "Ann", "bracket", timedelta(hours=1))
    assert [(n.kind, n.member) for n in notices.sent] == [("offered", "ann")]


def test_fifty_sweeps_at_once_tell_each_member_once(sql_engine: Engine) -> None:
    """The bot's sweep, a cron sweep and more, all at the deadline: one miss, one offer,
    one notice each."""
    clock = FixedClock(T0)
    service = _service(sql_engine, clock)
    service.sync_printers([("X1C-1", "")])
    service.join("ann", "Ann", "a", timedelta(hours=1))
    service.join("bob", "Bob", "b", timedelta(hours=1))
    clock.advance(minutes=10)
    notices = Notices.from_now(sql_engine)
    outcomes = _race(lambda n: service.sweep())
    assert outcomes["won"] + outcomes["concurrent"] == THREADS, outcomes
    assert [(n.kind, n.member) for n in notices.sent] == [("missed", "ann"), ("offered", "bob")]
