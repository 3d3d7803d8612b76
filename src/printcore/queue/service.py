"""The self-service queue's use cases: join, claim, close, report started, notdone,
cancel, update time, and the sweep that fires offers and deadlines.

Policy (documented in docs/queue.md):

* One FIFO queue over all printers, ordered by ``Ticket.queue_key`` (join time).
* An offer goes to the head queued ticket when a printer is idle, or printing past its
  predicted end (its print still unclosed), and only while the lab is open. The claim
  window (10 min) and start window (15 min) count open time only, and end at their
  deadline: a claim or start at or after it is refused whether or not the sweep has run.
* A missed window puts the ticket back in the queue just behind the next member — one
  place only, still ahead of whoever waits behind that member, offered and claimed
  tickets included; a second miss in a row expires it.
* ``close``: by the member who printed, or the member the printer is offered to or
  claimed by; the event's actor is whoever closed it.
* ``report_started`` is refused until the previous print on the printer is closed.
* ``notdone``: the previous print still runs; its predicted end moves (1 min to 7 days
  from now), the claim is released, the member keeps their place at the head, and that
  printer is not offered again before the new predicted end.
* Staff taking a printer from its holder (release, out of service) is logged on the
  ticket as well as on the printer.
* ``sweep(now)`` re-reads everything and acts only on what is due: running it twice
  changes nothing more. Every change appends an event to the shared event log.
* What members are told (offers, missed windows, expiries: :class:`QueueNotice`) is
  written to the outbox (channel ``discord``) in the same transaction as the change, so
  a change that fails or is rolled back tells no one, and a committed one is delivered
  once, by the bot (``printcore.outbox.OutboxService``), or logged without Discord.

Errors: NotFoundError (unknown printer, no ticket), InvalidTransitionError (wrong state,
someone else's printer or turn), ValidationError (bad duration, outcome, missing photo),
ConcurrentChangeError (another claim won).
"""

from __future__ import annotations

import functools
import heapq
import statistics
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, ParamSpec, TypeVar

import attrs

from printcore.errors import (
    ConcurrentChangeError,
    InvalidTransitionError,
    NotFoundError,
    ValidationError,
)
from printcore.events import Actor, Event
from printcore.outbox import OutboxMessage
from printcore.ports import Clock
from printcore.queue.access_hours import AccessHours
from printcore.queue.entities import Printer, Ticket
from printcore.queue.machines import fire_printer, fire_ticket
from printcore.queue.ports import (
    QueueNotice,
    QueueSlot,
    QueueUnitOfWork,
    queue_notice_message,
)
from printcore.queue.printer_status import PrinterReport
from printcore.queue.refusals import lab_time
from printcore.queue.sweep import SweepPlan, free_at

__all__ = ["BOUND_FACTOR", "Placement", "Prediction", "QueuePolicy", "QueueService",
           "StatusPage", "SweepReport"]


@attrs.frozen
class QueuePolicy:
    claim_window: timedelta = timedelta(minutes=10)
    start_window: timedelta = timedelta(minutes=15)
    notdone_default: timedelta = timedelta(minutes=30)
    max_open_tickets: int = 1


@attrs.frozen
class Placement:
    """A ticket's place: ``position`` 1-based among queued tickets (0 once offered or
    claimed), ``eta`` the predicted start (UTC), None when no printer is in service."""

    ticket: Ticket
    position: int
    eta: datetime | None


#: An upper bound (close − start, end not known) counts in a prediction only while it is
#: at most this many times the estimate; above it says nothing (closed the next morning).
BOUND_FACTOR = 3


@attrs.frozen
class Prediction:
    """A suggested print time in minutes and what it is based on.

    ``member_prints`` / ``printer_prints`` count the prints used, of which
    ``member_known`` / ``printer_known`` had a known duration and ``member_bounds`` /
    ``printer_bounds`` only an upper bound (at most :data:`BOUND_FACTOR` × the estimate);
    ``skipped_bounds`` counts the bounds left out for being above that."""

    minutes: int | None
    member_ratio: float | None
    member_prints: int
    printer_medians: dict[str, float]
    printer_prints: int
    member_known: int = 0
    member_bounds: int = 0
    printer_known: int = 0
    printer_bounds: int = 0
    skipped_bounds: int = 0


def _usable_minutes(ticket: Ticket) -> tuple[int | None, bool]:
    """(minutes to learn from, whether they are known) for a closed ticket."""
    if ticket.actual_minutes:
        return ticket.actual_minutes, True
    if ticket.bound_minutes and ticket.bound_minutes <= BOUND_FACTOR * ticket.est_minutes:
        return ticket.bound_minutes, False
    return None, False


@attrs.frozen
class StatusPage:
    """What ``/status`` shows: ``printers``; ``placements`` of the held and printing
    tickets and the first queued ones, FIFO; ``waiting`` counts every queued ticket."""

    printers: list[Printer]
    placements: list[Placement]
    waiting: int


@attrs.frozen
class SweepReport:
    offered: int = 0
    missed: int = 0
    expired: int = 0


_P = ParamSpec("_P")
_R = TypeVar("_R")


def _once_more_on_conflict(command: Callable[_P, _R]) -> Callable[_P, _R]:
    """A member command runs once more when another change (the sweep, another member)
    won the compare-and-set between its read and its write: nothing of the first try was
    stored, and the second re-reads everything, so the member gets the right answer —
    done, or the refusal the new state calls for — rather than "changed by someone else"
    (4 % of closes under bench/load.py). Raises ConcurrentChangeError when it loses twice.
    """

    @functools.wraps(command)
    def run(*args: _P.args, **kwargs: _P.kwargs) -> _R:
        try:
            return command(*args, **kwargs)
        except ConcurrentChangeError:
            return command(*args, **kwargs)

    return run


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment is not None else None


