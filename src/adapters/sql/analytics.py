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

:meth:`SqlHistory.tally` on PostgreSQL reduces in the database instead (a year of a busy
lab is 100,000 events; reading them all into Python took seconds), in five statements:
counts per local day (``width_bucket`` over the range's local midnights in UTC, computed
here with ``zoneinfo`` as the in-memory reader does; index ``(subject, kind, at)``),
rejection reasons (``json_array_elements_text`` over the range's ``reject`` events),
per-job milestones from the jobs' events before the range's end (for a range covering
much of the log, one pass grouping every job and keeping those with an event in the
range, ``HAVING max(at) >= start``; for a narrower one, those jobs found first through
the index; the same rows either way): first
submit/approve/confirm/start, the standing completion and pickup (the last one after the
last revert), with the stage medians (``percentile_cont(0.5)``) and nearest-rank p90s
(``percentile_disc(0.9)``) of all five stages; the payments' material
(``json_to_recordset``: each payment's JSON parsed once), plus the queue's events read
light (their printer only). On SQLite it reduces :meth:`history` in Python
(``printcore.requests.analytics.tally``). The integration tests hold both to the same
hand-computed figures. Timings: docs/reports.md ("Speed").
"""

from __future__ import annotations

from datetime import UTC, datetime, time
from typing import Any

from sqlalchemy import Engine, and_, or_, select, text, union
from sqlalchemy.exc import DBAPIError

from adapters.sql.convert import converter, row_to_event
from adapters.sql.engine import connection_error
from adapters.sql.tables import events, jobs, printers, tickets
from printcore.events import Actor, Event
from printcore.requests.analytics import (
    COLUMNS,
    KINDS,
    QUEUE_KINDS,
    STAGES,
    History,
    PaymentRecord,
    StageStats,
    Tally,
    tally,
)
from printcore.requests.date_range import DateRange
from printcore.requests.job import Payment

__all__ = ["SqlHistory"]


_COUNTS_SQL = """
SELECT width_bucket(at, CAST(:edges AS timestamptz[])) AS day, kind, count(*) AS n
FROM events
WHERE subject = 'job' AND kind = ANY(:kinds) AND at >= :start AND at < :end
GROUP BY 1, 2"""
_REASONS_SQL = """
SELECT r.reason, count(*) AS n FROM events,
  json_array_elements_text(COALESCE(events.details -> 'reasons', '[]'::json)) AS r(reason)
WHERE subject = 'job' AND kind = 'reject' AND at >= :start AND at < :end
GROUP BY 1"""
_STAGES_TEMPLATE = """
WITH marks AS (
  SELECT e.subject_id,
    min(e.at) FILTER (WHERE e.kind IN ('submit', 'submitted')) AS submitted,
    min(e.at) FILTER (WHERE e.kind = 'approve') AS approved,
    min(e.at) FILTER (WHERE e.kind IN ('confirm', 'force_confirm')) AS confirmed,
    min(e.at) FILTER (WHERE e.kind = 'start_print') AS started,
    max(e.at) FILTER (WHERE e.kind = 'complete') AS completed,
    max(e.at) FILTER (WHERE e.kind = 'revert_completion') AS uncompleted,
    max(e.at) FILTER (WHERE e.kind = 'pick_up') AS picked,
    max(e.at) FILTER (WHERE e.kind = 'revert_pickup') AS unpicked
  FROM events e
  WHERE e.subject = 'job' AND e.kind = ANY(:kinds) AND e.at < :end{jobs_in_range}),
standing AS (
  SELECT submitted, approved, confirmed, started,
    CASE WHEN uncompleted IS NULL OR completed > uncompleted THEN completed END AS completed,
    CASE WHEN unpicked IS NULL OR picked > unpicked THEN picked END AS picked
  FROM marks)
SELECT
  count(*) FILTER (WHERE submitted IS NOT NULL AND approved >= :start AND approved < :end) AS review_jobs,
  percentile_cont(0.5) WITHIN GROUP (ORDER BY date_part('epoch', approved - submitted) / 3600)
    FILTER (WHERE submitted IS NOT NULL AND approved >= :start AND approved < :end) AS review_median,
  percentile_disc(0.9) WITHIN GROUP (ORDER BY date_part('epoch', approved - submitted) / 3600)
    FILTER (WHERE submitted IS NOT NULL AND approved >= :start AND approved < :end) AS review_p90,
  count(*) FILTER (WHERE approved IS NOT NULL AND confirmed >= :start AND confirmed < :end) AS confirmation_jobs,
  percentile_cont(0.5) WITHIN GROUP (ORDER BY date_part('epoch', confirmed - approved) / 3600)
    FILTER (WHERE approved IS NOT NULL AND confirmed >= :start AND confirmed < :end) AS confirmation_median,
  percentile_disc(0.9) WITHIN GROUP (ORDER BY date_part('epoch', confirmed - approved) / 3600)
    FILTER (WHERE approved IS NOT NULL AND confirmed >= :start AND confirmed < :end) AS confirmation_p90,
  count(*) FILTER (WHERE confirmed IS NOT NULL AND started >= :start AND started < :end) AS wait_to_print_jobs,
  percentile_cont(0.5) WITHIN GROUP (ORDER BY date_part('epoch', started - confirmed) / 3600)
    FILTER (WHERE confirmed IS NOT NULL AND started >= :start AND started < :end) AS wait_to_print_median,
  percentile_disc(0.9) WITHIN GROUP (ORDER BY date_part('epoch', started - confirmed) / 3600)
    FILTER (WHERE confirmed IS NOT NULL AND started >= :start AND started < :end) AS wait_to_print_p90,
  count(*) FILTER (WHERE started IS NOT NULL AND completed >= :start AND completed < :end) AS printing_jobs,
  percentile_cont(0.5) WITHIN GROUP (ORDER BY date_part('epoch', completed - started) / 3600)
    FILTER (WHERE started IS NOT NULL AND completed >= :start AND completed < :end) AS printing_median,
  percentile_disc(0.9) WITHIN GROUP (ORDER BY date_part('epoch', completed - started) / 3600)
    FILTER (WHERE started IS NOT NULL AND completed >= :start AND completed < :end) AS printing_p90,
  count(*) FILTER (WHERE completed IS NOT NULL AND picked >= :start AND picked < :end) AS pickup_jobs,
  percentile_cont(0.5) WITHIN GROUP (ORDER BY date_part('epoch', picked - completed) / 3600)
    FILTER (WHERE completed IS NOT NULL AND picked >= :start AND picked < :end) AS pickup_median,
  percentile_disc(0.9) WITHIN GROUP (ORDER BY date_part('epoch', picked - completed) / 3600)
    FILTER (WHERE completed IS NOT NULL AND picked >= :start AND picked < :end) AS pickup_p90
FROM standing"""
#: The jobs with an event in the range, two ways (the same rows): a range covering much of
#: the log before its end groups every job once and keeps those touched (one pass; a year
#: of the benchmark: 41 ms of PostgreSQL's CPU, the semi-join 65 ms); a narrow one finds
#: the touched jobs first through the index and groups only theirs (a month: 12 ms, the
#: single pass 26 ms).
_WIDE_SQL = _STAGES_TEMPLATE.replace("{jobs_in_range}", """
  GROUP BY e.subject_id
  HAVING max(e.at) >= :start""")
_NARROW_SQL = _STAGES_TEMPLATE.replace("{jobs_in_range}", """
    AND e.subject_id IN (SELECT subject_id FROM events WHERE subject = 'job'
                         AND kind = ANY(:kinds) AND at >= :start AND at < :end)
  GROUP BY e.subject_id""")
#: Above this share of the job log before the range's end (by time since the first job
#: event) the single pass is used; the crossover on the benchmark was about 150 of 365
#: days.
_WIDE_SHARE = 0.4
_FIRST_SQL = "SELECT min(at) FROM events WHERE subject = 'job' AND at < :end"
#: The stages of :data:`_WIDE_SQL`'s columns (``<key>_jobs``, ``_median``, ``_p90``).
_STAGE_KEYS = ("review", "confirmation", "wait_to_print", "printing", "pickup")
_MATERIAL_SQL = """
SELECT j.print_method, j.color, p.voided_at IS NOT NULL AS voided,
  count(*) AS n, sum(p.grams) AS grams, sum(p.amount_cents) AS cents
FROM jobs j CROSS JOIN LATERAL json_to_recordset(j.payments)
  AS p(grams float8, amount_cents bigint, recorded_at timestamptz, voided_at text)
WHERE j.id IN (SELECT subject_id FROM events WHERE subject = 'job' AND kind = 'pick_up'
               AND at >= :start AND at < :end)
  AND p.recorded_at >= :start AND p.recorded_at < :end
GROUP BY 1, 2, 3"""


class SqlHistory:
    """Reads on its own connection (one read-only transaction per report)."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def tally(self, span: DateRange) -> Tally:
        """As :meth:`printcore.requests.analytics.HistoryReader.tally` (see the module
        doc). Raises StorageError when the database cannot be reached."""
        if self._engine.dialect.name != "postgresql":
            return tally(self.history(span.start, span.end), span)
        bounds: dict[str, Any] = {"start": span.start, "end": span.end}
        try:
            with self._engine.connect() as conn:
                days = span.days()
                edges = [datetime.combine(day, time(), span.zone).astimezone(UTC)
                         for day in days[1:]]  # local midnights: bucket i is days[i]
                merged: dict[tuple[Any, str], int] = {}
                for row in conn.execute(text(_COUNTS_SQL), {**bounds, "edges": edges,
                                                            "kinds": list(COLUMNS)}):
                    key = (days[row.day], COLUMNS[row.kind])  # submit, submitted: one column
                    merged[key] = merged.get(key, 0) + int(row.n)
                reasons = {str(row.reason): int(row.n)
                           for row in conn.execute(text(_REASONS_SQL), bounds)}
                first = conn.execute(text(_FIRST_SQL), bounds).scalar()
                wide = first is None or (
                    span.end - span.start >= _WIDE_SHARE * (span.end - first))
                one = conn.execute(text(_WIDE_SQL if wide else _NARROW_SQL),
                                   {**bounds, "kinds": list(KINDS)}).mappings().one()
                stages = {key: StageStats(int(one[f"{key}_jobs"]),
                                          float(one[f"{key}_median"]),
                                          float(one[f"{key}_p90"]))
                          for key in _STAGE_KEYS if one[f"{key}_jobs"]}
                material: dict[tuple[str, str], tuple[float, int, int]] = {}
                voided = 0
                for row in conn.execute(text(_MATERIAL_SQL), bounds):
                    if row.voided:
                        voided += int(row.n)
                    else:
                        material[(row.print_method, row.color)] = (
                            float(row.grams), int(row.n), int(row.cents))
                queue, names = self._queue(conn, span.start, span.end)
        except DBAPIError as err:
            raise connection_error(self._engine, err) from err
        return Tally(merged, reasons, {key: stages.get(key, StageStats())
                                       for key, _, _ in STAGES},
                     material, voided, queue, names)

    @staticmethod
    def _queue(conn: Any, start: datetime, end: datetime) -> tuple[tuple[Event, ...],
                                                                   tuple[str, ...]]:
        """The tickets' events (light: subject id, kind, time and printer) and the
        printers' names, as :meth:`history` chooses them."""
        in_queue = and_(events.c.subject == "ticket", events.c.at >= start, events.c.at < end)
        ticket_ids = union(
            select(events.c.subject_id).where(in_queue),
            select(tickets.c.id).where(
                tickets.c.started_at < start,
                or_(tickets.c.closed_at.is_(None), tickets.c.closed_at >= start)),
        )
        printer = events.c.details["printer"].as_string()
        query = (select(events.c.subject_id, events.c.kind, events.c.at, printer)
                 .where(events.c.subject == "ticket", events.c.kind.in_(QUEUE_KINDS),
                        events.c.at < end, events.c.subject_id.in_(ticket_ids))
                 .order_by(events.c.at, events.c.id))
        system = Actor.system("report")
        found = tuple(Event("ticket", row[0], row[1], system, row[2],
                            details={"printer": row[3]} if row[3] else {})
                      for row in conn.execute(query))
        names = tuple(conn.execute(select(printers.c.name).order_by(printers.c.name)).scalars())
        return found, names

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
        try:
            with self._engine.connect() as conn:
                found = tuple(row_to_event(row._mapping) for row in conn.execute(query))
                rows = conn.execute(paid).all()
                queue, names = self._queue(conn, start, end)
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
