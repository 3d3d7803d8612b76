"""One sweep of the queue, planned in memory: what became due is taken in time order and
the free printers are offered in queue order after each (issue 14).

The plan reads the printers and the open tickets once, keeps the FIFO order in two sorted
lists (waiting: queued, offered and claimed tickets; queued: those a printer may be
offered to), and changes the entities in place; the service then writes each changed row
once and the events and notices in :attr:`SweepPlan.log` order. Cost: O(n log n) for n
printers and tickets, plus a memory move per missed window.

Order, so that the outcome depends only on the join order, the deadlines and the
missed-window rule, never on when or how often the sweep runs:

* a printer that went free (its predicted end or ``offer_not_before`` passed) at or before
  a deadline is offered before that deadline lapses;
* windows lapsing at one instant lapse in queue order;
* after each, every free printer is offered, by name, to the head of the queue.
"""

from __future__ import annotations

import bisect
import heapq
from collections.abc import Callable
from datetime import UTC, datetime

import attrs

from printcore.errors import ConcurrentChangeError
from printcore.queue.entities import Printer, Ticket
from printcore.queue.machines import fire_printer, fire_ticket

__all__ = ["SweepPlan", "due_deadline", "free_at"]

_Key = tuple[float, int]
_EVER = datetime.min.replace(tzinfo=UTC)


def due_deadline(printer: Printer, now: datetime) -> datetime | None:
    """The printer's claim deadline (offered) or start deadline (claimed) when it is at or
    before ``now`` (UTC), else None."""
    if printer.holder_ticket is None:
        return None
    deadline = (printer.claim_deadline if printer.status == "offered" else
                printer.start_deadline if printer.status == "claimed" else None)
    return deadline if deadline is not None and deadline <= now else None


def free_at(printer: Printer) -> datetime | None:
    """Since when (UTC) the printer may be offered, or None when it may not: an idle one
    since ever, a printing one from its predicted end; neither before
    ``offer_not_before``, nor while it reports a print nobody claimed."""
    if printer.unclaimed_since is not None:
        return None  # the printer reports a print nobody claimed: it is busy
    if printer.status == "idle":
        since = _EVER
    elif printer.status == "printing" and printer.predicted_end is not None:
        since = printer.predicted_end
    else:
        return None
    return since if printer.offer_not_before is None else max(since, printer.offer_not_before)