def _check_estimate(est: timedelta) -> None:
    if not timedelta(minutes=1) <= est <= timedelta(days=7):
        raise ValidationError("The estimate must be between 1 minute and 7 days.",
                              {"est_time": "Between 1 minute and 7 days."},
                              reason="estimate_out_of_range")


def _minutes(delta: timedelta) -> int:
    return max(1, round(delta.total_seconds() / 60))


@attrs.define
class QueueService:
    uow: Callable[[], QueueUnitOfWork]
    clock: Clock
    access: AccessHours = attrs.Factory(AccessHours.always)
    policy: QueuePolicy = attrs.Factory(QueuePolicy)

    # --- configuration ---------------------------------------------------------------

    def sync_printers(self, printers: Iterable[tuple[str, str]]) -> list[Printer]:
        """Add configured printers (name, label) that are missing; update labels."""
        with self.uow() as uow:
            known = {p.name: p for p in uow.printers.list()}
            for name, label in printers:
                if name not in known:
                    uow.printers.add(Printer(name=name, label=label))
                elif known[name].label != label:
                    known[name].label = label
                    uow.printers.update(known[name])
            uow.commit()
            return uow.printers.list()

    # --- member commands --------------------------------------------------------------

    @_once_more_on_conflict
    def join(self, member: str, member_name: str, job_name: str, est: timedelta) -> Placement:
        """Queue a ticket. Raises ValidationError (bad name/estimate, already queued)."""
        job_name = " ".join(job_name.split())[:100]
        if not job_name:
            raise ValidationError("Name the job you want to print.", {"job": "Required."},
                                  reason="job_name_required")
        _check_estimate(est)
        now = self.clock.now()
        with self.uow() as uow:
            mine = uow.tickets.for_member(member, open_only=True)
            if len(mine) >= self.policy.max_open_tickets:
                raise ValidationError(
                    f"You are already in the queue with ticket #{mine[0].id} "
                    f"({mine[0].job_name}, {mine[0].status}); cancel it or change its "
                    "estimate instead.",
                    {"member": "Already queued."}, reason="already_queued",
                    details={"ticket": mine[0].id, "job": mine[0].job_name,
                             "status": mine[0].status})
            last = uow.tickets.last_queue_key()
            # Unique, increasing keys: a later joiner is always behind (ties impossible).
            key = now.timestamp() if last is None else max(now.timestamp(), last + 1.0)
            ticket = Ticket(member=member, member_name=member_name, job_name=job_name,
                            est_minutes=_minutes(est), created_at=now, queue_key=key)
            uow.tickets.add(ticket)
            self._log(uow, ticket, "join", member_name, now, {"est_minutes": ticket.est_minutes})
            self._pump(uow, now)
            uow.commit()
            placement = self._placement(uow, ticket.id or 0, now)
        return placement

    @_once_more_on_conflict
    def claim(self, member: str, printer_name: str) -> Ticket:
        now = self.clock.now()
        with self.uow() as uow:
            printer = uow.printers.get(printer_name)
            ticket = self._open_ticket(uow, member)
            if ticket.status == "offered" and ticket.printer != printer.name:
                raise InvalidTransitionError("claim", ticket.status,
                    f"{ticket.printer} was offered to you, not {printer.name}: claim "
                    f"{ticket.printer}.", reason="offered_other_printer",
                    details={"offered": ticket.printer, "asked": printer.name})
            if (ticket.status == "offered" and printer.claim_deadline is not None
                    and now >= printer.claim_deadline):
                # The window has ended even if the sweep has not run yet: same answer.
                raise InvalidTransitionError("claim", ticket.status,
                    "Your claim window has ended; the printer goes to the next member and "
                    "you stay in the queue just behind them.", reason="claim_window_ended",
                    details={"printer": printer.name})
            if ticket.status == "queued":
                if printer.status != "idle":
                    raise InvalidTransitionError("claim", printer.status,
                        f"{printer.name} is {printer.status.replace('_', ' ')}; wait for an "
                        "offer.", reason="printer_busy",
                        details={"printer": printer.name, "printer_status": printer.status})
                position = uow.tickets.position(ticket)
                if position != 1:
                    raise InvalidTransitionError("claim", ticket.status,
                        f"It is not your turn yet: you are number {position} in the queue.",
                        reason="not_your_turn", details={"position": position})
                if not self.access.is_open(now):
                    opens = self.access.next_opening(now)
                    raise InvalidTransitionError("claim", "closed",
                        "The lab is closed; claims open again at "
                        f"{lab_time(opens, self.access.timezone)}.",
                        reason="lab_closed", details={"opens_at": opens})
            elif ticket.status != "offered":
                raise InvalidTransitionError("claim", ticket.status,
                    f"Your ticket is already {ticket.status} on {ticket.printer}.",
                    reason="already_holding",
                    details={"status": ticket.status, "printer": ticket.printer})
            fire_ticket(ticket, "claim")
            fire_printer(printer, "claim")
            ticket.claimed_at, ticket.misses, ticket.printer = now, 0, printer.name
            printer.holder_ticket, printer.holder = ticket.id, member
            printer.claim_deadline = None
            printer.start_deadline = self.access.add_open_time(now, self.policy.start_window)
            uow.printers.update(printer)
            uow.tickets.update(ticket)
            self._log(uow, ticket, "claim", ticket.member_name, now,
                      {"printer": printer.name, "start_by": printer.start_deadline.isoformat()})
            uow.commit()
        return ticket

    @_once_more_on_conflict
    def close(self, member: str, printer_name: str, outcome: str,
              photo_url: str | None = None, *, finished_at: datetime | None = None,
              took: timedelta | None = None) -> Ticket:
        """Close the previous print on a printer: ``finished`` or ``failed`` (photo needed).

        When the member says when it ended — ``finished_at`` (aware, any zone) or
        ``took`` (its duration from the start), at most one — the duration is known
        (``actual_minutes``); otherwise close − start is kept as an upper bound
        (``bound_minutes``). Raises ValidationError (``outcome_required``,
        ``photo_required``, ``end_given_twice``, ``finished_at_out_of_range``: the end
        must lie between the start and now), InvalidTransitionError, NotFoundError."""
        outcome = outcome.strip().lower()
        if outcome not in ("finished", "failed"):
            raise ValidationError("Say how the print ended: finished or failed.",
                                  {"outcome": "finished or failed"}, reason="outcome_required")
        if outcome == "failed" and not (photo_url or "").strip():
            raise ValidationError("Attach a photo of the failed print.",
                                  {"photo": "Required when the print failed."},
                                  reason="photo_required")
        if finished_at is not None and took is not None:
            raise ValidationError("Say when the print ended or how long it took, not both.",
                                  {"took": "Give finished_at or took."},
                                  reason="end_given_twice")
        now = self.clock.now()
        with self.uow() as uow:
            printer = uow.printers.get(printer_name)
            if printer.print_ticket is None:
                closed = self._closed_by_printer(uow, member, printer.name)
                if closed is not None:  # the printer closed it: never twice
                    if photo_url and not closed.photo_url and closed.outcome != "finished":
                        closed.photo_url = photo_url.strip()
                        uow.tickets.update(closed)
                        self._log(uow, closed, "photo_added", closed.member_name, now,
                                  {"printer": printer.name})
                        uow.commit()
                    return closed
                raise InvalidTransitionError("close", printer.status,
                    f"There is no open print on {printer.name} to close.",
                    reason="no_open_print", details={"printer": printer.name})
            if member not in (printer.print_member, printer.holder):
                raise InvalidTransitionError("close", printer.status,
                    f"Only the member who printed on {printer.name}, or whoever claimed it "
                    "now, can close its print.", reason="not_your_print",
                    details={"printer": printer.name})
            ticket = uow.tickets.get(printer.print_ticket)
            closer = ticket.member_name
            if member != ticket.member and printer.holder_ticket is not None:
                closer = uow.tickets.get(printer.holder_ticket).member_name
            ended: datetime | None = None
            if ticket.started_at is not None:
                if finished_at is not None:
                    ended = finished_at
                elif took is not None:
                    ended = ticket.started_at + took
                if ended is not None and not ticket.started_at <= ended <= now:
                    raise ValidationError(
                        "The print cannot have ended before it started or after now "
                        f"(it started {lab_time(ticket.started_at, self.access.timezone)}).",
                        {"finished_at": "Between the start and now."},
                        reason="finished_at_out_of_range",
                        details={"started_at": ticket.started_at, "closed_at": now})
            fire_ticket(ticket, "close")
            ticket.photo_url = (photo_url or "").strip() or None
            self._end_print(ticket, printer, outcome, now, ended,
                            "member" if ended is not None else None)
            uow.printers.update(printer)
            uow.tickets.update(ticket)
            self._log(uow, ticket, "close", closer, now,
                      {"printer": printer.name, "outcome": outcome,
                       "actual_minutes": ticket.actual_minutes,
                       "bound_minutes": ticket.bound_minutes,
                       "ended_at": ended.isoformat() if ended else None,
                       "closed_by": member})
            self._pump(uow, now)
            uow.commit()
        return ticket

    @_once_more_on_conflict
    def report_started(self, member: str) -> Ticket:
        """The member's print runs on the printer they claimed. On a watched printer that
        already reported it, the ticket is returned as it is (a start counts once)."""
        now = self.clock.now()
        with self.uow() as uow:
            ticket = self._open_ticket(uow, member)
            if (ticket.status == "printing" and ticket.printer is not None
                    and uow.printers.get(ticket.printer).print_key is not None):
                return ticket  # the printer reported it first
            if ticket.status != "claimed" or ticket.printer is None:
                raise InvalidTransitionError("start", ticket.status,
                    "Claim your printer first, then report that your print started.",
                    reason="claim_first", details={"status": ticket.status})
            printer = uow.printers.get(ticket.printer)
            if printer.has_open_print:
                raise InvalidTransitionError("start", printer.status,
                    f"Close the previous print on {printer.name} first (finished, or "
                    "failed with a photo).", reason="close_previous_first",
                    details={"printer": printer.name})
            if printer.start_deadline is not None and now >= printer.start_deadline:
                raise InvalidTransitionError("start", ticket.status,
                    "Your start window has ended; the printer goes to the next member.",
                    reason="start_window_ended", details={"printer": printer.name})
            self._start(ticket, printer, now)
            uow.printers.update(printer)
            uow.tickets.update(ticket)
            self._log(uow, ticket, "start", ticket.member_name, now,
                      {"printer": printer.name,
                       "predicted_end": _iso(printer.predicted_end)})
            uow.commit()
        return ticket

    @_once_more_on_conflict
    def notdone(self, member: str, remaining: timedelta | None = None) -> Ticket:
        """The previous print on my claimed printer is still running: its predicted end
        moves to now + ``remaining`` (default ``policy.notdone_default``). Raises
        ValidationError for a remaining time outside 1 minute to 7 days."""
        if remaining is None:
            remaining = self.policy.notdone_default
        elif not timedelta(minutes=1) <= remaining <= timedelta(days=7):
            raise ValidationError("The remaining time must be between 1 minute and 7 days.",
                                  {"remaining": "Between 1 minute and 7 days."},
                                  reason="remaining_out_of_range")
        now = self.clock.now()
        with self.uow() as uow:
            ticket = self._open_ticket(uow, member)
            if ticket.status != "claimed" or ticket.printer is None:
                raise InvalidTransitionError("notdone", ticket.status,
                    "Saying the previous print is not done is for the member who claimed a "
                    "printer whose previous print is still running.",
                    reason="notdone_not_claimed", details={"status": ticket.status})
            printer = uow.printers.get(ticket.printer)
            if not printer.has_open_print:
                raise InvalidTransitionError("notdone", printer.status,
                    f"No previous print is open on {printer.name}: report your print "
                    "started, or cancel.", reason="notdone_nothing_running",
                    details={"printer": printer.name})
            printer.predicted_end = now + remaining
            printer.offer_not_before = printer.predicted_end
            fire_printer(printer, "release")
            fire_ticket(ticket, "release")
            printer.holder_ticket = printer.holder = None
            printer.start_deadline = None
            ticket.printer = None
            uow.printers.update(printer)
            uow.tickets.update(ticket)
            self._log(uow, ticket, "notdone", ticket.member_name, now,
                      {"printer": printer.name,
                       "predicted_end": printer.predicted_end.isoformat()})
            self._pump(uow, now)
            uow.commit()
        return ticket

    @_once_more_on_conflict
    def cancel(self, member: str, actor: Actor | None = None) -> Ticket:
        now = self.clock.now()
        with self.uow() as uow:
            ticket = self._open_ticket(uow, member)
            self._cancel(uow, ticket, now, actor)
            self._pump(uow, now)
            uow.commit()
        return ticket

    @_once_more_on_conflict
    def update_time(self, member: str, est: timedelta) -> Placement:
        _check_estimate(est)
        now = self.clock.now()
        with self.uow() as uow:
            ticket = self._open_ticket(uow, member)
            ticket.est_minutes = _minutes(est)
            uow.tickets.update(ticket)
            if ticket.status == "printing" and ticket.printer and ticket.started_at:
                printer = uow.printers.get(ticket.printer)
                printer.predicted_end = ticket.started_at + est
                uow.printers.update(printer)
            self._log(uow, ticket, "update_time", ticket.member_name, now,
                      {"est_minutes": ticket.est_minutes})
            uow.commit()
            return self._placement(uow, ticket.id or 0, now)

    # --- queries ----------------------------------------------------------------------

    def status(self) -> tuple[list[Printer], list[Placement]]:
        """Every printer and every open ticket's placement (FIFO order)."""
        page = self.status_page(None)
        return page.printers, page.placements

    def status_page(self, queued_limit: int | None = 15) -> StatusPage:
        """The printers, the held and printing tickets and the first ``queued_limit``
        queued ones (all when None) with positions and ETAs, and how many are waiting.
        Reads the full rows of what is shown only; the ETAs come from the light queue
        line."""
        now = self.clock.now()
        with self.uow() as uow:
            printers = uow.printers.list()
            line = uow.tickets.queue_line()
            shown = (uow.tickets.open_tickets() if queued_limit is None
                     else uow.tickets.open_tickets_page(queued_limit))
        last_shown = next((t.id for t in reversed(shown) if t.status == "queued"), None)
        etas = self._etas(printers, line, now,
                          until=None if queued_limit is None else last_shown)
        positions: dict[int, int] = {}
        for slot in line:
            if slot.status == "queued":
                positions[slot.id] = len(positions) + 1
        return StatusPage(printers, [
            Placement(t, positions.get(t.id or 0, 0), etas.get(t.id or 0)) for t in shown
        ], waiting=len(positions))

    def printers(self) -> list[Printer]:
        """Every printer, by name (one read; no tickets)."""
        with self.uow() as uow:
            return uow.printers.list()

    def myjobs(self, member: str) -> list[Ticket]:
        with self.uow() as uow:
            return uow.tickets.for_member(member)

    def placement(self, member: str) -> Placement:
        now = self.clock.now()
        with self.uow() as uow:
            ticket = self._open_ticket(uow, member)
            return self._placement(uow, ticket.id or 0, now)

    def history(self, limit: int = 20) -> list[Ticket]:
        with self.uow() as uow:
            return uow.tickets.closed(limit)

    def predict(self, member: str, est: timedelta | None = None) -> Prediction:
        """Suggest a time from history: the member's median ratio of actual to estimated
        time applied to ``est``, and each printer's median minutes, over finished prints.
        Known durations count; an upper bound (nobody said when the print ended) counts
        only while it is at most :data:`BOUND_FACTOR` × its estimate."""
        with self.uow() as uow:
            closed = [t for t in uow.tickets.closed() if t.outcome == "finished"]
        ratios: list[float] = []
        member_known = member_bounds = printer_known = printer_bounds = skipped = 0
        per_printer: dict[str, list[int]] = {}
        for t in closed:
            used, known = _usable_minutes(t)
            if used is None:
                skipped += t.bound_minutes is not None and t.actual_minutes is None
                continue
            if t.member == member and t.est_minutes:
                ratios.append(used / t.est_minutes)
                member_known += known
                member_bounds += not known
            if t.printer:
                per_printer.setdefault(t.printer, []).append(used)
                printer_known += known
                printer_bounds += not known
        ratio = statistics.median(ratios) if ratios else None
        minutes = None
        if est is not None:
            minutes = _minutes(est * (ratio if ratio is not None else 1.0))
        return Prediction(minutes, ratio, len(ratios),
                          {k: float(statistics.median(v)) for k, v in per_printer.items()},
                          sum(len(v) for v in per_printer.values()),
                          member_known=member_known, member_bounds=member_bounds,
                          printer_known=printer_known, printer_bounds=printer_bounds,
                          skipped_bounds=skipped)

    # --- the sweep --------------------------------------------------------------------

    def sweep(self, now: datetime | None = None) -> SweepReport:
        """Fire every due deadline and offer. Idempotent: a second run at the same time
        finds nothing due.

        The outcome depends only on the join order, the deadlines and the missed-window
        rule, never on when or how often the sweep runs (see :mod:`printcore.queue.sweep`:
        what became due is taken in time order, windows lapsing together in queue order,
        and the free printers are offered in queue order after each). Offers are made at
        ``now`` (their claim window counts from when the member is told), so a sweep that
        runs late costs nobody a window they were never shown. Reads the printers and the
        open tickets once and writes each changed row once.
        """
        now = now or self.clock.now()
        with self.uow() as uow:
            plan = SweepPlan(uow.printers.list(), uow.tickets.open_tickets(),
                             uow.tickets.get)
            plan.run(now, self.access.is_open(now),
                     lambda at: self.access.add_open_time(at, self.policy.claim_window))
            uow.printers.update_many(plan.changed_printers())
            uow.tickets.update_many(plan.changed_tickets())
            events: list[Event] = []
            notices: list[OutboxMessage] = []
            told_at = min(now, self.clock.now())  # due at once, as in _notify
            system = Actor.system("printcore")  # frozen: one for every event
            for kind, ticket, printer in plan.log:
                details: dict[str, Any] = {"member": ticket.member, "printer": printer.name}
                deadline = None
                if kind == "offer":
                    deadline = printer.claim_deadline
                    assert deadline is not None
                    details["claim_by"] = deadline.isoformat()
                events.append(Event("ticket", ticket.id or 0, kind, system, now,
                                    details=details))
                notices.append(queue_notice_message(
                    QueueNotice("offered" if kind == "offer" else kind, ticket.member,
                                ticket.member_name, ticket.id or 0, printer.name, deadline),
                    told_at))
            uow.events.append_many(events)
            uow.outbox.add_many(notices)
            uow.commit()
        return SweepReport(offered=plan.offered, missed=plan.missed, expired=plan.expired)

    # --- printers that report for themselves (issue 15) -------------------------------

    def printer_reported(self, report: PrinterReport) -> str:
        """Apply what a watched printer reported (``printcore.queue.printer_status``) and
        say what it did: ``"live"`` (only its live state changed), ``"started"`` (it met
        the holder's start window), ``"adopted"`` (a print the member had reported),
        ``"unclaimed"`` (a print nobody claimed: recorded for staff, the printer is not
        offered while it runs), ``"closed"`` (the open print closed with the printer's
        end time and outcome), ``"ended_unclaimed"``, ``"moved"`` (the predicted end
        moved with the remaining time), ``"repeat"`` (this change was applied before).

        Rules (docs/printers.md): ``started`` within a claim's start window counts as the
        member's start, once, whoever reports first; ``finished``/``failed``/
        ``cancelled`` close the open print with ``report.at`` as its end (a known
        duration) and offer the printer to the next member; the member of a failed print
        is asked for the photo afterwards. ``progress`` moves the predicted end to
        ``at`` + the remaining minutes. ``idle`` with no open print lets the printer be
        offered. Raises NotFoundError for a printer the queue does not know.
        """
        now = self.clock.now()
        with self.uow() as uow:
            printer = uow.printers.get(report.printer)
            was_printing = printer.live_state in ("RUNNING", "PAUSE")
            was_decile = None if printer.live_percent is None else printer.live_percent // 10
            live = report.live
            printer.live_state, printer.live_at = live.state, live.reported_at
            printer.live_percent, printer.live_layer = live.percent, live.layer
            printer.live_total_layers = live.total_layers
            printer.live_remaining_minutes = live.remaining_minutes
            printer.live_file, printer.live_error = live.file, live.error_code
            outcome = self._apply_report(uow, printer, report, now, was_printing)
            uow.printers.update(printer)
            decile = None if live.percent is None else live.percent // 10
            if report.kind != "progress" or decile != was_decile:
                # What staff pages follow (their live updates read the event log): every
                # change of state, and progress in steps of 10 %, not every message.
                uow.events.append(Event("printer", printer.id or 0, "reported",
                                        Actor.system("printer"), now, details={
                                            "printer": printer.name, "report": report.kind,
                                            "state": live.state, "percent": live.percent,
                                            "layer": live.layer,
                                            "remaining_minutes": live.remaining_minutes,
                                            "file": live.file, "outcome": outcome}))
            if outcome in ("closed", "ended_unclaimed") or report.kind == "idle":
                self._pump(uow, now)
            uow.commit()
        return outcome

    def _apply_report(self, uow: QueueUnitOfWork, printer: Printer, report: PrinterReport,
                      now: datetime, was_printing: bool) -> str:
        key, at = report.print_key, report.at
        source = Actor.system("printer")
        if report.kind == "started":
            if key is not None and key in (printer.print_key, printer.last_print_key):
                return "repeat"
            if printer.print_ticket is not None and printer.print_key is None and (
                    printer.holder_ticket is None or was_printing):
                # The member said "started" first (or the print on the bed kept running
                # while the next member claimed): this is that print; it counts once.
                printer.print_key = key
                self._move_end(printer, report)
                return "adopted"
            if printer.status == "claimed" and printer.holder_ticket is not None and (
                    printer.start_deadline is None or at < printer.start_deadline):
                ticket = uow.tickets.get(printer.holder_ticket)
                if printer.has_open_print:  # a new print runs: the old one is off the bed
                    self._close_by_printer(uow, printer, "finished", None, now)
                self._start(ticket, printer, at)
                printer.print_key = key
                self._move_end(printer, report)
                uow.tickets.update(ticket)
                self._log(uow, ticket, "start", "printer", now,
                          {"printer": printer.name, "source": "printer",
                           "started_at": at.isoformat(),
                           "predicted_end": _iso(printer.predicted_end)}, system=True)
                self._notify(uow, QueueNotice("print_started", ticket.member,
                                              ticket.member_name, ticket.id or 0,
                                              printer.name, printer.predicted_end), now)
                return "started"
            if printer.unclaimed_since is None:
                printer.unclaimed_since, printer.print_key = at, key
                uow.events.append(Event("printer", printer.id or 0, "unclaimed_print", source,
                                        now, details={"printer": printer.name,
                                                      "file": report.live.file,
                                                      "started_at": at.isoformat()}))
                return "unclaimed"
            return "repeat"
        if report.kind in ("finished", "failed", "cancelled"):
            if key is not None and key == printer.last_print_key:
                return "repeat"
            if printer.print_ticket is not None and (
                    key is None or printer.print_key in (None, key)):
                printer.print_key = key or printer.print_key
                self._close_by_printer(uow, printer, report.kind, at, now)
                return "closed"
            if printer.unclaimed_since is not None:
                printer.unclaimed_since = None
                printer.last_print_key, printer.print_key = key or printer.print_key, None
                uow.events.append(Event("printer", printer.id or 0, "unclaimed_print_ended",
                                        source, now, details={"printer": printer.name,
                                                              "outcome": report.kind,
                                                              "ended_at": at.isoformat()}))
                return "ended_unclaimed"
            return "repeat"
        if report.kind == "progress":
            if printer.print_ticket is not None and self._move_end(printer, report):
                return "moved"
            return "live"
        if report.kind == "idle" and printer.unclaimed_since is not None:
            printer.unclaimed_since = None  # whatever ran is over
            printer.last_print_key, printer.print_key = printer.print_key, None
        return "live"

    @staticmethod
    def _move_end(printer: Printer, report: PrinterReport) -> bool:
        """The printer's remaining time moves the predicted end; True when it moved."""
        remaining = report.live.remaining_minutes
        if remaining is None or printer.print_ticket is None:
            return False
        end = report.at + timedelta(minutes=max(0, remaining))
        moved = printer.predicted_end != end
        printer.predicted_end = end
        return moved

    def _close_by_printer(self, uow: QueueUnitOfWork, printer: Printer, kind: str,
                          ended: datetime | None, now: datetime) -> None:
        """Close the open print as the printer says (``ended`` None: a new print replaced
        it unseen, the end is a bound). Asks the member of a failed print for a photo."""
        assert printer.print_ticket is not None
        ticket = uow.tickets.get(printer.print_ticket)
        if ended is not None and ticket.started_at is not None:
            ended = max(ended, ticket.started_at)
        fire_ticket(ticket, "close")
        self._end_print(ticket, printer, kind, now, ended,
                        "printer" if ended is not None else None)
        uow.tickets.update(ticket)
        self._log(uow, ticket, "close", "printer", now,
                  {"printer": printer.name, "outcome": kind, "source": "printer",
                   "actual_minutes": ticket.actual_minutes,
                   "bound_minutes": ticket.bound_minutes, "ended_at": _iso(ended),
                   "closed_by": "printer"}, system=True)
        self._notify(uow, QueueNotice(f"print_{kind}", ticket.member, ticket.member_name,
                                      ticket.id or 0, printer.name, None), now)

    @staticmethod
    def _start(ticket: Ticket, printer: Printer, at: datetime) -> None:
        """The holder's print runs from ``at``: the ticket and printer move to printing."""
        fire_ticket(ticket, "start")
        fire_printer(printer, "start")
        ticket.started_at = at
        printer.holder_ticket = printer.holder = None
        printer.start_deadline = None
        printer.print_ticket, printer.print_member = ticket.id, ticket.member
        printer.started_at = at
        printer.unclaimed_since = None
        printer.predicted_end = at + timedelta(minutes=ticket.est_minutes)

    # --- staff ------------------------------------------------------------------------

    def remove_ticket(self, ticket_id: int, actor: Actor) -> Ticket:
        now = self.clock.now()
        with self.uow() as uow:
            ticket = uow.tickets.get(ticket_id)
            self._cancel(uow, ticket, now, actor)
            self._pump(uow, now)
            uow.commit()
        return ticket

    def release_printer(self, printer_name: str, actor: Actor) -> Printer:
        """Staff: free a printer. A member holding it (offered or claimed) goes back to the
        head of the queue without a miss; otherwise an unclosed previous print is closed as
        ``finished`` by staff. Raises InvalidTransitionError when there is nothing to
        release, NotFoundError for an unknown printer."""
        now = self.clock.now()
        with self.uow() as uow:
            printer = uow.printers.get(printer_name)
            if printer.holder_ticket is not None:
                ticket = uow.tickets.get(printer.holder_ticket)
                if ticket.status == "offered":
                    fire_ticket(ticket, "miss")
                else:
                    fire_ticket(ticket, "release")
                ticket.printer = None
                uow.tickets.update(ticket)
                self._log_release(uow, ticket, printer.name, actor, now)
                fire_printer(printer, "lapse" if printer.status == "offered" else "release")
                printer.holder_ticket = printer.holder = None
                printer.claim_deadline = printer.start_deadline = None
                what = {"printer": printer.name, "released_ticket": ticket.id}
            elif printer.print_ticket is not None:
                ticket = uow.tickets.get(printer.print_ticket)
                fire_ticket(ticket, "close")
                self._end_print(ticket, printer, "finished", now, None, None)
                uow.tickets.update(ticket)
                uow.events.append(Event("ticket", ticket.id or 0, "close", actor, now,
                                        details={"member": ticket.member,
                                                 "printer": printer.name,
                                                 "outcome": "finished",
                                                 "bound_minutes": ticket.bound_minutes,
                                                 "closed_by": actor.name}))
                what = {"printer": printer.name, "closed_ticket": ticket.id}
            elif printer.unclaimed_since is not None:
                printer.unclaimed_since = None  # staff saw to the print nobody claimed
                printer.last_print_key, printer.print_key = printer.print_key, None
                what = {"printer": printer.name, "unclaimed_print": True}
            else:
                raise InvalidTransitionError("release", printer.status,
                    f"{printer.name} has no holder and no open print: nothing to release.",
                    reason="nothing_to_release", details={"printer": printer.name})
            uow.printers.update(printer)
            uow.events.append(Event("printer", printer.id or 0, "release", actor, now,
                                    details=what))
            self._pump(uow, now)
            uow.commit()
        return printer

    def set_in_service(self, printer_name: str, in_service: bool, actor: Actor) -> Printer:
        """Take a printer out of service (its holder goes back to the queue head) or back."""
        now = self.clock.now()
        with self.uow() as uow:
            printer = uow.printers.get(printer_name)
            if not in_service and printer.holder_ticket is not None:
                ticket = uow.tickets.get(printer.holder_ticket)
                fire_ticket(ticket, "miss" if ticket.status == "offered" else "release")
                ticket.printer = None
                uow.tickets.update(ticket)
                self._log_release(uow, ticket, printer.name, actor, now)
            fire_printer(printer, "put_back" if in_service else "take_out")
            printer.holder_ticket = printer.holder = None
            printer.claim_deadline = printer.start_deadline = None
            uow.printers.update(printer)
            uow.events.append(Event("printer", printer.id or 0,
                                    "put_back" if in_service else "take_out", actor, now,
                                    details={"printer": printer.name}))
            self._pump(uow, now)
            uow.commit()
        return printer

    # --- internals --------------------------------------------------------------------

    @staticmethod
    def _closed_by_printer(uow: QueueUnitOfWork, member: str, printer: str) -> Ticket | None:
        """The member's last ticket, when the printer itself closed it on ``printer``."""
        mine = uow.tickets.for_member(member)
        if mine and mine[0].printer == printer and mine[0].status == "done" and (
                mine[0].ended_by == "printer"):
            return mine[0]
        return None

    @staticmethod
    def _end_print(ticket: Ticket, printer: Printer, outcome: str, now: datetime,
                   ended: datetime | None, ended_by: str | None) -> None:
        """Close ``ticket``'s print on ``printer`` (the ticket's event already fired):
        a known end gives ``actual_minutes``, else close − start is ``bound_minutes``."""
        ticket.closed_at, ticket.outcome = now, outcome
        ticket.ended_at, ticket.ended_by = ended, ended_by
        if ticket.started_at is not None:
            if ended is not None:
                ticket.actual_minutes, ticket.bound_minutes = (
                    _minutes(ended - ticket.started_at), None)
            else:
                ticket.actual_minutes, ticket.bound_minutes = (
                    None, _minutes(now - ticket.started_at))
        if printer.status == "printing":
            fire_printer(printer, "finish")
        printer.last_print_key = printer.print_key or printer.last_print_key
        printer.print_ticket = printer.print_member = printer.print_key = None
        printer.started_at = printer.predicted_end = printer.offer_not_before = None

    @staticmethod
    def _open_ticket(uow: QueueUnitOfWork, member: str) -> Ticket:
        mine = uow.tickets.for_member(member, open_only=True)
        if not mine:
            raise NotFoundError("You have no ticket in the queue; join it first.",
                                reason="no_ticket")
        return mine[0]

    def _cancel(self, uow: QueueUnitOfWork, ticket: Ticket, now: datetime,
                actor: Actor | None) -> None:
        if ticket.status == "printing":
            raise InvalidTransitionError("cancel", ticket.status,
                "Your print has started; close it when it ends.", reason="print_started",
                details={"printer": ticket.printer})
        if ticket.printer is not None and ticket.status in ("offered", "claimed"):
            printer = uow.printers.get(ticket.printer)
            if printer.holder_ticket == ticket.id:
                fire_printer(printer, "lapse" if printer.status == "offered" else "release")
                printer.holder_ticket = printer.holder = None
                printer.claim_deadline = printer.start_deadline = None
                uow.printers.update(printer)
        fire_ticket(ticket, "cancel")
        uow.tickets.update(ticket)
        who = actor or Actor("member", ticket.member_name)
        uow.events.append(Event("ticket", ticket.id or 0, "cancel", who, now,
                                details={"member": ticket.member}))

    def _pump(self, uow: QueueUnitOfWork, now: datetime) -> int:
        """Offer every available printer to the next queued member (lab open only)."""
        if not self.access.is_open(now):
            return 0
        free = [p for p in uow.printers.list()
                if (since := free_at(p)) is not None and since <= now]
        if not free:  # the common case: no need to read the queue
            return 0
        queued = [t for t in uow.tickets.open_tickets() if t.status == "queued"]
        offered = 0
        for printer in free:
            if not queued:
                break
            ticket = queued.pop(0)
            fire_ticket(ticket, "offer")
            fire_printer(printer, "offer")
            ticket.printer, ticket.offered_at = printer.name, now
            printer.holder_ticket, printer.holder = ticket.id, ticket.member
            printer.claim_deadline = self.access.add_open_time(now, self.policy.claim_window)
            printer.offer_not_before = None
            uow.printers.update(printer)
            uow.tickets.update(ticket)
            self._log(uow, ticket, "offer", "printcore", now,
                      {"printer": printer.name,
                       "claim_by": printer.claim_deadline.isoformat()}, system=True)
            self._notify(uow, QueueNotice("offered", ticket.member, ticket.member_name,
                                          ticket.id or 0, printer.name,
                                          printer.claim_deadline), now)
            offered += 1
        return offered

    def _etas(self, printers: list[Printer], line: Sequence[QueueSlot | Ticket],
              now: datetime, until: int | None = None) -> dict[int, datetime]:
        """Simulate the FIFO queue over the printers' predicted free times and access
        hours: each queued ticket starts on the earliest free printer, at the next opening.
        ``line``: the open tickets in FIFO order (slots or tickets); the simulation stops
        after ticket ``until`` when given. Runs on POSIX timestamps (no datetime objects
        in the loop): 10,000 tickets over 10 printers take a few milliseconds."""
        estimate = {t.id: t.est_minutes for t in line}
        etas: dict[int, float] = {}
        heap: list[tuple[float, str]] = []
        now_ts = now.timestamp()
        for p in printers:
            if p.print_ticket is not None and p.started_at is not None:
                etas[p.print_ticket] = p.started_at.timestamp()
            if p.status == "out_of_service":
                continue
            free = now_ts
            if p.has_open_print and p.predicted_end is not None:
                free = max(now_ts, p.predicted_end.timestamp())
            if p.unclaimed_since is not None:  # busy with a print nobody claimed
                if p.live_remaining_minutes is None:
                    continue  # no known end: it gives nobody a start time
                reported = p.live_at.timestamp() if p.live_at is not None else now_ts
                free = max(free, reported + 60.0 * p.live_remaining_minutes)
            if p.holder_ticket is not None and p.holder_ticket in estimate:
                start = self.access.next_opening_ts(free)
                etas[p.holder_ticket] = start
                free = start + 60.0 * estimate[p.holder_ticket]
            heapq.heappush(heap, (free, p.name))
        if heap:
            opening = self.access.next_opening_ts
            push, pop = heapq.heappush, heapq.heappop
            for t in line:
                if t.status != "queued":
                    continue
                free_ts, name = pop(heap)
                start = opening(free_ts)
                etas[t.id or 0] = start
                push(heap, (start + 60.0 * t.est_minutes, name))
                if t.id == until:
                    break
        return {k: datetime.fromtimestamp(v, UTC) for k, v in etas.items()}

    def _placement(self, uow: QueueUnitOfWork, ticket_id: int, now: datetime) -> Placement:
        """The ticket's place: one count for its position, the light queue line for its
        ETA (no full read of the open tickets)."""
        ticket = uow.tickets.get(ticket_id)
        position = uow.tickets.position(ticket) if ticket.status == "queued" else 0
        etas = self._etas(uow.printers.list(), uow.tickets.queue_line(), now, until=ticket_id)
        return Placement(ticket, position, etas.get(ticket_id))

    def _notify(self, uow: QueueUnitOfWork, notice: QueueNotice, now: datetime) -> None:
        """Tell the member, through the outbox: the row commits (or rolls back) with the
        change that causes it. It is due at once, even for a sweep run "as if" at a later
        ``now`` (``printcore queue sweep --at``)."""
        uow.outbox.add(queue_notice_message(notice, min(now, self.clock.now())))

    @staticmethod
    def _log_release(uow: QueueUnitOfWork, ticket: Ticket, printer: str, actor: Actor,
                     now: datetime) -> None:
        """Staff took the printer from its holder: the ticket's own history says so."""
        uow.events.append(Event("ticket", ticket.id or 0, "release", actor, now,
                                details={"member": ticket.member, "printer": printer}))

    @staticmethod
    def _log(uow: QueueUnitOfWork, ticket: Ticket, kind: str, who: str, now: datetime,
             details: dict[str, Any], system: bool = False) -> None:
        actor = Actor.system(who) if system else Actor("member", who)
        uow.events.append(Event("ticket", ticket.id or 0, kind, actor, now,
                                details={"member": ticket.member, **details}))
