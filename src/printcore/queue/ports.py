"""Ports of the self-service queue: repositories for printers and tickets, the unit of
work (with the outbox), and the notices members get.

A :class:`QueueNotice` is never sent directly: the service writes it to the outbox
(``channel="discord"``) in the transaction of the change that causes it, with
:func:`queue_notice_message`; whoever delivers the ``discord`` channel (the bot, or a log
without Discord) reads it back with :func:`queue_notice_of`.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from types import TracebackType
from typing import NamedTuple, Protocol

import attrs

from printcore.errors import ValidationError
from printcore.outbox import OutboxMessage, OutboxRepository
from printcore.ports import EventLog
from printcore.queue.entities import Printer, Ticket

__all__ = [
    "PrinterRepository",
    "QueueNotice",
    "QueueSlot",
    "QueueUnitOfWork",
    "TicketRepository",
    "queue_notice_message",
    "queue_notice_of",
]


class QueueSlot(NamedTuple):
    """An open ticket as the ETA simulation sees it: id, status, estimate in minutes."""

    id: int
    status: str
    est_minutes: int


class PrinterRepository(Protocol):
    def list(self) -> list[Printer]:
        """All printers, by name."""
        ...

    def get(self, name: str) -> Printer:
        """Raises NotFoundError (its message lists the known names)."""
        ...

    def add(self, printer: Printer) -> None: ...

    def update(self, printer: Printer) -> None:
        """Store if the stored version still equals ``printer.version`` (compare-and-set);
        bump it. Raises ConcurrentChangeError when someone else changed it first."""
        ...

    def update_many(self, printers: Sequence[Printer]) -> None:
        """``update`` of each (at once where the store can). Raises
        ConcurrentChangeError when any was changed by someone else first."""
        ...


class TicketRepository(Protocol):
    def add(self, ticket: Ticket) -> int:
        """Store a new ticket; set and return its id."""
        ...

    def get(self, ticket_id: int) -> Ticket:
        """Raises NotFoundError."""
        ...

    def update(self, ticket: Ticket) -> None:
        """Version-checked like printers. Raises ConcurrentChangeError."""
        ...

    def update_many(self, tickets: Sequence[Ticket]) -> None:
        """``update`` of each, like printers. Raises ConcurrentChangeError."""
        ...

    def open_tickets(self) -> list[Ticket]:
        """Tickets in queued/offered/claimed/printing, by ``queue_key`` (FIFO order)."""
        ...

    def for_member(self, member: str, open_only: bool = False) -> list[Ticket]:
        """A member's tickets, newest first."""
        ...

    def open_tickets_page(self, queued_limit: int) -> list[Ticket]:
        """The offered, claimed and printing tickets and the first ``queued_limit`` queued
        ones, in FIFO order (what a status reply shows)."""
        ...

    def queue_line(self) -> list[QueueSlot]:
        """Every open ticket as a :class:`QueueSlot`, in FIFO order: what the ETA
        simulation needs and nothing more (cheap for 10,000 tickets)."""
        ...

    def position(self, ticket: Ticket) -> int:
        """1 + the number of queued tickets ahead of ``ticket`` (lower ``queue_key``,
        then id): its place among the queued ones if it is queued."""
        ...

    def last_queue_key(self) -> float | None:
        """The highest ``queue_key`` of an open ticket, or None when none is open."""
        ...

    def closed(self, limit: int = 500) -> list[Ticket]:
        """Done tickets with a known duration (``actual_minutes``) or an upper bound
        (``bound_minutes``), newest first (for predictions and history)."""
        ...


class QueueUnitOfWork(Protocol):
    printers: PrinterRepository
    tickets: TicketRepository
    events: EventLog
    outbox: OutboxRepository

    def __enter__(self) -> QueueUnitOfWork: ...

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...

    def commit(self) -> None: ...

    def rollback(self) -> None: ...


@attrs.frozen
class QueueNotice:
    """A message to a member: ``kind`` is ``offered`` (claim by ``deadline``), ``missed``
    (dropped behind the next member), ``expired``, ``claimed``, or what a watched printer
    reported of the member's print: ``print_started`` (``deadline`` = the predicted end),
    ``print_finished``, ``print_failed`` (asks for the photo), ``print_cancelled``;
    ``deadline`` is UTC."""

    kind: str
    member: str
    member_name: str
    ticket_id: int
    printer: str | None = None
    deadline: datetime | None = None


def queue_notice_message(notice: QueueNotice, now: datetime) -> OutboxMessage:
    """The outbox row for a notice: channel ``discord``, subject ``ticket`` (the ticket
    id), recipient the member id, due at ``now``. The payload holds the notice's fields,
    the deadline as a UTC ISO 8601 string (or None)."""
    deadline = notice.deadline.astimezone(UTC).isoformat() if notice.deadline else None
    return OutboxMessage(
        channel="discord", kind=notice.kind, recipient=notice.member, subject="ticket",
        subject_id=notice.ticket_id, created_at=now, next_attempt_at=now,
        payload={"member": notice.member, "member_name": notice.member_name,
                 "ticket_id": notice.ticket_id, "printer": notice.printer,
                 "deadline": deadline},
    )


def queue_notice_of(message: OutboxMessage) -> QueueNotice:
    """The notice an outbox row of channel ``discord`` carries (the inverse of
    :func:`queue_notice_message`). Raises ValidationError for a row of another channel or
    a payload that is not a notice's."""
    if message.channel != "discord":
        raise ValidationError(f"Message {message.id} is on the {message.channel!r} channel, "
                              "not a queue notice.", {"channel": "Expected discord."})
    payload = message.payload
    try:
        deadline = payload.get("deadline")
        return QueueNotice(
            kind=message.kind,
            member=str(payload.get("member", message.recipient)),
            member_name=str(payload["member_name"]),
            ticket_id=int(payload.get("ticket_id", message.subject_id)),
            printer=None if payload.get("printer") is None else str(payload["printer"]),
            deadline=(datetime.fromisoformat(deadline).astimezone(UTC)
                      if deadline is not None else None),
        )
    except (KeyError, TypeError, ValueError) as err:
        raise ValidationError(f"Message {message.id} does not hold a queue notice ({err}).",
                              {"payload": "Not a queue notice."}) from err
