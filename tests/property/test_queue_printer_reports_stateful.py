"""Model-based stateful test of the queue with printers that report for themselves
(issue 15), beside the member-reported model of ``test_queue_stateful.py``.

A hypothesis ``RuleBasedStateMachine`` drives the real ``QueueService`` (always open, two
printers, four members) on the in-memory fake and on SQLite. Members join, claim, report
started and close (finished or failed with a photo) as they like; the printers report
``started``, ``progress``, ``paused``, ``finished``, ``failed``, ``cancelled``, ``idle``,
``offline`` and ``online`` at random, with print keys drawn from a small set (so repeats,
restarts and prints nobody claimed happen), and the same report is sometimes sent twice
(a restarted watcher); time passes, the sweep runs, staff release printers.

After every step:

* a start counts once and a close counts once: no ticket has two ``start`` or two
  ``close`` events, whoever (member or printer) reported first;
* a closed print has a known duration exactly when an end was given (the printer's
  report, here), else an upper bound; a known one is end − start, never negative, and
  one the printer ended says ``ended_by == "printer"``;
* printers and tickets agree: a printer's open print is a printing ticket on it, and each
  printing ticket is the open print of exactly one printer; a holder is offered/claimed on
  that printer; a printing printer has a predicted end;
* a printer running a print nobody claimed is never offered to anyone while it runs: no
  offer event is made on it after its ``unclaimed_print`` event and before it ended;
* the same report applied twice changes nothing the second time (printers, tickets and
  the queue's events other than ``reported`` are the same);
* ``printer_reported`` never raises for a printer the queue knows.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import attrs
import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule, run_state_machine_as_test

from printcore.errors import PrintcoreError
from printcore.events import Event
from printcore.memory import FixedClock
from printcore.queue.access_hours import AccessHours
from printcore.queue.memory import MemoryQueueDatabase, MemoryQueueUnitOfWork
from printcore.queue.ports import QueueUnitOfWork
from printcore.queue.printer_status import PrinterLiveState, PrinterReport
from printcore.queue.service import QueuePolicy, QueueService
from printcore.requests.job import Actor

T0 = datetime(2026, 9, 7, 15, 0, tzinfo=UTC)
MEMBERS = ("ann", "bob", "cat", "dan")
PRINTERS = ("X1C-1", "X1C-2")
KINDS = ("started", "started", "progress", "paused", "finished", "failed", "cancelled",
         "idle", "offline", "online")
STATE = {"started": "RUNNING", "progress": "RUNNING", "paused": "PAUSE", "finished": "FINISH",
         "failed": "FAILED", "cancelled": "IDLE", "idle": "IDLE", "offline": "OFFLINE",
         "online": "IDLE"}
STAFF = Actor("staff", "Sam")

Factory = Callable[[], QueueUnitOfWork]


@attrs.frozen
class Snap:
    printers: tuple
    tickets: tuple
    events: tuple


class ReportsMachine(RuleBasedStateMachine):
    def __init__(self, factory: Factory) -> None:
        super().__init__()
        self.factory = factory
        self.clock = FixedClock(T0)
        self.svc = QueueService(uow=factory, clock=self.clock, access=AccessHours.always(),
                                policy=QueuePolicy())
        self.svc.sync_printers([(name, "") for name in PRINTERS])
        self.tickets: set[int] = set()

    # --- reading the store ---------------------------------------------------------

    def _events(self) -> list[Event]:
        with self.factory() as uow:
            found: list[Event] = []
            for ticket_id in sorted(self.tickets):
                found += uow.events.for_subject("ticket", ticket_id)
            for printer in uow.printers.list():
                found += uow.events.for_subject("printer", printer.id or 0)
            return found

    def snap(self) -> Snap:
        with self.factory() as uow:
            printers = tuple(attrs.astuple(p) for p in uow.printers.list())
            tickets = tuple(attrs.astuple(uow.tickets.get(t)) for t in sorted(self.tickets))
        events = tuple((e.subject, e.subject_id, e.kind) for e in self._events()
                       if e.kind != "reported")
        return Snap(printers, tickets, events)

    def _remember(self, member: str) -> None:
        mine = self.svc.myjobs(member)
        if mine:
            self.tickets.add(mine[0].id or 0)

    # --- members -------------------------------------------------------------------

    @rule(member=st.sampled_from(MEMBERS), minutes=st.integers(5, 120))
    def join(self, member: str, minutes: int) -> None:
        try:
            self.svc.join(member, member.title(), "part", timedelta(minutes=minutes))
        except PrintcoreError:
            pass
        self._remember(member)

    @rule(member=st.sampled_from(MEMBERS), printer=st.sampled_from(PRINTERS))
    def claim(self, member: str, printer: str) -> None:
        try:
            self.svc.claim(member, printer)
        except PrintcoreError:
            pass

    @rule(member=st.sampled_from(MEMBERS))
    def member_started(self, member: str) -> None:
        try:
            self.svc.report_started(member)
        except PrintcoreError:
            pass

    @rule(member=st.sampled_from(MEMBERS), printer=st.sampled_from(PRINTERS),
          failed=st.booleans())
    def member_close(self, member: str, printer: str, failed: bool) -> None:
        try:
            if failed:
                self.svc.close(member, printer, "failed", "https://cdn.example/f.jpg")
            else:
                self.svc.close(member, printer, "finished")
        except PrintcoreError:
            pass

    # --- printers, time, staff -----------------------------------------------------

    @rule(printer=st.sampled_from(PRINTERS), kind=st.sampled_from(KINDS),
          key=st.sampled_from(["k1", "k2", "k3", None]),
          remaining=st.none() | st.integers(0, 180), percent=st.integers(0, 100),
          twice=st.booleans())
    def printer_reports(self, printer: str, kind: str, key: str | None,
                        remaining: int | None, percent: int, twice: bool) -> None:
        now = self.clock.now()
        live = PrinterLiveState(state=STATE[kind], reported_at=now, percent=percent,
                                remaining_minutes=remaining)
        report = PrinterReport(printer, kind, now, live, print_key=key)  # type: ignore[arg-type]
        self.svc.printer_reported(report)
        if twice:  # a restarted watcher repeats its last change
            before = self.snap()
            self.svc.printer_reported(report)
            after = self.snap()
            assert after.tickets == before.tickets and after.events == before.events, (
                f"repeating {kind} {key} on {printer} changed the queue")
        for member in MEMBERS:
            self._remember(member)

    @rule(minutes=st.integers(1, 40))
    def time_passes(self, minutes: int) -> None:
        self.clock.advance(minutes=minutes)
        self.svc.sweep()
        for member in MEMBERS:
            self._remember(member)

    @rule(printer=st.sampled_from(PRINTERS))
    def staff_release(self, printer: str) -> None:
        try:
            self.svc.release_printer(printer, STAFF)
        except PrintcoreError:
            pass

    # --- what must always hold -----------------------------------------------------

    @invariant()
    def starts_and_closes_count_once(self) -> None:
        counts = Counter((e.subject_id, e.kind) for e in self._events()
                         if e.subject == "ticket" and e.kind in ("start", "close"))
        assert all(n == 1 for n in counts.values()), counts

    @invariant()
    def durations_known_only_with_an_end(self) -> None:
        with self.factory() as uow:
            for ticket_id in self.tickets:
                t = uow.tickets.get(ticket_id)
                if t.status != "done" or t.started_at is None:
                    continue
                assert (t.actual_minutes is None) != (t.bound_minutes is None), t
                if t.ended_at is not None:
                    assert t.actual_minutes is not None and t.ended_at >= t.started_at
                    assert t.ended_by in ("member", "printer")
                else:
                    assert t.actual_minutes is None

    @invariant()
    def printers_and_tickets_agree(self) -> None:
        with self.factory() as uow:
            printers = uow.printers.list()
            printing = {t.id: t for t in uow.tickets.open_tickets() if t.status == "printing"}
            owners = Counter(p.print_ticket for p in printers if p.print_ticket is not None)
            assert set(owners) == set(printing) and all(n == 1 for n in owners.values())
            for p in printers:
                if p.print_ticket is not None:
                    assert printing[p.print_ticket].printer == p.name
                    assert p.predicted_end is not None
                if p.holder_ticket is not None:
                    holder = uow.tickets.get(p.holder_ticket)
                    assert holder.status in ("offered", "claimed") and holder.printer == p.name
                    assert p.status in ("offered", "claimed")

    @invariant()
    def no_offer_while_a_print_nobody_claimed_runs(self) -> None:
        ends = {("printer", "unclaimed_print_ended"), ("printer", "release"),
                ("ticket", "start")}
        busy: dict[str, bool] = dict.fromkeys(PRINTERS, False)
        for e in sorted(self._events(), key=lambda e: e.id or 0):  # in the order written
            name = e.details.get("printer")
            if (e.subject, e.kind) == ("printer", "unclaimed_print"):
                busy[name] = True
            elif (e.subject, e.kind) in ends or (
                    e.kind == "reported" and e.details.get("report") == "idle"):
                busy[name] = False
            elif (e.subject, e.kind) == ("ticket", "offer"):
                assert not busy.get(name), f"{name} offered while running a print nobody claimed"


def memory_storage() -> Factory:
    db = MemoryQueueDatabase()
    return lambda: MemoryQueueUnitOfWork(db)


@pytest.fixture()
def sqlite_factory(tmp_path: Path) -> Iterator[Callable[[], Factory]]:
    from adapters.sql import SqlUnitOfWork, make_engine, upgrade

    engines = []
    count = iter(range(10_000))

    def fresh() -> Factory:
        engine = make_engine(f"sqlite:///{tmp_path / f'q{next(count)}.db'}")
        upgrade(engine)
        engines.append(engine)
        return lambda: SqlUnitOfWork(engine)

    yield fresh
    for engine in engines:
        engine.dispose()


BUDGETS = {"memory": (150, 40), "sqlite": (25, 30)}


@pytest.mark.parametrize("storage", sorted(BUDGETS))
def test_printer_reports_against_the_rules(storage: str,
                                           request: pytest.FixtureRequest) -> None:
    fresh = (memory_storage if storage == "memory"
             else request.getfixturevalue("sqlite_factory"))
    examples, steps = BUDGETS[storage]
    run_state_machine_as_test(
        lambda: ReportsMachine(fresh()),
        settings=settings(max_examples=examples, stateful_step_count=steps, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow]),
    )
