"""In-memory queue repositories (unit tests, trying it out): same semantics as SQL —
version-checked (compare-and-set) updates, changes visible to others only on commit.

The unit of work has an ``outbox`` (``printcore.memory.MemoryOutbox`` over the database's
``outbox`` store): rows added in a transaction are published on commit and dropped on
rollback, like the SQL outbox table."""

from __future__ import annotations

import copy
import threading
from collections.abc import Sequence
from types import TracebackType

import attrs

from printcore.errors import ConcurrentChangeError, NotFoundError
from printcore.events import Event
from printcore.memory import MemoryOutbox, MemoryOutboxStore
from printcore.queue.entities import OPEN_TICKET_STATUSES, Printer, Ticket
from printcore.queue.ports import QueueSlot

__all__ = ["MemoryQueueDatabase", "MemoryQueueUnitOfWork"]


@attrs.define
class MemoryQueueDatabase:
    printers: dict[str, Printer] = attrs.Factory(dict)
    tickets: dict[int, Ticket] = attrs.Factory(dict)
    events: list[Event] = attrs.Factory(list)
    outbox: MemoryOutboxStore = attrs.Factory(MemoryOutboxStore)
    next_id: int = 0
    lock: threading.RLock = attrs.field(factory=threading.RLock, repr=False)

    def new_id(self) -> int:
        with self.lock:
            self.next_id += 1
            return self.next_id


class _Printers:
    def __init__(self, uow: MemoryQueueUnitOfWork) -> None:
        self._uow = uow

    def _view(self) -> dict[str, Printer]:
        return {**self._uow.db.printers, **{k: v for k, (v, _) in self._uow.printers_w.items()}}

    def list(self) -> list[Printer]:
        return [copy.deepcopy(p) for _, p in sorted(self._view().items())]

    def get(self, name: str) -> Printer:
        found = self._view().get(name)
        if found is None:
            names = ", ".join(sorted(self._view())) or "none configured"
            raise NotFoundError(f"There is no printer called {name!r}; printers: {names}.")
        return copy.deepcopy(found)

    def add(self, printer: Printer) -> None:
        printer.id = self._uow.db.new_id()
        printer.version = 1
        self._uow.printers_w[printer.name] = (copy.deepcopy(printer), 0)

    def update(self, printer: Printer) -> None:
        _, base = self._uow.printers_w.get(printer.name, (printer, printer.version))
        stored = self._uow.db.printers.get(printer.name)
        if base and (stored is None or stored.version != base):
            raise ConcurrentChangeError(message=f"Printer {printer.name} was changed by "
                                        "someone else just now; try again.")
        printer.version += 1
        self._uow.printers_w[printer.name] = (copy.deepcopy(printer), base)

    def update_many(self, printers: Sequence[Printer]) -> None:
        for printer in printers:
            self.update(printer)


