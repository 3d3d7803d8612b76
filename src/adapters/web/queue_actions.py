"""The staff side of the self-service queue, shared by the printers page and the JSON API.

Each function checks what the web adds (an active staff member is named; a printer form
is not stale), calls one :class:`~printcore.queue.service.QueueService` method, and
returns a sentence saying what happened. Refusals raise printcore errors with messages
written for staff (the service's own messages speak to members: ``/close``, ``/join``):

* NotFoundError: no such printer or ticket (HTTP 404);
* InvalidTransitionError: nothing to release, the ticket is already gone or printing, a
  printer already in / out of service (409);
* ConcurrentChangeError: the printer changed since the form was loaded (409);
* ValidationError: no active staff member named (422).
"""

from __future__ import annotations

from datetime import datetime

import attrs

from adapters.web.context import WebContext
from printcore.errors import (
    ConcurrentChangeError,
    InvalidTransitionError,
    NotFoundError,
    ValidationError,
)
from printcore.queue.entities import Printer, Ticket
from printcore.queue.service import Placement, QueueService
from printcore.requests.job import Actor

__all__ = [
    "QueueView",
    "queue_view",
    "release_printer",
    "remove_ticket",
    "set_in_service",
    "staff_actor",
]

CLOSED_TICKET_STATUSES = ("done", "cancelled", "expired")

STATUS_LABELS: dict[str, str] = {
    "idle": "Idle",
    "offered": "Offered",
    "claimed": "Claimed",
    "printing": "Printing",
    "out_of_service": "Out of service",
    "queued": "Queued",
}


@attrs.frozen
class QueueView:
    """What the printers page and ``GET /api/v1/queue`` show, read in one go.

    ``tickets`` maps the id of every open ticket to it (to name holders and prints);
    ``next_change`` is when the lab closes (open now) or opens (closed now), None for a
    lab that never closes. Times are UTC.
    """

    now: datetime
    printers: list[Printer]
    placements: list[Placement]
    tickets: dict[int, Ticket]
    history: list[Ticket]
    open_now: bool
    always_open: bool
    next_change: datetime | None


def queue_view(queue: QueueService, history_limit: int = 20) -> QueueView:
    now = queue.clock.now()
    printers, placements = queue.status()
    access = queue.access
    open_now = access.is_open(now)
    next_change = None
    if not access.is_always:
        next_change = access.next_closing(now) if open_now else access.next_opening(now)
    return QueueView(
        now=now,
        printers=printers,
        placements=placements,
        tickets={p.ticket.id or 0: p.ticket for p in placements},
        history=queue.history(history_limit),
        open_now=open_now,
        always_open=access.is_always,
        next_change=next_change,
    )


def staff_actor(ctx: WebContext, name: str, workstation: str) -> Actor:
    """The acting staff member. Raises ValidationError unless ``name`` is on the active
    staff list (the queue service does not check it; the CLI checks it the same way)."""
    name = " ".join(name.split())
    active = [m.name for m in ctx.staff.list()]
    if name not in active:
        message = ("Choose your name from the staff list." if not name
                   else f"{name!r} is not on the active staff list; choose your name.")
        raise ValidationError(message, {"staff_name": "Choose your name from the staff list."})
    return Actor.staff(name, workstation)


def _lookup(queue: QueueService, name: str) -> tuple[Printer, dict[int, Ticket]]:
    """The printer called ``name`` and the open tickets by id. Raises NotFoundError."""
    printers, placements = queue.status()
    tickets = {p.ticket.id or 0: p.ticket for p in placements}
    for printer in printers:
        if printer.name == name:
            return printer, tickets
    names = ", ".join(p.name for p in printers) or "none configured"
    raise NotFoundError(f"There is no printer called {name!r}; printers: {names}.")


def _name(tickets: dict[int, Ticket], member: str | None, ticket_id: int | None) -> str:
    """The member's display name from their ticket (the printer row holds their id)."""
    ticket = tickets.get(ticket_id) if ticket_id is not None else None
    return ticket.member_name if ticket is not None else (member or "nobody")


def _describe(queue: QueueService, name: str) -> str:
    """``now idle`` / ``now offered to Dee`` / …, for the message after an action."""
    printer, tickets = _lookup(queue, name)
    if printer.status in ("offered", "claimed") and printer.holder_ticket is not None:
        verb = "offered to" if printer.status == "offered" else "claimed by"
        return f"now {verb} {_name(tickets, printer.holder, printer.holder_ticket)}"
    return f"now {STATUS_LABELS.get(printer.status, printer.status).lower()}"


def _check_version(printer: Printer, version: int | None, doing: str) -> None:
    """Refuse a form made before the printer last changed (say, a release meant for one
    member that would now push back the next). The service takes no expected version, so
    this narrows the race to the gap between two transactions rather than closing it."""
    if version is not None and version != printer.version:
        raise ConcurrentChangeError(message=(
            f"{printer.name} changed since you loaded the page (it is "
            f"{STATUS_LABELS.get(printer.status, printer.status).lower()} now), so it was not "
            f"{doing}. Look at it again and retry if it is still needed."))


def remove_ticket(queue: QueueService, ticket_id: int, who: Actor) -> str:
    try:
        ticket = queue.remove_ticket(ticket_id, who)
    except InvalidTransitionError as err:
        if err.state == "printing":
            raise InvalidTransitionError("remove", err.state, (
                f"Ticket #{ticket_id} is printing, so it cannot be removed. Once the print "
                "is off the bed, release its printer to close the print.")) from None
        if err.state in CLOSED_TICKET_STATUSES:
            raise InvalidTransitionError("remove", err.state, (
                f"Ticket #{ticket_id} is already {err.state}: it is not in the queue any "
                "more, so there is nothing to remove.")) from None
        raise
    where = f" (it held {ticket.printer})" if ticket.printer else ""
    return (f"Removed ticket #{ticket.id} — {ticket.member_name}, “{ticket.job_name}” — "
            f"from the queue{where}.")


def release_printer(queue: QueueService, name: str, who: Actor, version: int | None) -> str:
    before, tickets = _lookup(queue, name)
    _check_version(before, version, "released")
    holder = _name(tickets, before.holder, before.holder_ticket)
    printed = _name(tickets, before.print_member, before.print_ticket)
    queue.release_printer(name, who)
    if before.holder_ticket is not None:
        done = f"Released {name}: {holder} is back at the head of the queue"
    elif before.print_ticket is None and before.unclaimed_since is not None:
        done = f"Freed {name} for the queue (the print nobody claimed is off the bed)"
    else:
        done = f"Closed {printed}'s print on {name} as finished"
    return f"{done}; {name} is {_describe(queue, name)}."


def set_in_service(queue: QueueService, name: str, in_service: bool, who: Actor,
                   version: int | None) -> str:
    before, tickets = _lookup(queue, name)
    doing = "put back in service" if in_service else "taken out of service"
    _check_version(before, version, doing)
    holder = _name(tickets, before.holder, before.holder_ticket)
    try:
        queue.set_in_service(name, in_service, who)
    except InvalidTransitionError as err:
        if in_service == (before.status != "out_of_service"):
            already = "in service" if in_service else "out of service"
            raise InvalidTransitionError(err.event, err.state,
                                         f"{name} is already {already}.") from None
        raise
    if in_service:
        return f"{name} is back in service, {_describe(queue, name)}."
    extra = (f"; {holder} is back at the head of the queue"
             if before.holder_ticket is not None else "")
    return f"{name} is out of service{extra}. Nothing will be offered on it until it is back."
