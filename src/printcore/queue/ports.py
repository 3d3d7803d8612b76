"""Ports of the self-service queue: repositories for printers and tickets, and a notifier."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from types import TracebackType
from typing import Protocol

import attrs

from printcore.ports import EventLog
from printcore.queue.entities import Printer, Ticket

__all__ = [
    "PrinterRepository",
    "QueueNotice",
    "QueueNotifier",
    "QueueUnitOfWork",
    "TicketRepository",
]


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

    def open_tickets(self) -> list[Ticket]:
        """Tickets in queued/offered/claimed/printing, by ``queue_key`` (FIFO order)."""
        ...

    def for_member(self, member: str, open_only: bool = False) -> list[Ticket]:
        """A member's tickets, newest first."""
        ...

    def closed(self, limit: int = 500) -> list[Ticket]:
        """Done tickets with an actual time, newest first (for predictions and history)."""
        ...


class QueueUnitOfWork(Protocol):
    printers: PrinterRepository
    tickets: TicketRepository
    events: EventLog

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
    (dropped behind the next member), ``expired``, or ``claimed``; ``deadline`` is UTC."""

    kind: str
    member: str
    member_name: str
    ticket_id: int
    printer: str | None = None
    deadline: datetime | None = None


class QueueNotifier(Protocol):
    def notify(self, notices: Iterable[QueueNotice]) -> None:
        """Deliver after the change is committed (Discord DM + channel post, or a log)."""
        ...