@attrs.define
class SweepPlan:
    """``printers``: every printer; ``tickets``: the open tickets in FIFO order (as
    ``TicketRepository.open_tickets`` gives them); ``extra``: reads a ticket a printer
    holds that is not among them (a store out of step; normally never called).

    After :meth:`run`: ``log`` holds ``(kind, ticket, printer)`` with kind ``missed``,
    ``expired`` or ``offer``, in the order they happened; :meth:`changed_printers` and
    :meth:`changed_tickets` the entities to write (each once)."""

    printers: list[Printer]
    tickets: list[Ticket]
    extra: Callable[[int], Ticket]
    log: list[tuple[str, Ticket, Printer]] = attrs.Factory(list)
    missed: int = 0
    expired: int = 0
    offered: int = 0
    _by_id: dict[int, Ticket] = attrs.Factory(dict)
    _changed_p: dict[str, Printer] = attrs.Factory(dict)
    _changed_t: dict[int, Ticket] = attrs.Factory(dict)
    _waiting: list[_Key] = attrs.Factory(list)
    _queued: list[_Key] = attrs.Factory(list)
    _head: int = 0

    def run(self, now: datetime, lab_open: bool,
            claim_deadline: Callable[[datetime], datetime]) -> None:
        """Fire what is due at ``now`` (UTC). Offers are made only when ``lab_open``, at
        ``now``, with the claim deadline ``claim_deadline(now)``. Raises
        ConcurrentChangeError when a printer and its holder ticket disagree (read on
        either side of another change's commit)."""
        self._by_id = {t.id or 0: t for t in self.tickets}
        self._rebuild()
        due: list[tuple[datetime, int, _Key, str]] = []
        for p in self.printers:
            deadline = due_deadline(p, now)
            if deadline is not None:
                holder = self._ticket(p.holder_ticket or 0)
                due.append((deadline, 1, (holder.queue_key, holder.id or 0), p.name))
            elif (since := free_at(p)) is not None and since <= now:
                due.append((since, 0, (0.0, 0), p.name))
        due.sort()
        by_name = {p.name: p for p in self.printers}
        available: list[str] = []
        for _, is_deadline, _, name in due:
            if is_deadline:
                self._lapse(by_name[name])
                since = free_at(by_name[name])
                if since is None or since > now:
                    continue  # busy after all (a print nobody claimed, a later end)
            heapq.heappush(available, name)
            if lab_open:
                while available and self._head < len(self._queued):
                    self._offer(by_name[heapq.heappop(available)], now, claim_deadline(now))

    def changed_printers(self) -> list[Printer]:
        return list(self._changed_p.values())

    def changed_tickets(self) -> list[Ticket]:
        return list(self._changed_t.values())

    # --- steps ------------------------------------------------------------------------

    def _ticket(self, ticket_id: int) -> Ticket:
        found = self._by_id.get(ticket_id)
        if found is None:
            found = self._by_id[ticket_id] = self.extra(ticket_id)
        return found

    def _rebuild(self, leave_out: int | None = None) -> None:
        waiting = [t for t in self._by_id.values() if t.id != leave_out
                   and t.status in ("queued", "offered", "claimed")]
        self._waiting = sorted((t.queue_key, t.id or 0) for t in waiting)
        self._queued = sorted((t.queue_key, t.id or 0) for t in waiting if t.status == "queued")
        self._head = 0

    def _lapse(self, printer: Printer) -> None:
        ticket = self._ticket(printer.holder_ticket or 0)
        if ticket.status not in ("offered", "claimed") or ticket.printer != printer.name:
            # The printers were read before another sweep or a claim committed, the
            # tickets after: the same compare-and-set refusal the writes would give.
            raise ConcurrentChangeError(
                message=f"Printer {printer.name} was changed by someone else just now; "
                        "try again.")
        fire_printer(printer, "lapse" if printer.status == "offered" else "release")
        printer.holder_ticket = printer.holder = None
        printer.claim_deadline = printer.start_deadline = None
        self._changed_p[printer.name] = printer
        mine = (ticket.queue_key, ticket.id or 0)
        at = bisect.bisect_left(self._waiting, mine)
        if at < len(self._waiting) and self._waiting[at] == mine:
            del self._waiting[at]
        if ticket.misses >= 1:
            fire_ticket(ticket, "expire")
            self.expired += 1
            kind = "expired"
        else:
            fire_ticket(ticket, "miss")
            ticket.misses += 1
            ticket.queue_key = self._behind_next(mine)
            key = (ticket.queue_key, ticket.id or 0)
            bisect.insort(self._waiting, key)
            bisect.insort(self._queued, key, lo=self._head)
            self.missed += 1
            kind = "missed"
        ticket.printer = None
        self._changed_t[ticket.id or 0] = ticket
        self.log.append((kind, ticket, printer))

    def _behind_next(self, mine: _Key) -> float:
        """The queue key that puts a ticket which missed its window (its old key
        ``mine``, already out of the lists) just behind the next queued member: strictly
        between that member's key and the key of whoever waits right after them, counting
        offered and claimed tickets (they keep their places, and come back to them after
        /notdone or a staff release). With nobody queued behind, the key stays. When two
        keys are too close for a float in between, the tickets after that member move
        back by one."""
        at = bisect.bisect_right(self._queued, mine, lo=self._head)
        if at == len(self._queued):
            return mine[0]
        nxt = self._queued[at]
        after = bisect.bisect_right(self._waiting, nxt)
        if after == len(self._waiting):
            return nxt[0] + 1.0
        lo, hi = nxt[0], self._waiting[after][0]
        if lo < (lo + hi) / 2 < hi:
            return (lo + hi) / 2
        for _, later in self._waiting[after:]:
            moved = self._by_id[later]
            moved.queue_key += 1.0
            self._changed_t[later] = moved
        self._rebuild(leave_out=mine[1])  # offered ones have left the queued list
        return lo + 0.5

    def _offer(self, printer: Printer, now: datetime, deadline: datetime) -> None:
        _, ticket_id = self._queued[self._head]
        self._head += 1
        ticket = self._by_id[ticket_id]
        fire_ticket(ticket, "offer")
        fire_printer(printer, "offer")
        ticket.printer, ticket.offered_at = printer.name, now
        printer.holder_ticket, printer.holder = ticket.id, ticket.member
        printer.claim_deadline = deadline
        printer.offer_not_before = None
        self._changed_p[printer.name] = printer
        self._changed_t[ticket_id] = ticket
        self.offered += 1
        self.log.append(("offer", ticket, printer))