class _Tickets:
    def __init__(self, uow: MemoryQueueUnitOfWork) -> None:
        self._uow = uow

    def _view(self) -> dict[int, Ticket]:
        return {**self._uow.db.tickets, **{k: v for k, (v, _) in self._uow.tickets_w.items()}}

    def add(self, ticket: Ticket) -> int:
        ticket.id = self._uow.db.new_id()
        ticket.version = 1
        self._uow.tickets_w[ticket.id] = (copy.deepcopy(ticket), 0)
        return ticket.id

    def get(self, ticket_id: int) -> Ticket:
        found = self._view().get(ticket_id)
        if found is None:
            raise NotFoundError(f"There is no ticket #{ticket_id}.")
        return copy.deepcopy(found)

    def update(self, ticket: Ticket) -> None:
        assert ticket.id is not None
        _, base = self._uow.tickets_w.get(ticket.id, (ticket, ticket.version))
        stored = self._uow.db.tickets.get(ticket.id)
        if base and (stored is None or stored.version != base):
            raise ConcurrentChangeError(message=f"Ticket #{ticket.id} was changed by someone "
                                        "else just now; try again.")
        ticket.version += 1
        self._uow.tickets_w[ticket.id] = (copy.deepcopy(ticket), base)

    def update_many(self, tickets: Sequence[Ticket]) -> None:
        for ticket in tickets:
            self.update(ticket)

    def open_tickets(self) -> list[Ticket]:
        found = [t for t in self._view().values() if t.status in OPEN_TICKET_STATUSES]
        return [copy.deepcopy(t) for t in sorted(found, key=lambda t: (t.queue_key, t.id or 0))]

    def for_member(self, member: str, open_only: bool = False) -> list[Ticket]:
        found = [t for t in self._view().values() if t.member == member
                 and (not open_only or t.status in OPEN_TICKET_STATUSES)]
        return [copy.deepcopy(t) for t in sorted(found, key=lambda t: -(t.id or 0))]

    def open_tickets_page(self, queued_limit: int) -> list[Ticket]:
        found, queued = [], 0
        for t in self.open_tickets():
            if t.status == "queued":
                queued += 1
                if queued > queued_limit:
                    continue
            found.append(t)
        return found

    def queue_line(self) -> list[QueueSlot]:
        return [QueueSlot(t.id or 0, t.status, t.est_minutes) for t in self.open_tickets()]

    def position(self, ticket: Ticket) -> int:
        mine = (ticket.queue_key, ticket.id or 0)
        return 1 + sum(1 for t in self._view().values()
                       if t.status == "queued" and (t.queue_key, t.id or 0) < mine)

    def last_queue_key(self) -> float | None:
        keys = [t.queue_key for t in self._view().values() if t.status in OPEN_TICKET_STATUSES]
        return max(keys) if keys else None

    def closed(self, limit: int = 500) -> list[Ticket]:
        found = [t for t in self._view().values()
                 if t.status == "done"
                 and (t.actual_minutes is not None or t.bound_minutes is not None)]
        found.sort(key=lambda t: -(t.id or 0))
        return [copy.deepcopy(t) for t in found[:limit]]


class _Events:
    def __init__(self, uow: MemoryQueueUnitOfWork) -> None:
        self._uow = uow

    def append(self, event: Event) -> Event:
        stored = attrs.evolve(event, id=self._uow.db.new_id())
        self._uow.events_w.append(stored)
        return stored

    def append_many(self, events: Sequence[Event]) -> None:
        for event in events:
            self.append(event)

    def for_subject(self, subject: str, subject_id: int) -> list[Event]:
        return [e for e in [*self._uow.db.events, *self._uow.events_w]
                if e.subject == subject and e.subject_id == subject_id]


class MemoryQueueUnitOfWork:
    def __init__(self, db: MemoryQueueDatabase) -> None:
        self.db = db
        self.printers = _Printers(self)
        self.tickets = _Tickets(self)
        self.events = _Events(self)
        self.outbox = MemoryOutbox(db.outbox)
        self._reset()

    def _reset(self) -> None:
        self.printers_w: dict[str, tuple[Printer, int]] = {}
        self.tickets_w: dict[int, tuple[Ticket, int]] = {}
        self.events_w: list[Event] = []
        self.outbox.reset()

    def __enter__(self) -> MemoryQueueUnitOfWork:
        self._reset()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.rollback()

    def commit(self) -> None:
        db = self.db
        with db.lock:
            for name, (_, base) in self.printers_w.items():
                stored = db.printers.get(name)
                if base and (stored is None or stored.version != base):
                    raise ConcurrentChangeError(message=f"Printer {name} was changed by "
                                                "someone else just now; try again.")
            for ticket_id, (_, base) in self.tickets_w.items():
                stored_t = db.tickets.get(ticket_id)
                if base and (stored_t is None or stored_t.version != base):
                    raise ConcurrentChangeError(message=f"Ticket #{ticket_id} was changed by "
                                                "someone else just now; try again.")
            self.outbox.publish()  # checks its own leases first; all or nothing
            db.printers.update({k: v for k, (v, _) in self.printers_w.items()})
            db.tickets.update({k: v for k, (v, _) in self.tickets_w.items()})
            db.events.extend(self.events_w)
        self._reset()

    def rollback(self) -> None:
        self._reset()
