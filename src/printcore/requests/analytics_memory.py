"""The in-memory :class:`~printcore.requests.analytics.HistoryReader` over a
:class:`~printcore.requests.memory.MemoryDatabase` (its committed events and jobs) and,
for the queue figures, a :class:`~printcore.queue.memory.MemoryQueueDatabase`."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Protocol

import attrs

from printcore.events import Event
from printcore.requests.analytics import (
    KINDS,
    QUEUE_KINDS,
    History,
    PaymentRecord,
    Tally,
    tally,
)
from printcore.requests.date_range import DateRange
from printcore.requests.memory import MemoryDatabase


class QueueRecords(Protocol):
    """What is read of a ``printcore.queue.memory.MemoryQueueDatabase`` (named here, not
    imported: the requests flow does not import the queue's package)."""

    @property
    def events(self) -> list[Event]: ...

    @property
    def printers(self) -> Mapping[str, object]: ...

__all__ = ["MemoryHistory"]


def _queue_events(events: list[Event], start: datetime, end: datetime) -> list[Event]:
    """The tickets' events as :meth:`HistoryReader.history` chooses them."""
    mine = sorted((e for e in events if e.subject == "ticket" and e.kind in QUEUE_KINDS
                   and e.at < end), key=lambda e: (e.at, e.id or 0))
    touched = {e.subject_id for e in mine if start <= e.at}
    running: dict[int, bool] = {}
    for e in mine:
        if e.at < start and e.kind in ("start", "close"):
            running[e.subject_id] = e.kind == "start"
    touched |= {ticket for ticket, open_ in running.items() if open_}
    return [e for e in mine if e.subject_id in touched]


@attrs.define
class MemoryHistory:
    db: MemoryDatabase
    queue: QueueRecords | None = None

    def history(self, start: datetime, end: datetime) -> History:
        """As :meth:`printcore.requests.analytics.HistoryReader.history`."""
        with self.db.lock:
            events = [e for e in self.db.events if e.subject == "job" and e.kind in KINDS]
            jobs = list(self.db.jobs.values())
        touched = {e.subject_id for e in events if start <= e.at < end}
        chosen = sorted((e for e in events if e.subject_id in touched and e.at < end),
                        key=lambda e: (e.at, e.id or 0))
        payments = [
            PaymentRecord(job.id, job.print_method, job.color, p.grams, p.amount_cents,
                          p.recorded_at, p.voided_at is not None)
            for job in jobs if job.id is not None
            for p in job.payments if start <= p.recorded_at < end
        ]
        queue: list[Event] = []
        printers: tuple[str, ...] = ()
        if self.queue is not None:
            queue = _queue_events(list(self.queue.events), start, end)
            printers = tuple(sorted(self.queue.printers))  # keyed by name
        return History(tuple(chosen), tuple(sorted(payments, key=lambda p: (p.at, p.job_id))),
                       tuple(queue), printers)

    def tally(self, span: DateRange) -> Tally:
        """As :meth:`printcore.requests.analytics.HistoryReader.tally`."""
        return tally(self.history(span.start, span.end), span)
