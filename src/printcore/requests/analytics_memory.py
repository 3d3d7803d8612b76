"""The in-memory :class:`~printcore.requests.analytics.HistoryReader` over a
:class:`~printcore.requests.memory.MemoryDatabase` (its committed events and jobs)."""

from __future__ import annotations

from datetime import datetime

import attrs

from printcore.requests.analytics import KINDS, History, PaymentRecord
from printcore.requests.memory import MemoryDatabase

__all__ = ["MemoryHistory"]


@attrs.define
class MemoryHistory:
    db: MemoryDatabase

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
        return History(tuple(chosen), tuple(sorted(payments, key=lambda p: (p.at, p.job_id))))
