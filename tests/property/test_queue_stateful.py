"""Model-based stateful test of the self-service printer queue (CONVENTIONS #10, issue 3).

A hypothesis ``RuleBasedStateMachine`` drives the real ``QueueService`` (access hours
``mon-fri 08:00-22:00; sat 10:00-16:00`` in America/Chicago, default windows) on a storage
given as a parameter — the in-memory fake, and a migrated SQLite file through
``adapters.sql.SqlUnitOfWork`` — side by side with a trivially correct model: the expected
order of the tickets waiting for a printer (joins append; a missed window moves a ticket
just behind the next queued member; notdone, staff release and taking a printer out of
service keep its place; starting, cancelling and expiring take it out), each ticket's
missed windows in a row, and which tickets exist.

Rules: join (five members, who also join twice), claim / report started / close / notdone
/ cancel / update time by any member on any printer (mostly refused) and by the member the
state says (mostly accepted), the sweep, time passing (minutes, and jumps to just before
closing, to the opening, overnight and over the weekend), staff release, out of service and
back, staff removal of a ticket, and the read-only status / history / placement.

Each command's outcome is predicted from the state before it (who may claim, start,
notdone, close, cancel, join...). A refusal must be a ``PrintcoreError`` (never
``ConcurrentChangeError``: nothing runs concurrently here) and must change nothing:
printers, tickets, events and notices are compared before and after. After every step:

* at most one claim per printer and one printer per ticket: ``printer.holder_ticket`` is
  set exactly when the printer is offered/claimed, and then names a ticket in the same
  state whose ``printer`` is that printer; each printing ticket is the open print of
  exactly one printer; an idle printer has no open print, a printing one has;
* only the claimer starts or releases (notdone): a start or notdone is accepted only from
  the member holding the claimed printer, and the print on it is then theirs;
* FIFO: the service's order of waiting tickets (queued, offered, claimed) equals the
  model's, and every offer made in a step went to the head of the queue;
* no ticket lost or duplicated: every joined ticket is exactly once either open (and then
  in ``open_tickets()``) or final, ids are unique, final tickets never change;
* no offer and no window in closed hours: offers are made only while the lab is open, at
  the step's time; every claim/start deadline is ``add_open_time(set_at, window)`` and
  holds exactly the window of open time; claims and starts at or after their deadline are
  refused; status ETAs are open moments, in queue order;
* sweeps fire exactly the due deadlines (miss, or expire on a second miss in a row), in
  time order with the offers after each (windows lapsing together in queue order), and
  leave no available printer unoffered while someone waits and the lab is open; a second
  sweep at the same time reports nothing and changes nothing; sweeping at every instant
  of a period (within open hours, shorter than a claim window) gives the same holders,
  states and order as sweeping once at its end (issue 14: the test that would have caught
  two windows lapsing in one sweep swapping the members' order);
* simultaneous deadlines (issue 14): several printers are offered at one instant (a crowd
  gathered before an opening, or prints made to end together) and their windows lapse
  together. Windows lapsing at one instant must give the outcome of the same windows
  lapsing a microsecond apart in queue order, each swept on its own; and, read off the
  store alone, a ticket that never missed a window has no later joiner ahead of it (a
  later joiner passes an earlier one only by the missed-window rule).

Why these fail on the sweep of defect 1 (every due window lapsed first, one offer pass
after): Ann, Bob and Cat are offered X1C-1..3 at 08:00 (deadline 08:10), Cat claims.
At 08:10 the old sweep moved Ann behind Dan, then Bob behind Dan too (Dan not offered yet),
ahead of Ann, and offered X1C-2 to Bob. Staggered, Ann lapses first, Dan is offered X1C-1,
then Bob lapses behind the next queued member, Ann, who gets X1C-2: the outcomes differ,
and the model's order (queue-order ties, offers after each) differs from the store's.
Checked by putting the old loop back in a scratch copy of ``printcore/queue/sweep.py``:
the scenario test and the random runs both fail there (model order, staggered and
sweep-partition comparisons, offers not to the head).
* events are append-only; every successful change appends at least one, with an actor
  (the member who acted, staff, or the system for offers and missed windows), and each
  ticket that changed has one of its own.
"""

from __future__ import annotations

import copy
import sqlite3
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import attrs
import pytest
from hypothesis import HealthCheck, event, settings
from hypothesis import strategies as st
from hypothesis.control import currently_in_test_context
from hypothesis.stateful import RuleBasedStateMachine, initialize, rule, run_state_machine_as_test
from sqlalchemy import Engine, text

from printcore.errors import ConcurrentChangeError, PrintcoreError
from printcore.events import Event
from printcore.memory import FixedClock, MemoryOutboxStore
from printcore.queue.access_hours import AccessHours
from printcore.queue.entities import OPEN_TICKET_STATUSES, Printer, Ticket
from printcore.queue.memory import MemoryQueueDatabase, MemoryQueueUnitOfWork
from printcore.queue.ports import QueueNotice, QueueUnitOfWork, queue_notice_of
from printcore.queue.service import QueuePolicy, QueueService, SweepReport
from printcore.requests.job import Actor

UowFactory = Callable[[], QueueUnitOfWork]
#: Gives an empty store (as a unit-of-work factory) for each hypothesis example.
Storage = Callable[[], UowFactory]

MEMBERS = {"ann": "Ann", "bob": "Bob", "cat": "Cat", "dan": "Dan", "eve": "Eve"}
PRINTERS = ("X1C-1", "X1C-2", "X1C-3")  # one to three configured: the rest are unknown
HOURS = AccessHours.parse("mon-fri 08:00-22:00; sat 10:00-16:00", "America/Chicago")
POLICY = QueuePolicy()
STAFF = Actor.staff("Ada", "front-desk")
PHOTO = "https://cdn.example/failed.jpg"
FINAL = ("done", "cancelled", "expired")
WAITING = ("queued", "offered", "claimed")
#: First moments (UTC; the lab's clock is UTC-5 in September, UTC-6 from 1 November).
STARTS = (
    datetime(2026, 9, 7, 15, 0, tzinfo=UTC),  # Monday 10:00, open all day
    datetime(2026, 9, 9, 19, 0, tzinfo=UTC),  # Wednesday 14:00
    datetime(2026, 9, 12, 2, 45, tzinfo=UTC),  # Friday 21:45, just before closing
    datetime(2026, 9, 12, 20, 52, tzinfo=UTC),  # Saturday 15:52, just before closing
    datetime(2026, 9, 13, 17, 0, tzinfo=UTC),  # Sunday noon, closed
    datetime(2026, 9, 14, 12, 55, tzinfo=UTC),  # Monday 07:55, just before opening
    datetime(2026, 10, 31, 2, 45, tzinfo=UTC),  # Friday 21:45 before the clocks go back
)
#: Moments just before an opening (UTC): members gather while the lab is closed, and at
#: the opening every printer is offered at one instant, so the windows share one deadline.
OPENINGS = (
    datetime(2026, 9, 14, 12, 50, tzinfo=UTC),  # Monday 07:50 (opens 08:00)
    datetime(2026, 9, 12, 14, 55, tzinfo=UTC),  # Saturday 09:55 (opens 10:00)
    datetime(2026, 11, 2, 13, 58, tzinfo=UTC),  # Monday 07:58, first one after the DST end
)
ESTIMATES = st.sampled_from([5, 10, 20, 90, 600])
OUTCOMES = st.sampled_from([("finished", None), ("failed", PHOTO), ("failed", None),
                            ("finished", PHOTO), ("exploded", None)])
