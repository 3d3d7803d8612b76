"""The SQL :class:`~printcore.requests.analytics.HistoryReader`: the report's events and
payments in two queries (SQLite and PostgreSQL).

Events: those of :data:`~printcore.requests.analytics.KINDS` before the range's end of
every job with such an event in the range (a subquery on ``events``). Payments: the
``payments`` JSON of the jobs with a ``pick_up`` event in the range (a payment is written
with its ``pick_up`` event, at the same moment), filtered to the range in Python.
Queue: the ticket events of :data:`~printcore.requests.analytics.QUEUE_KINDS` before the
range's end of the tickets with an event in the range or with a print started before it
and not closed by its start (``tickets.started_at``/``closed_at``), and the printers'
names. Four queries in one read transaction.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Engine, and_, or_, select, union
from sqlalchemy.exc import DBAPIError

from adapters.sql.convert import converter, row_to_event
from adapters.sql.engine import connection_error
from adapters.sql.tables import events, jobs, printers, tickets
from printcore.requests.analytics import KINDS, QUEUE_KINDS, History, PaymentRecord
from printcore.requests.job import Payment

__all__ = ["SqlHistory"]


class SqlHistory:
    """Reads on its own connection (one read-only transaction per report)."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def history(self, start: datetime, end: datetime) -> History:
        """As :meth:`printcore.requests.analytics.HistoryReader.history`. Raises
        StorageError when the database cannot be reached."""
        in_range = and_(events.c.subject == "job", events.c.at >= start, events.c.at < end)
        touched = select(events.c.subject_id).where(in_range, events.c.kind.in_(KINDS))
        picked = select(events.c.subject_id).where(in_range, events.c.kind == "pick_up")
        query = (select(events)
                 .where(events.c.subject == "job", events.c.kind.in_(KINDS),
                        events.c.at < end, events.c.subject_id.in_(touched))
                 .order_by(events.c.at, events.c.id))
        paid = select(jobs.c.id, jobs.c.print_method, jobs.c.color, jobs.c.payments).where(
            jobs.c.id.in_(picked))
        in_queue = and_(events.c.subject == "ticket", events.c.at >= start, events.c.at < end)
        ticket_ids = union(
            select(events.c.subject_id).where(in_queue),
            select(tickets.c.id).where(
                tickets.c.started_at < start,
                or_(tickets.c.closed_at.is_(None), tickets.c.closed_at >= start)),
        )
        queue_query = (select(events)
                       .where(events.c.subject == "ticket", events.c.kind.in_(QUEUE_KINDS),
                              events.c.at < end, events.c.subject_id.in_(ticket_ids))
                       .order_by(events.c.at, events.c.id))
        try:
            with self._engine.connect() as conn:
                found = tuple(row_to_event(row._mapping) for row in conn.execute(query))
                rows = conn.execute(paid).all()
                queue = tuple(row_to_event(row._mapping) for row in conn.execute(queue_query))
                names = tuple(conn.execute(
                    select(printers.c.name).order_by(printers.c.name)).scalars())
        except DBAPIError as err:
            raise connection_error(self._engine, err) from err
        payments = []
        for row in rows:
            for p in converter.structure(row.payments or [], list[Payment]):
                if start <= p.recorded_at < end:
                    payments.append(PaymentRecord(row.id, row.print_method, row.color,
                                                  p.grams, p.amount_cents, p.recorded_at,
                                                  p.voided_at is not None))
        payments.sort(key=lambda p: (p.at, p.job_id))
        return History(found, tuple(payments), queue, names)
