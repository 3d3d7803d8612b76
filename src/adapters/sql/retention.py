"""The SQL :class:`~printcore.requests.retention.RetentionStore` (SQLite and PostgreSQL):
its own queries on the tables, run on the connection of a fresh ``SqlUnitOfWork`` per
call (one transaction), so events go through ``uow.events.append`` in the same
transaction as the removal and the live feed hears of the commit.

A job's **last state change** is the newest ``events`` row of the job whose ``to_status``
is the job's status and differs from its ``from_status`` (the same rule as
``jobs.entered_status_at``), else the row's ``updated_at``, else ``created_at``.

Removal deletes each ``jobs`` row with ``id``, ``version`` and a final ``status`` as
planned (so a job changed meanwhile matches nothing and is skipped), its ``outbox`` rows
and its ``job_locks`` row, and inserts the tombstones and the run's lab event, all in one
transaction (SQLite: ``BEGIN IMMEDIATE``, see ``engine.make_engine``). Each call raises
StorageError when the database cannot be reached.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import Connection, and_, delete, func, or_, select
from sqlalchemy.exc import DBAPIError

from adapters.serialization import utc_iso
from adapters.sql.convert import row_to_job
from adapters.sql.engine import connection_error
from adapters.sql.tables import events, job_locks, jobs, outbox
from adapters.sql.uow import SqlUnitOfWork
from printcore.events import Event
from printcore.requests.job import Job
from printcore.requests.retention import FINAL_STATES, JobRecord, PlannedJob, StoredCandidate

__all__ = ["SqlRetentionStore", "json_ready"]

_FINAL = sorted(FINAL_STATES)


def json_ready(value: Any) -> Any:
    """``value`` with datetimes as ISO 8601 UTC text and dates as ``YYYY-MM-DD`` (dicts,
    lists and tuples walked), for ``json.dumps``."""
    if isinstance(value, datetime):
        return utc_iso(value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, dict):
        return {str(k): json_ready(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_ready(v) for v in value]
    return value


def _last_change() -> Any:
    moved_in = events.join(jobs, and_(jobs.c.id == events.c.subject_id,
                                      jobs.c.status == events.c.to_status))
    moved = (select(events.c.subject_id.label("job_id"), func.max(events.c.at).label("at"))
             .select_from(moved_in)
             .where(events.c.subject == "job", jobs.c.status.in_(_FINAL),
                    or_(events.c.from_status.is_(None),
                        events.c.from_status != events.c.to_status))
             .group_by(events.c.subject_id).subquery())
    return moved


class SqlRetentionStore:
    """``uow``: a factory of fresh SQL units of work (as ``PrintRequests.uow``)."""

    def __init__(self, uow: Callable[[], SqlUnitOfWork]) -> None:
        self._uow = uow

    def candidates(self, cutoff: datetime) -> list[StoredCandidate]:
        """As the port: final jobs whose last state change is before ``cutoff``."""
        moved = _last_change()
        changed = func.coalesce(moved.c.at, jobs.c.updated_at, jobs.c.created_at)
        query = (select(jobs, changed.label("last_change_at"))
                 .select_from(jobs.outerjoin(moved, moved.c.job_id == jobs.c.id))
                 .where(jobs.c.status.in_(_FINAL), changed < cutoff)
                 .order_by(changed, jobs.c.id))
        uow = self._uow()
        try:
            with uow:
                rows = uow.connection.execute(query).mappings().all()
        except DBAPIError as err:
            raise connection_error(uow.engine, err) from err
        return [StoredCandidate(row_to_job(row), _aware(row["last_change_at"])) for row in rows]

    def records(self, planned: Sequence[PlannedJob]) -> list[JobRecord]:
        """As the port: each job's row, events (oldest first) and outbox rows as JSON."""
        out: list[JobRecord] = []
        uow = self._uow()
        try:
            with uow:
                conn = uow.connection
                for p in planned:
                    row = conn.execute(select(jobs).where(*_as_planned(p))).mappings().first()
                    if row is None:
                        continue
                    found = conn.execute(
                        select(events).where(events.c.subject == "job",
                                             events.c.subject_id == p.job_id)
                        .order_by(events.c.id)).mappings().all()
                    messages = conn.execute(
                        select(outbox).where(outbox.c.subject == "job",
                                             outbox.c.subject_id == p.job_id)
                        .order_by(outbox.c.id)).mappings().all()
                    out.append(JobRecord(row_to_job(row), json_ready(dict(row)),
                                         [json_ready(dict(e)) for e in found],
                                         [json_ready(dict(m)) for m in messages]))
        except DBAPIError as err:
            raise connection_error(uow.engine, err) from err
        return out

    def remove(self, planned: Sequence[PlannedJob], tombstone: Callable[[Job], Event],
               summary: Callable[[list[int], list[int]], Event]) -> tuple[list[int], list[int]]:
        """As the port, in one transaction."""
        removed: list[int] = []
        skipped: list[int] = []
        uow = self._uow()
        try:
            with uow:
                conn = uow.connection
                for p in planned:
                    job = self._take(conn, p)
                    if job is None:
                        skipped.append(p.job_id)
                        continue
                    conn.execute(delete(outbox).where(outbox.c.subject == "job",
                                                      outbox.c.subject_id == p.job_id))
                    conn.execute(delete(job_locks).where(job_locks.c.job_id == p.job_id))
                    uow.events.append(tombstone(job))
                    removed.append(p.job_id)
                uow.events.append(summary(removed, skipped))
                uow.commit()
        except DBAPIError as err:
            raise connection_error(uow.engine, err) from err
        return removed, skipped

    @staticmethod
    def _take(conn: Connection, p: PlannedJob) -> Job | None:
        """Delete the row as planned and return it, or None (changed or gone)."""
        row = conn.execute(select(jobs).where(*_as_planned(p))).mappings().first()
        if row is None:
            return None
        result = conn.execute(delete(jobs).where(*_as_planned(p)))
        return row_to_job(row) if result.rowcount == 1 else None


def _as_planned(p: PlannedJob) -> tuple[Any, ...]:
    return (jobs.c.id == p.job_id, jobs.c.version == p.version, jobs.c.status.in_(_FINAL))


def _aware(moment: datetime) -> datetime:
    """SQLite's ``coalesce`` of UTCDateTime columns may come back as text or naive."""
    if isinstance(moment, str):
        moment = datetime.fromisoformat(moment)
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