REMAINING = st.sampled_from([None, 5, 20, 120, 0, -10])  # minutes; 0 and below refused
PICK = st.integers(0, 59)
#: 0: anyone / any printer (mostly refused); 1-3: whom the state says (mostly accepted).
AIM = st.integers(0, 3)
PUMPING = ("join", "close", "notdone", "cancel", "sweep", "release", "take_out", "put_back",
           "remove")


@attrs.frozen
class Snap:
    """Everything the queue stores, read through the unit of work's ports."""

    printers: dict[str, Printer]
    tickets: dict[int, Ticket]
    open_order: list[int]
    events: dict[tuple[str, int], list[Event]]

    def stored(self) -> tuple[Any, ...]:
        return (self.printers, self.tickets, self.open_order, self.events)


@attrs.frozen
class Notifier:
    """What members were told: the committed ``discord`` outbox rows, oldest first."""

    uow: UowFactory

    @property
    def sent(self) -> list[QueueNotice]:
        with self.uow() as uow:
            rows = uow.outbox.list(subject="ticket", limit=100_000)
        return [queue_notice_of(m) for m in reversed(rows) if m.channel == "discord"]


def anyone(pick: int) -> tuple[str, str]:
    """Any member and any printer name (X1C-3 may not be configured)."""
    return sorted(MEMBERS)[pick % len(MEMBERS)], PRINTERS[pick // len(MEMBERS) % len(PRINTERS)]


def _deadline(printer: Printer) -> datetime | None:
    if printer.status == "offered":
        return printer.claim_deadline
    if printer.status == "claimed":
        return printer.start_deadline
    return None


def _free_at(printer: Printer) -> datetime | None:
    """Since when the printer could be offered (the service's rule, restated): an idle one
    always, a printing one from its predicted end, neither before ``offer_not_before``."""
    if printer.status == "idle":
        since = datetime.min.replace(tzinfo=UTC)
    elif printer.status == "printing" and printer.predicted_end is not None:
        since = printer.predicted_end
    else:
        return None
    return since if printer.offer_not_before is None else max(since, printer.offer_not_before)


def _available(printer: Printer, now: datetime) -> bool:
    """Could be offered now (the service's rule, restated)."""
    if printer.offer_not_before is not None and now < printer.offer_not_before:
        return False
    return printer.status == "idle" or (
        printer.status == "printing" and printer.predicted_end is not None
        and printer.predicted_end <= now)


class QueueMachine(RuleBasedStateMachine):
    def __init__(self, storage: Storage) -> None:
        super().__init__()
        self.uow = storage()
        self.clock = FixedClock(STARTS[0])
        self.notifier = Notifier(self.uow)
        self.svc = QueueService(uow=self.uow, clock=self.clock,
                                access=HOURS, policy=POLICY)
        # The model.
        self.order: list[int] = []  # waiting tickets (queued/offered/claimed), FIFO
        self.misses: dict[int, int] = {}  # missed windows in a row, per waiting ticket
        self.known: set[int] = set()  # every ticket ever joined
        self.claimed_by: dict[str, str] = {}  # printer → the member whose claim last worked
        self.joined: list[int] = []  # every ticket, in join order
        self.ever_missed: set[int] = set()  # tickets that ever missed a window
        self.tied_checks = 0  # periods checked against their windows lapsing apart
        self.forks = 0  # copies of the store made (SQLite: files beside the original)

    # --- reading the store -----------------------------------------------------------

    def snap(self) -> Snap:
        with self.uow() as uow:
            printers = {p.name: p for p in uow.printers.list()}
            tickets: dict[int, Ticket] = {}
            for member in MEMBERS:
                for t in uow.tickets.for_member(member):
                    assert t.id is not None and t.id not in tickets, f"ticket {t.id} twice"
                    tickets[t.id] = t
            open_order = [t.id or 0 for t in uow.tickets.open_tickets()]
            events = {("ticket", i): uow.events.for_subject("ticket", i) for i in tickets}
            for p in printers.values():
                events["printer", p.id or 0] = uow.events.for_subject("printer", p.id or 0)
        return Snap(printers, tickets, open_order, events)

    def open_ticket(self, s: Snap, member: str) -> Ticket | None:
        mine = [t for t in s.tickets.values() if t.member == member and t.is_open]
        assert len(mine) <= 1, f"{member} has {len(mine)} open tickets"
        return mine[0] if mine else None

    def queued(self, s: Snap) -> list[int]:
        return [i for i in self.order if s.tickets[i].status == "queued"]

    # --- one command -------------------------------------------------------------------

    def step(self, kind: str, before: Snap, expect: bool, action: Callable[[], Any],
             effect: Callable[[Snap, Any], dict[int, set[str]]],
             actors: tuple[Actor, ...]) -> Any:
        """Run ``action``; a refusal must be expected and change nothing; a success must
        be expected, and ``effect`` updates the model and says which tickets it moved
        (ticket id → statuses allowed before the offers of this step)."""
        sent = len(self.notifier.sent)
        try:
            result = action()
        except ConcurrentChangeError:
            raise
        except PrintcoreError as err:
            after = self.snap()
            assert after.stored() == before.stored(), f"refused {kind} changed the store: {err}"
            assert len(self.notifier.sent) == sent, f"refused {kind} sent notices"
            assert not expect, f"{kind} was refused but should have worked: {err}"
            self.check(after)
            return None
        assert expect, f"{kind} worked but should have been refused"
        after = self.snap()
        moved = effect(after, result)
        self.account(kind, before, after, moved, actors, self.notifier.sent[sent:])
        self.check(after)
        return result

    def account(self, kind: str, before: Snap, after: Snap, moved: dict[int, set[str]],
                actors: tuple[Actor, ...], notices: list[QueueNotice]) -> None:
        now = self.clock.now()
        # Events: append-only; new ones at this time, by the one who acted or the system.
        new: list[tuple[tuple[str, int], Event]] = []
        for key, old in before.events.items():
            assert after.events[key][: len(old)] == old, f"events of {key} rewritten"
        for key, events in after.events.items():
            new += [(key, e) for e in events[len(before.events.get(key, [])):]]
        changed = {i for i, t in after.tickets.items() if before.tickets.get(i) != t}
        if changed or after.printers != before.printers:
            assert new, f"{kind} changed the queue without an event"
        for i in changed:
            assert any(key == ("ticket", i) for key, _ in new), f"{kind}: ticket {i} no event"
        for _, e in new:
            assert e.at == now and e.actor.name, e
            if e.actor.kind == "system":
                assert e.kind in ("offer", "missed", "expired"), e
            else:
                assert e.actor in actors, f"{kind}: event {e.kind} by {e.actor}, not {actors}"
        # Final tickets never move.
        for i, t in before.tickets.items():
            if t.status in FINAL:
                assert after.tickets[i] == t, f"final ticket {i} changed"
        # Offers of this step: lab open, at the step's time, to the head of the queue.
        offered = [e.subject_id for key, e in new if key[0] == "ticket" and e.kind == "offer"]
        assert len(set(offered)) == len(offered), f"{kind}: a ticket offered twice at once"
        if offered:
            assert kind in PUMPING, f"{kind} made offers"
            assert HOURS.is_open(now), f"{kind} made an offer while the lab is closed"
        for i, t in after.tickets.items():
            was = moved.get(i, {before.tickets[i].status} if i in before.tickets else set())
            if i in offered:
                assert t.status == "offered" and t.offered_at == now, (kind, t)
                assert "queued" in was, f"{kind}: ticket {i} offered from {was}"
            else:
                assert t.status in was, f"{kind}: ticket {i} went {was} → {t.status}"
                if i not in moved and i in before.tickets:
                    old = before.tickets[i]
                    assert (t.printer, t.misses) == (old.printer, old.misses), (kind, old, t)
        waiting_before_offers = [i for i in self.order
                                 if after.tickets[i].status == "queued" or i in offered]
        assert set(offered) == set(waiting_before_offers[: len(offered)]), (
            f"{kind}: offers went to {offered}, not the head of {waiting_before_offers}")
        assert sorted(n.ticket_id for n in notices if n.kind == "offered") == sorted(offered)
        for n in notices:  # each notice names its ticket's member; an offer, its window
            ticket = after.tickets[n.ticket_id]
            assert (n.member, n.member_name) == (ticket.member, ticket.member_name), n
            if n.kind == "offered":
                holder = after.printers[n.printer or ""]
                assert n.deadline == holder.claim_deadline and holder.holder_ticket == n.ticket_id
        if kind == "sweep":  # each missed window and expiry is told to its member
            for what, status in (("missed", "queued"), ("expired", "expired")):
                told = sorted(n.ticket_id for n in notices if n.kind == what)
                assert told == sorted(i for i, v in moved.items() if v == {status}), what
        if kind in PUMPING and HOURS.is_open(now) and self.queued(after):
            idle = [p.name for p in after.printers.values() if _available(p, now)]
            assert not idle, f"after {kind}, {idle} free but not offered to the queue"

    # --- the structure, after every step -----------------------------------------------

    def check(self, s: Snap) -> None:
        assert set(s.tickets) == self.known, "a ticket was lost or appeared"
        open_ids = [i for i, t in s.tickets.items() if t.is_open]
        assert sorted(s.open_order) == sorted(open_ids), "open_tickets() misses a ticket"
        assert all(t.status in (*OPEN_TICKET_STATUSES, *FINAL) for t in s.tickets.values())
        for member in MEMBERS:
            self.open_ticket(s, member)
        # FIFO with the missed-window rule.
        waiting = [i for i in s.open_order if s.tickets[i].status in WAITING]
        assert waiting == self.order, f"queue order {waiting}, model {self.order}"
        for i in self.order:
            assert s.tickets[i].misses == self.misses[i], (s.tickets[i], self.misses[i])
        # Overtaking, read off the store alone (not the model's order): a later joiner is
        # ahead of an earlier one only by the missed-window rule, so a ticket that never
        # missed a window has only earlier joiners ahead of it.
        rank = {i: n for n, i in enumerate(self.joined)}
        for at, i in enumerate(waiting):
            if i not in self.ever_missed:
                later = [j for j in waiting[:at] if rank[j] > rank[i]]
                assert not later, f"ticket {i} (never missed) overtaken by later {later}"
        holders: dict[int, str] = {}
        prints: dict[int, str] = {}
        for p in s.printers.values():
            assert (p.holder_ticket is not None) == (p.status in ("offered", "claimed")), p
            assert (p.holder is not None) == (p.holder_ticket is not None), p
            if p.holder_ticket is not None:
                assert p.holder_ticket not in holders, f"ticket held by two printers: {p}"
                holders[p.holder_ticket] = p.name
                t = s.tickets[p.holder_ticket]
                assert (t.status, t.printer, t.member) == (p.status, p.name, p.holder), (p, t)
            if p.status == "offered":
                assert p.start_deadline is None and p.claim_deadline is not None, p
                t = s.tickets[p.holder_ticket or 0]
                assert t.offered_at is not None and HOURS.is_open(t.offered_at), t
                self.check_window(t.offered_at, p.claim_deadline, POLICY.claim_window)
            elif p.status == "claimed":
                assert p.claim_deadline is None and p.start_deadline is not None, p
                t = s.tickets[p.holder_ticket or 0]
                assert t.claimed_at is not None, t
                self.check_window(t.claimed_at, p.start_deadline, POLICY.start_window)
            else:
                assert p.claim_deadline is None and p.start_deadline is None, p
            if p.print_ticket is not None:
                assert p.print_ticket not in prints, f"one print on two printers: {p}"
                prints[p.print_ticket] = p.name
                t = s.tickets[p.print_ticket]
                assert (t.status, t.printer, t.member) == ("printing", p.name, p.print_member)
                assert p.started_at == t.started_at and p.predicted_end is not None, (p, t)
            else:
                assert p.print_member is p.started_at is p.predicted_end is None, p
                assert p.offer_not_before is None, p
            if p.status == "printing":
                assert p.print_ticket is not None, f"printing without a print: {p}"
            if p.status == "idle":
                assert p.print_ticket is None, f"idle with an unclosed print on it: {p}"
        for i, t in s.tickets.items():
            if t.status in ("offered", "claimed"):
                assert holders.get(i) == t.printer, f"ticket {t} not held by its printer"
            elif t.status == "printing":
                assert prints.get(i) == t.printer, f"printing ticket {t} on no printer"
            elif t.status == "queued":
                assert t.printer is None and i not in holders, t
            if t.status == "done":
                assert t.outcome in ("finished", "failed") and t.closed_at is not None, t
                assert t.outcome == "finished" or t.photo_url, t
                # Issue 14, defect 2: a duration is known (actual) only when someone said
                # when the print ended; otherwise close - start is kept as an upper bound.
                known, bound = t.actual_minutes, t.bound_minutes
                assert (known is None) != (bound is None), t
                assert (known or bound or 0) >= 1, t
                assert (known is None) == (t.ended_at is None), t

    @staticmethod
    def check_window(set_at: datetime, deadline: datetime, window: timedelta) -> None:
        assert deadline == HOURS.add_open_time(set_at, window), (set_at, deadline)
        seconds = HOURS.open_seconds_between(set_at, deadline)
        assert seconds == window.total_seconds(), (set_at, deadline, seconds)

    # --- the model's moves ---------------------------------------------------------------

    def behind_next(self, i: int, statuses: dict[int, str]) -> None:
        """A missed window: just behind the next queued member, if any."""
        at = self.order.index(i)
        following = [j for j in self.order[at + 1:] if statuses[j] == "queued"]
        if following:
            self.order.remove(i)
            self.order.insert(self.order.index(following[0]) + 1, i)

    def leaves(self, i: int) -> None:
        self.order.remove(i)
        del self.misses[i]

    # --- setting up --------------------------------------------------------------------

    @initialize(start=st.sampled_from(STARTS), printers=st.integers(1, 3),
                joins=st.lists(st.tuples(st.sampled_from(sorted(MEMBERS)), ESTIMATES),
                               max_size=6),
                crowd=st.one_of(st.none(), st.sampled_from(OPENINGS)))
    def configure(self, start: datetime, printers: int, joins: list[tuple[str, int]],
                  crowd: datetime | None = None) -> None:
        """One to three printers, and a few members joining (some twice) a minute apart.

        With ``crowd`` (simultaneous deadlines): the members gather a few minutes before
        an opening, every one of the five joins, and at the opening one sweep offers every
        printer at one instant, so their claim windows share one deadline."""
        self.clock.current = crowd or start
        self.svc.sync_printers([(n, f"Bambu {n}") for n in PRINTERS[:printers]])
        self.check(self.snap())
        if crowd is not None:
            joins = [*joins, *((m, 20) for m in sorted(MEMBERS))]
        for member, est in joins:  # a minute apart; 10 s apart before an opening
            self.join_as(member, est)
            self.clock.advance(seconds=60 if crowd is None else 10)
        assert crowd is None or not HOURS.is_open(self.clock.now()), "the crowd came late"
        if crowd is not None:
            opening = HOURS.next_opening(self.clock.now())
            self.time_passes(opening, then_sweep=True)
            offered = [p for p in self.snap().printers.values() if p.status == "offered"]
            assert len(offered) == printers, f"at the opening only {offered} were offered"
            assert len({p.claim_deadline for p in offered}) == 1, offered

    # --- members --------------------------------------------------------------------------

    def aimed(self, candidates: list[Any], pick: int, aim: int, anything: Any) -> Any:
        """What the state says (``aim`` 1-3), or ``anything`` (``aim`` 0, or none fits)."""
        return candidates[pick % len(candidates)] if aim and candidates else anything

    @rule(pick=PICK, aim=AIM, est=ESTIMATES)
    def join(self, pick: int, aim: int, est: int) -> None:
        s = self.snap()
        free = [m for m in sorted(MEMBERS) if self.open_ticket(s, m) is None]
        self.join_as(self.aimed(free, pick, aim, anyone(pick)[0]), est)

    def join_as(self, member: str, est: int) -> None:
        before = self.snap()

        def effect(after: Snap, placement: Any) -> dict[int, set[str]]:
            (i,) = set(after.tickets) - set(before.tickets)
            assert placement.ticket.id == i and placement.ticket.member == member
            self.known.add(i)
            self.joined.append(i)
            self.order.append(i)
            self.misses[i] = 0
            queued = self.queued(after)
            assert placement.position == (queued.index(i) + 1 if i in queued else 0)
            return {i: {"queued"}}

        self.step("join", before, self.open_ticket(before, member) is None,
                  lambda: self.svc.join(member, MEMBERS[member], f"{member}'s part",
                                        timedelta(minutes=est)),
                  effect, (Actor("member", MEMBERS[member]),))

    def claim(self, member: str, printer: str) -> None:
        before, now = self.snap(), self.clock.now()
        t = self.open_ticket(before, member)
        p = before.printers.get(printer)
        expect = False
        if t is not None and p is not None:
            if t.status == "offered" and t.printer == printer:
                expect = p.claim_deadline is not None and now < p.claim_deadline
            elif t.status == "queued":
                expect = (self.queued(before)[0] == t.id and p.status == "idle"
                          and HOURS.is_open(now))

        def effect(after: Snap, ticket: Any) -> dict[int, set[str]]:
            assert t is not None and t.id is not None
            claimed = after.printers[printer]
            assert (claimed.status, claimed.holder, claimed.holder_ticket) == (
                "claimed", member, t.id)
            assert after.tickets[t.id].claimed_at == now
            self.misses[t.id] = 0
            self.claimed_by[printer] = member
            return {t.id: {"claimed"}}

        self.step("claim", before, expect, lambda: self.svc.claim(member, printer), effect,
                  (Actor("member", MEMBERS[member]),))

    @rule(pick=PICK, aim=AIM)
    def claim_printer(self, pick: int, aim: int) -> None:
        """The offered member claims (or the head claims an idle printer), or anyone any."""
        s = self.snap()
        pairs = sorted((t.member, t.printer) for t in s.tickets.values()
                       if t.status == "offered" and t.printer)
        head = self.queued(s)[:1]
        pairs += [(s.tickets[head[0]].member, p.name) for p in s.printers.values()
                  if head and p.status == "idle"]
        self.claim(*self.aimed(pairs, pick, aim, anyone(pick)))

    def report_started(self, member: str) -> None:
        before, now = self.snap(), self.clock.now()
        t = self.open_ticket(before, member)
        p = before.printers.get(t.printer or "") if t is not None else None
        expect = (t is not None and t.status == "claimed" and p is not None
                  and p.holder == member and p.print_ticket is None
                  and p.start_deadline is not None and now < p.start_deadline)

        def effect(after: Snap, ticket: Any) -> dict[int, set[str]]:
            assert t is not None and t.id is not None and p is not None
            assert self.claimed_by.pop(p.name) == member, "started by someone who never claimed"
            on = after.printers[p.name]
            assert (on.status, on.print_ticket, on.print_member, on.holder) == (
                "printing", t.id, member, None), on
            assert on.predicted_end == now + timedelta(minutes=t.est_minutes)
            self.leaves(t.id)
            return {t.id: {"printing"}}

        self.step("start", before, expect, lambda: self.svc.report_started(member), effect,
                  (Actor("member", MEMBERS[member]),))

    @rule(pick=PICK, aim=AIM)
    def start_print(self, pick: int, aim: int) -> None:
        s = self.snap()
        claimers = sorted(p.holder for p in s.printers.values()
                          if p.status == "claimed" and p.holder)
        self.report_started(self.aimed(claimers, pick, aim, anyone(pick)[0]))

    def close(self, member: str, printer: str, outcome: str, photo: str | None,
              took: int | None = None) -> None:
        """``took``: the member says how long the print took (minutes), so its duration
        is known; without it, close - start is kept as an upper bound (issue 14, defect 2).
        """
        before, now = self.snap(), self.clock.now()
        p = before.printers.get(printer)
        started = None
        if p is not None and p.print_ticket is not None:
            started = before.tickets[p.print_ticket].started_at
        expect = (outcome in ("finished", "failed") and (outcome == "finished" or bool(photo))
                  and p is not None and p.print_ticket is not None
                  and member in (p.print_member, p.holder)
                  and (took is None or (started is not None
                                        and started + timedelta(minutes=took) <= now)))

        def effect(after: Snap, ticket: Any) -> dict[int, set[str]]:
            assert p is not None and p.print_ticket is not None and started is not None
            done = after.tickets[p.print_ticket]
            lasted = now - started if took is None else timedelta(minutes=took)
            minutes = max(1, round(lasted.total_seconds() / 60))
            known, bound = (minutes, None) if took is not None else (None, minutes)
            ended = None if took is None else started + timedelta(minutes=took)
            assert (done.outcome, done.photo_url, done.actual_minutes, done.bound_minutes,
                    done.ended_at, done.closed_at) == (
                outcome, photo, known, bound, ended, now), done
            return {p.print_ticket: {"done"}}

        self.step("close", before, expect,
                  lambda: self.svc.close(member, printer, outcome, photo,
                                         took=None if took is None else timedelta(minutes=took)),
                  effect, (Actor("member", MEMBERS[member]),))

    @rule(pick=PICK, aim=AIM, by_holder=st.booleans(), outcome=OUTCOMES,
          took=st.sampled_from([None, None, 0, 4, 45]))
    def close_print(self, pick: int, aim: int, by_holder: bool,
                    outcome: tuple[str, str | None], took: int | None) -> None:
        """The member who printed, or the one the printer is offered to / claimed by."""
        s = self.snap()
        found = sorted((p.holder if by_holder and p.holder else p.print_member or "", p.name)
                       for p in s.printers.values() if p.print_ticket is not None)
        member, printer = self.aimed(found, pick, aim, anyone(pick))
        self.close(member, printer, outcome[0], outcome[1], took=took)

    def notdone(self, member: str, remaining: int | None) -> None:
        before, now = self.snap(), self.clock.now()
        t = self.open_ticket(before, member)
        p = before.printers.get(t.printer or "") if t is not None else None
        expect = (t is not None and t.status == "claimed" and p is not None
                  and p.holder == member and p.print_ticket is not None
                  and (remaining is None or remaining >= 1))
        rest = POLICY.notdone_default if remaining is None else timedelta(minutes=remaining)

        def effect(after: Snap, ticket: Any) -> dict[int, set[str]]:
            assert t is not None and t.id is not None and p is not None
            assert self.claimed_by.pop(p.name) == member, "released by someone who never claimed"
            on = after.printers[p.name]
            assert (on.status, on.predicted_end, on.offer_not_before) == (
                "printing", now + rest, now + rest), on
            return {t.id: {"queued"}}  # keeps its place at the head

        self.step("notdone", before, expect,
                  lambda: self.svc.notdone(
                      member, None if remaining is None else timedelta(minutes=remaining)),
                  effect, (Actor("member", MEMBERS[member]),))

    @rule(pick=PICK, aim=AIM, remaining=REMAINING)
    def not_done(self, pick: int, aim: int, remaining: int | None) -> None:
        s = self.snap()
        claimers = sorted(p.holder for p in s.printers.values()
                          if p.status == "claimed" and p.holder and p.print_ticket)
        self.notdone(self.aimed(claimers, pick, aim, anyone(pick)[0]), remaining)

    @rule(pick=PICK, aim=AIM)
    def cancel(self, pick: int, aim: int) -> None:
        s = self.snap()
        waiting = sorted(t.member for t in s.tickets.values() if t.status in WAITING)
        self.cancel_as(self.aimed(waiting, pick, aim // 3, anyone(pick)[0]))  # seldom aimed

    def cancel_as(self, member: str) -> None:
        before = self.snap()
        t = self.open_ticket(before, member)

        def effect(after: Snap, ticket: Any) -> dict[int, set[str]]:
            assert t is not None and t.id is not None
            self.leaves(t.id)
            return {t.id: {"cancelled"}}

        self.step("cancel", before, t is not None and t.status != "printing",
                  lambda: self.svc.cancel(member), effect, (Actor("member", MEMBERS[member]),))

    @rule(pick=PICK, aim=AIM, est=ESTIMATES)
    def update_time(self, pick: int, aim: int, est: int) -> None:
        s = self.snap()
        holding = sorted(t.member for t in s.tickets.values() if t.is_open)
        self.update_time_as(self.aimed(holding, pick, aim, anyone(pick)[0]), est)

    def update_time_as(self, member: str, est: int | timedelta) -> None:
        """``est`` in minutes, or any duration (rounded to whole minutes on the ticket; a
        print's predicted end is its start + the duration as given)."""
        before = self.snap()
        t = self.open_ticket(before, member)
        duration = est if isinstance(est, timedelta) else timedelta(minutes=est)

        def effect(after: Snap, placement: Any) -> dict[int, set[str]]:
            assert t is not None and t.id is not None
            updated = after.tickets[t.id]
            minutes = max(1, round(duration.total_seconds() / 60))
            assert updated.est_minutes == minutes and updated.status == t.status
            if t.status == "printing" and t.started_at is not None:
                on = after.printers[t.printer or ""]
                assert on.predicted_end == t.started_at + duration, on
            return {t.id: {t.status}}

        self.step("update_time", before, t is not None,
                  lambda: self.svc.update_time(member, duration), effect,
                  (Actor("member", MEMBERS[member]),))

    @rule(minutes=st.integers(1, 30))
    def prints_end_together(self, minutes: int) -> None:
        """Simultaneous deadlines, the other way: every member printing says their print
        ends at one instant (``update_time`` with start + duration = now + ``minutes``), so
        one sweep frees those printers together and offers them at one instant."""
        s, now = self.snap(), self.clock.now()
        ends = now + timedelta(minutes=minutes)
        for t in sorted(s.tickets.values(), key=lambda t: t.id or 0):
            # Estimates are 1 minute to 7 days: a print started longer ago is left alone.
            if (t.status == "printing" and t.started_at is not None
                    and ends - t.started_at <= timedelta(days=7)):
                self.update_time_as(t.member, ends - t.started_at)

    @rule(who=st.integers(0, 255), outcome=OUTCOMES, remaining=REMAINING)
    def members_move_on(self, who: int, outcome: tuple[str, str | None],
                        remaining: int | None) -> None:
        """Members with an offer or a printer do the next natural thing, one after another
        (bit k of ``who`` for the k-th of them): claim the offered printer; on a claimed one
        close the previous print, or say it is not done, or start; close their own print."""
        s = self.snap()
        tickets = sorted((t for t in s.tickets.values() if t.is_open and t.status != "queued"),
                         key=lambda t: t.id or 0)
        for k, old in enumerate(tickets):
            bit = bool(who >> k & 1)
            now = self.snap()  # as the previous member's move left it
            t = now.tickets[old.id or 0]
            on = now.printers.get(t.printer or "")
            if t.status == "offered" and on is not None:
                self.claim(t.member, on.name)
            elif t.status == "claimed" and on is not None and on.print_ticket is not None:
                if bit:
                    self.close(t.member, on.name, *outcome)
                else:
                    self.notdone(t.member, remaining)
            elif t.status == "claimed":
                self.report_started(t.member)
            elif t.status == "printing" and on is not None and bit:
                self.close(t.member, on.name, *outcome)  # their own print, done or not

    # --- the sweep and time ----------------------------------------------------------------

    @rule()
    def sweep(self) -> None:
        before, now = self.snap(), self.clock.now()

        def effect(after: Snap, report: Any) -> dict[int, set[str]]:
            statuses = {i: t.status for i, t in before.tickets.items()}
            moved: dict[int, set[str]] = {}
            missed = expired = 0
            # What became due, in time order: a printer that went free before a window
            # lapsed first, windows lapsing at one instant in queue order (issue 14).
            items: list[tuple[datetime, int, int, str]] = []
            free: dict[str, datetime] = {}  # printers that may be offered, since when
            for p in before.printers.values():
                deadline = _deadline(p)
                if p.holder_ticket is not None and deadline is not None and deadline <= now:
                    items.append((deadline, 1, self.order.index(p.holder_ticket), p.name))
                elif (since := _free_at(p)) is not None and since <= now:
                    items.append((since, 0, 0, p.name))
                    free[p.name] = since
            for at, is_deadline, _, name in sorted(items):
                if is_deadline:
                    i = before.printers[name].holder_ticket
                    assert i is not None
                    if self.misses[i] >= 1:  # a second miss in a row
                        statuses[i] = "expired"
                        self.leaves(i)
                        moved[i] = {"expired"}
                        expired += 1
                    else:
                        statuses[i] = "queued"
                        self.misses[i] += 1
                        self.ever_missed.add(i)
                        self.behind_next(i, statuses)
                        moved[i] = {"queued"}
                        missed += 1
                    free[name] = at
                if HOURS.is_open(now):  # the free printers, by name, to the queue's head
                    for printer in sorted(n for n, since in free.items() if since <= at):
                        head = [j for j in self.order if statuses[j] == "queued"]
                        if not head:
                            break
                        statuses[head[0]] = "offered"
                        del free[printer]
            offers = sum(1 for t in after.tickets.values()
                         if t.status == "offered" and t.offered_at == now
                         and (before.tickets[t.id or 0].status != "offered"
                              or (t.id or 0) in moved))
            assert (report.missed, report.expired, report.offered) == (missed, expired, offers)
            for i, status in statuses.items():
                if status == "offered" and before.tickets[i].status == "queued":
                    assert after.tickets[i].status == "offered", (i, after.tickets[i])
            return moved

        self.step("sweep", before, True, self.svc.sweep, effect, (Actor.system(),))
        # Sweeping again at the same time finds nothing due and changes nothing.
        once = self.snap()
        sent = len(self.notifier.sent)
        assert self.svc.sweep() == SweepReport()
        assert self.snap().stored() == once.stored() and len(self.notifier.sent) == sent
        for p in once.printers.values():
            deadline = _deadline(p)
            assert deadline is None or deadline > now, f"due deadline left by the sweep: {p}"

    @contextmanager
    def fork(self) -> Iterator[tuple[QueueService, FixedClock, UowFactory] | None]:
        """A copy of the queue on its own clock, or None for a storage that cannot be
        copied: the in-memory database deep-copied, or the SQLite file copied with
        SQLite's backup API (removed again after the block)."""
        with self.uow() as uow:
            db = getattr(uow, "db", None)
            engine = getattr(uow, "engine", None)
        clock = FixedClock(self.clock.now())
        if isinstance(db, MemoryQueueDatabase):
            copied = MemoryQueueDatabase(
                printers=copy.deepcopy(db.printers), tickets=copy.deepcopy(db.tickets),
                events=copy.deepcopy(db.events), next_id=db.next_id,
                outbox=MemoryOutboxStore(rows=copy.deepcopy(db.outbox.rows),
                                         next_id=db.outbox.next_id))

            def memory_uow() -> QueueUnitOfWork:
                return MemoryQueueUnitOfWork(copied)

            yield (QueueService(uow=memory_uow, clock=clock, access=HOURS, policy=POLICY),
                   clock, memory_uow)
            return
        if not (isinstance(engine, Engine) and engine.dialect.name == "sqlite"
                and engine.url.database):
            yield None
            return
        from adapters.sql import SqlUnitOfWork, make_engine

        original = Path(engine.url.database)
        path = original.with_name(f"fork-{self.forks}-{original.name}")
        self.forks += 1
        with sqlite3.connect(original) as source, sqlite3.connect(path) as target:
            source.backup(target)
        source.close()
        target.close()
        copied_engine = make_engine(f"sqlite:///{path}")

        def sql_uow() -> QueueUnitOfWork:
            return SqlUnitOfWork(copied_engine)

        try:
            yield (QueueService(uow=sql_uow, clock=clock, access=HOURS, policy=POLICY),
                   clock, sql_uow)
        finally:
            copied_engine.dispose()
            path.unlink(missing_ok=True)

    @staticmethod
    def outcome(uow: UowFactory) -> tuple[Any, ...]:
        """Who holds which printer, each ticket's state, misses and place: the outcome
        without its times."""
        with uow() as u:
            printers = [(p.name, p.status, p.holder, p.holder_ticket, p.print_ticket)
                        for p in u.printers.list()]
            order = [(t.id, t.status, t.printer, t.misses) for t in u.tickets.open_tickets()]
        return printers, order

    def sweep_at_every_instant(self, to: datetime,
                               stagger: bool = False) -> tuple[Any, ...] | None:
        """The outcome of sweeping at every instant of (now, ``to``] on a copy: at each
        deadline and each moment a printer goes free in the period, then at ``to``.

        With ``stagger`` (simultaneous deadlines): first, on the copy, the windows that
        lapse together by ``to`` are moved a microsecond apart in queue order (see
        :meth:`stagger_ties`), so each lapses in a sweep of its own; None when no two
        share a deadline."""
        with self.fork() as forked:
            if forked is None:
                return None
            svc, clock, uow = forked
            now, end = self.clock.now(), to
            if stagger:
                staggered = self.stagger_ties(uow, to)
                if staggered is None:
                    return None
                end = staggered
            with uow() as u:
                printers = u.printers.list()
            instants = sorted({at for p in printers
                               for at in (_deadline(p), _free_at(p))
                               if at is not None and now < at < end})
            for at in [*instants, end]:
                clock.current = at
                svc.sweep()
            return self.outcome(uow)

    @staticmethod
    def stagger_ties(uow: UowFactory, to: datetime) -> datetime | None:
        """Windows lapsing at one instant, at or before ``to``, moved apart: the k-th
        holder in queue order (0-based) gets the shared deadline + k microseconds. Every
        time in this test is on a whole second, so nothing else falls between. Returns the
        last instant to sweep (``to``, or the last moved deadline after it), or None when
        no two windows share a deadline."""
        with uow() as u:
            keys = {t.id: (t.queue_key, t.id or 0) for t in u.tickets.open_tickets()}
            ties: dict[datetime, list[Printer]] = {}
            for p in u.printers.list():
                deadline = _deadline(p)
                if deadline is not None and deadline <= to and p.holder_ticket is not None:
                    ties.setdefault(deadline, []).append(p)
            end: datetime | None = None
            for deadline, group in ties.items():
                if len(group) < 2:
                    continue
                group.sort(key=lambda p: keys[p.holder_ticket])
                for k, p in enumerate(group):
                    at = deadline + timedelta(microseconds=k)
                    if p.status == "offered":
                        p.claim_deadline = at
                    else:
                        p.start_deadline = at
                    u.printers.update(p)
                    end = max(end or to, at)
            u.commit()
        return end

    def time_passes(self, to: datetime, then_sweep: bool) -> None:
        """The clock moves; with ``then_sweep`` the bot's loop sweeps at once, else the
        sweep is late (down, or between two runs) and members act first."""
        now = self.clock.now()
        assert to > now
        # Sweeping at every instant of the period ≡ sweeping once at its end (issue 14), for
        # periods inside one stretch of open hours, ending open (a sweep at the closing
        # instant makes no offer), and shorter than a claim window (offers
        # count their window from when they are made, so a longer late sweep gives the
        # members offered in it their full window instead of lapsing it unseen).
        # Simultaneous deadlines: windows that lapse at one instant give the outcome of the
        # same windows lapsing a moment apart in queue order, each in its own sweep (the
        # first in the queue is never overtaken by the one behind because their windows
        # ended together).
        every = staggered = None
        if (then_sweep and to - now < POLICY.claim_window and HOURS.is_open(to)
                and HOURS.open_seconds_between(now, to) == (to - now).total_seconds()):
            every = self.sweep_at_every_instant(to)
            staggered = self.sweep_at_every_instant(to, stagger=True)
        self.clock.current = to
        self.check(self.snap())
        if then_sweep:
            self.sweep()
            outcome = self.outcome(self.uow)
            if every is not None:
                assert outcome == every, "sweeping once ≠ sweeping throughout"
            if staggered is not None:
                self.tied_checks += 1
                if currently_in_test_context():
                    event("windows lapsing together, checked against staggered")
                assert outcome == staggered, (
                    "windows lapsing together ≠ the same windows lapsing a moment apart "
                    "in queue order")

    @rule(minutes=st.integers(1, 12), then_sweep=st.booleans())
    def minutes_pass(self, minutes: int, then_sweep: bool) -> None:
        self.time_passes(self.clock.now() + timedelta(minutes=minutes), then_sweep)

    @rule(which=st.integers(0, 5), seconds=st.sampled_from([0, 1, 20, 59, 65]))
    def deadlines_pass(self, which: int, seconds: int) -> None:
        """Time runs to a pending claim or start deadline (``seconds`` past it; 0: exactly
        at it), with the sweep on time: windows that share a deadline lapse in one sweep,
        and deadlines seconds apart lapse in one sweep or in two. The clock stops 9
        minutes before first, so that the last stretch is shorter than a claim window
        (where sweeping at every instant must equal sweeping once)."""
        now = self.clock.now()
        pending = sorted({d for p in self.snap().printers.values()
                          if (d := _deadline(p)) is not None and d > now})
        if not pending:
            return
        to = pending[which % len(pending)] + timedelta(seconds=seconds)
        if to - timedelta(minutes=9) > now:
            self.time_passes(to - timedelta(minutes=9), then_sweep=True)
        self.time_passes(to, then_sweep=True)

    @rule(where=st.sampled_from(["print_ends", "before_closing", "closing", "opening",
                                 "after_opening", "overnight", "weekend"]),
          minutes=st.integers(0, 10), then_sweep=st.booleans())
    def time_jumps(self, where: str, minutes: int, then_sweep: bool) -> None:
        now = self.clock.now()
        closing = HOURS.next_closing(now)
        assert closing is not None
        opening = HOURS.next_opening(closing if HOURS.is_open(now) else now)
        ends = sorted(p.predicted_end for p in self.snap().printers.values()
                      if p.predicted_end is not None and p.predicted_end >= now)
        to = {
            "print_ends": (ends[0] if ends else now) + timedelta(minutes=minutes),
            "before_closing": closing - timedelta(minutes=minutes),
            "closing": closing,
            "opening": opening,
            "after_opening": opening + timedelta(minutes=minutes),
            "overnight": now + timedelta(hours=12),
            "weekend": now + timedelta(days=2, minutes=minutes),
        }[where]
        if to > now:
            self.time_passes(to, then_sweep)

    # --- staff ------------------------------------------------------------------------------

    @rule(what=st.sampled_from(["release", "take_out", "put_back", "remove"]), pick=PICK,
          aim=AIM)
    def staff_acts(self, what: str, pick: int, aim: int) -> None:
        """Release a printer, take one out of service or back, remove a ticket (one rule,
        so that staff act about as often as one member command)."""
        s = self.snap()
        printers = sorted(s.printers.values(), key=lambda p: p.name)
        if what == "release":
            busy = [p.name for p in printers
                    if p.holder_ticket is not None or p.print_ticket is not None]
            self.release_as_staff(self.aimed(busy, pick, aim, anyone(pick)[1]))
        elif what == "remove":
            waiting = sorted(i for i, t in s.tickets.items() if t.status in WAITING)
            self.remove_as_staff(self.aimed(waiting, pick, aim // 3, pick % 8 + 1))
        else:
            in_service = what == "put_back"
            fits = [p.name for p in printers if (p.status == "out_of_service") == in_service]
            self.set_in_service(self.aimed(fits, pick, aim, anyone(pick)[1]), in_service)

    def release_as_staff(self, printer: str) -> None:
        before = self.snap()
        p = before.printers.get(printer)
        expect = p is not None and (p.holder_ticket is not None or p.print_ticket is not None)

        def effect(after: Snap, released: Any) -> dict[int, set[str]]:
            assert p is not None
            if p.holder_ticket is not None:
                return {p.holder_ticket: {"queued"}}  # keeps its place, no miss
            assert p.print_ticket is not None
            assert after.tickets[p.print_ticket].outcome == "finished"
            return {p.print_ticket: {"done"}}

        self.step("release", before, expect,
                  lambda: self.svc.release_printer(printer, STAFF), effect, (STAFF,))

    def set_in_service(self, printer: str, in_service: bool) -> None:
        before = self.snap()
        p = before.printers.get(printer)
        expect = p is not None and (p.status == "out_of_service") == in_service

        def effect(after: Snap, changed: Any) -> dict[int, set[str]]:
            assert p is not None
            on = after.printers[printer]
            if not in_service:
                assert on.status == "out_of_service", on
            return {} if p.holder_ticket is None else {p.holder_ticket: {"queued"}}

        self.step("put_back" if in_service else "take_out", before, expect,
                  lambda: self.svc.set_in_service(printer, in_service, STAFF), effect,
                  (STAFF,))

    def remove_as_staff(self, i: int) -> None:
        before = self.snap()
        t = before.tickets.get(i)

        def effect(after: Snap, removed: Any) -> dict[int, set[str]]:
            self.leaves(i)
            return {i: {"cancelled"}}

        self.step("remove", before, t is not None and t.status in WAITING,
                  lambda: self.svc.remove_ticket(i, STAFF), effect, (STAFF,))

    # --- reading ------------------------------------------------------------------------------

    @rule()
    def look(self) -> None:
        s, now = self.snap(), self.clock.now()
        printers, placements = self.svc.status()
        assert {p.name: p for p in printers} == s.printers
        assert [pl.ticket.id for pl in placements] == s.open_order
        queued = self.queued(s)
        assert [pl.ticket.id for pl in placements if pl.position] == queued
        assert [pl.position for pl in placements if pl.position] == list(
            range(1, len(queued) + 1))
        in_service = any(p.status != "out_of_service" for p in printers)
        etas = [pl.eta for pl in placements if pl.position]
        for eta in etas:
            assert (eta is not None) == in_service
            if eta is not None:
                assert eta >= now and HOURS.is_open(eta), f"ETA {eta} in closed hours"
        known = [e for e in etas if e is not None]
        assert known == sorted(known), f"ETAs out of queue order: {known}"
        for pl in placements:
            if pl.ticket.member in MEMBERS:
                mine = self.svc.placement(pl.ticket.member)
                assert (mine.ticket.id, mine.position, mine.eta) == (
                    pl.ticket.id, pl.position, pl.eta)
        history = self.svc.history()
        assert all(t.status == "done" and (t.actual_minutes or t.bound_minutes)
                   for t in history)
        assert [t.id for t in history] == sorted(
            (i for i, t in s.tickets.items() if t.status == "done"), reverse=True)[:20]


# --- storages ------------------------------------------------------------------------------


def memory_storage() -> UowFactory:
    db = MemoryQueueDatabase()
    return lambda: MemoryQueueUnitOfWork(db)


def _empty_tables(engine: Engine) -> None:
    from adapters.sql.tables import metadata

    with engine.begin() as conn:
        for table in reversed(metadata.sorted_tables):
            conn.execute(text(f'DELETE FROM "{table.name}"'))
        has_sequence = conn.execute(text(
            "SELECT 1 FROM sqlite_master WHERE name = 'sqlite_sequence'")).first()
        if has_sequence:
            conn.execute(text("DELETE FROM sqlite_sequence"))


@pytest.fixture
def sqlite_storage(tmp_path: Path) -> Iterator[Storage]:
    """A migrated SQLite file, emptied for each example; skipped while the SQL unit of work
    has no queue repositories."""
    from adapters.sql import SqlUnitOfWork, make_engine, upgrade

    engine = make_engine(f"sqlite:///{tmp_path / 'q.db'}")
    if not (hasattr(SqlUnitOfWork, "printers") or hasattr(SqlUnitOfWork(engine), "printers")):
        engine.dispose()
        pytest.skip("adapters.sql.SqlUnitOfWork has no queue repositories (.printers) yet")
    upgrade(engine)

    def fresh() -> UowFactory:
        _empty_tables(engine)
        return lambda: SqlUnitOfWork(engine)

    yield fresh
    engine.dispose()


#: Examples × steps per storage: 13 s (memory, 200) and 23 s (SQLite, 50) at load average
#: ~3 on the two cores (measured 2026-12-01, with the forks of the sweep comparisons).
BUDGETS = {"memory": (200, 40), "sqlite": (50, 40)}


@pytest.fixture(params=sorted(BUDGETS))
def storage(request: pytest.FixtureRequest) -> tuple[str, Storage]:
    name: str = request.param
    if name == "memory":
        return name, memory_storage
    fresh: Storage = request.getfixturevalue("sqlite_storage")
    return name, fresh


def test_the_queue_against_a_model(storage: tuple[str, Storage]) -> None:
    name, fresh = storage
    examples, steps = BUDGETS[name]
    run_state_machine_as_test(
        lambda: QueueMachine(fresh),
        settings=settings(max_examples=examples, stateful_step_count=steps, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow,
                                                 HealthCheck.filter_too_much]),
    )


def test_windows_lapsing_together_keep_the_queue_order(storage: tuple[str, Storage]) -> None:
    """Issue 14, defect 1, driven through the model on every storage: five members gather
    before the Monday opening, the three printers are offered at 08:00 with one claim
    deadline (08:10), the third member claims, and the other two windows lapse together.
    Ann (first in the queue) goes behind Dan, who gets X1C-1; Bob then goes behind Ann,
    who gets X1C-2. The old sweep (every due window lapsed first, offers after) put Bob
    behind Dan as well, ahead of Ann, and offered him X1C-2: the model's order, and the
    staggered sweep of :meth:`QueueMachine.time_passes` on a copy of the store, refuse it.
    """
    _, fresh = storage
    machine = QueueMachine(fresh)
    try:
        machine.configure(start=STARTS[0], printers=3, joins=[], crowd=OPENINGS[0])
        opening = datetime(2026, 9, 14, 13, 0, tzinfo=UTC)
        held = {p.name: p.holder for p in machine.snap().printers.values()}
        assert held == {"X1C-1": "ann", "X1C-2": "bob", "X1C-3": "cat"}
        machine.claim("cat", "X1C-3")
        machine.time_passes(opening + timedelta(minutes=9), then_sweep=True)
        machine.time_passes(opening + timedelta(minutes=11), then_sweep=True)
        s = machine.snap()
        held = {p.name: p.holder for p in s.printers.values()}
        assert held == {"X1C-1": "dan", "X1C-2": "ann", "X1C-3": "cat"}, held
        waiting = [s.tickets[i].member for i in s.open_order]
        assert waiting == ["cat", "dan", "ann", "bob", "eve"], waiting
        assert machine.tied_checks == 1, "the staggered comparison did not run"
    finally:
        machine.teardown()


def test_printers_freed_in_one_sweep_lapse_together(storage: tuple[str, Storage]) -> None:
    """Simultaneous deadlines the other way: Ann and Bob print on the two printers, their
    prints made to end at one instant (08:21; not closed: a printer printing past its
    predicted end may be offered), so one sweep offers both printers at once, to Cat and
    Dan, with one deadline (08:31); Eve waits. Both windows lapse together: Cat goes behind
    Eve, who gets X1C-1; then Dan goes behind the next queued member, Cat, who gets X1C-2.
    The old sweep (all lapses first) put Dan behind Eve too, ahead of Cat, and offered him
    X1C-2. Every step is checked against the model, and the lapse against the same
    windows lapsing a moment apart."""
    _, fresh = storage
    machine = QueueMachine(fresh)
    try:
        machine.configure(start=STARTS[0], printers=2, joins=[], crowd=OPENINGS[0])
        opening = datetime(2026, 9, 14, 13, 0, tzinfo=UTC)
        machine.time_passes(opening + timedelta(minutes=1), then_sweep=True)
        for member, printer in (("ann", "X1C-1"), ("bob", "X1C-2")):
            machine.claim(member, printer)
            machine.report_started(member)
        machine.prints_end_together(minutes=20)
        ends = {p.predicted_end for p in machine.snap().printers.values()}
        assert ends == {opening + timedelta(minutes=21)}, ends
        machine.time_passes(opening + timedelta(minutes=12), then_sweep=True)
        machine.time_passes(opening + timedelta(minutes=21), then_sweep=True)
        s = machine.snap()
        assert {p.name: (p.status, p.holder) for p in s.printers.values()} == {
            "X1C-1": ("offered", "cat"), "X1C-2": ("offered", "dan")}
        deadlines = {p.claim_deadline for p in s.printers.values()}
        assert deadlines == {opening + timedelta(minutes=31)}, deadlines
        machine.deadlines_pass(which=0, seconds=20)
        s = machine.snap()
        assert {p.name: (p.status, p.holder) for p in s.printers.values()} == {
            "X1C-1": ("offered", "eve"), "X1C-2": ("offered", "cat")}
        assert [(s.tickets[i].member, s.tickets[i].misses) for i in s.open_order
                if s.tickets[i].status in WAITING] == [("eve", 0), ("cat", 1), ("dan", 1)]
        assert machine.tied_checks >= 1, "the staggered comparison did not run"
    finally:
        machine.teardown()
