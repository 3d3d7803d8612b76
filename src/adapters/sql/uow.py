"""The unit of work and repositories over SQLAlchemy Core (SQLite and PostgreSQL).

``SqlUnitOfWork(engine, after_commit=None)`` implements ``printcore.ports.UnitOfWork`` (with
its ``outbox``, ``adapters.sql.outbox``) and the queue's
``printcore.queue.ports.QueueUnitOfWork`` (repositories in ``adapters.sql.queue``): each ``with`` block
checks out one connection and runs one transaction, rolled back on leaving unless
``commit()`` was called. After ``commit()`` the next statement starts a new transaction.
Use one instance per thread (e.g. ``lambda: SqlUnitOfWork(engine)`` as the factory).

Concurrency: ``jobs.update``/``jobs.remove`` only touch the row whose ``version`` still
equals the job's, so of two workstations acting on one job exactly one wins and the other
gets ConcurrentChangeError. On SQLite every transaction begins with ``BEGIN IMMEDIATE``
(see ``engine.make_engine``), so writers queue for up to the busy timeout instead of
failing with "database is locked"; on PostgreSQL, READ COMMITTED plus the version check
is enough (the loser's UPDATE waits for the winner's row lock and then matches no row).
"""

from __future__ import annotations

import builtins
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from types import TracebackType
from typing import Any, Self

import attrs
from sqlalchemy import (
    Connection,
    CursorResult,
    DateTime,
    Engine,
    Table,
    and_,
    case,
    cast,
    delete,
    func,
    insert,
    literal,
    or_,
    select,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.sql import ColumnElement

from adapters.sql.batch import DriverRows, Recordset, chunks, is_postgresql
from adapters.sql.convert import (
    event_to_row,
    job_to_row,
    row_to_event,
    row_to_job,
    utc_iso,
)
from adapters.sql.engine import connection_error
from adapters.sql.locks import SqlJobLockRepository
from adapters.sql.outbox import SqlOutboxRepository
from adapters.sql.queue import SqlPrinterRepository, SqlTicketRepository
from adapters.sql.sessions import SqlSessionRepository
from adapters.sql.tables import events, jobs, settings, staff
from printcore.errors import ConcurrentChangeError, NotFoundError, StorageError
from printcore.events import Event
from printcore.outbox import OutboxRepository
from printcore.ports import (
    EventLog,
    SessionRepository,
    SettingsRepository,
    StaffMember,
    StaffRepository,
)
from printcore.queue.ports import PrinterRepository, TicketRepository
from printcore.requests.job import Job
from printcore.requests.ports import JobLockRepository, JobRepository
from printcore.requests.search import JobQuery
from printcore.staff import StaffStateError

__all__ = ["SqlUnitOfWork"]


class _Repository:
    def __init__(self, uow: SqlUnitOfWork) -> None:
        self._uow = uow

    @property
    def _conn(self) -> Connection:
        return self._uow.connection


class SqlJobRepository(_Repository):
    """Print requests in the ``jobs`` table (``printcore.ports.JobRepository``)."""

    def add(self, job: Job) -> int:
        """Insert ``job`` as a new row; set ``job.id`` and ``job.version`` (1); return the id."""
        row = job_to_row(job)
        row.pop("id")
        row["version"] = 1
        job_id = _inserted_id(self._conn.execute(insert(jobs).values(**row)))
        job.id, job.version = job_id, 1
        return job_id

    def get(self, job_id: int) -> Job:
        """Raises NotFoundError."""
        row = self._conn.execute(select(jobs).where(jobs.c.id == job_id)).mappings().first()
        if row is None:
            raise NotFoundError(f"There is no job {job_id}.")
        return row_to_job(row)

    def update(self, job: Job) -> None:
        """Store ``job`` if the row's version still equals ``job.version``; bump both.

        Raises ConcurrentChangeError when the row has another version, NotFoundError when
        it is gone.
        """
        job_id = self._require_id(job)
        values = job_to_row(job)
        del values["id"], values["version"]
        result = self._conn.execute(
            update(jobs)
            .where(jobs.c.id == job_id, jobs.c.version == job.version)
            .values(**values, version=jobs.c.version + 1)
        )
        if result.rowcount != 1:
            self._raise_missing_or_changed(job_id)
        job.version += 1

    def remove(self, job: Job) -> None:
        """Delete the row (same version check and errors as ``update``)."""
        job_id = self._require_id(job)
        result = self._conn.execute(
            delete(jobs).where(jobs.c.id == job_id, jobs.c.version == job.version)
        )
        if result.rowcount != 1:
            self._raise_missing_or_changed(job_id)

    def list(self, status: str | None = None, limit: int = 100, offset: int = 0) -> list[Job]:
        """Jobs in ``status`` oldest first, or all jobs newest first (by created_at, id)."""
        query = select(jobs)
        if status is None:
            query = query.order_by(jobs.c.created_at.desc(), jobs.c.id.desc())
        else:
            query = query.where(jobs.c.status == status)
            query = query.order_by(jobs.c.created_at, jobs.c.id)
        rows = self._conn.execute(query.limit(limit).offset(offset)).mappings()
        return [row_to_job(row) for row in rows]

    def search(self, query: JobQuery) -> tuple[builtins.list[Job], int]:
        """The page of jobs ``query`` finds and how many it finds in all.

        ``q`` is a ``LIKE '%…%'`` on ``search_text`` (``%``, ``_`` and ``\\`` in it are
        literal), served on PostgreSQL by the pg_trgm GIN index; a ``q`` that is a job id
        (``12``, ``#12``) also matches that id. Filters compare ``lower()`` of the column
        (ASCII-only on SQLite). Sort ``name`` orders by ``search_text`` in code-point
        order on both databases (``COLLATE "C"`` on PostgreSQL), like the memory fake.
        """
        conditions: list[Any] = []
        if query.status is not None:
            conditions.append(jobs.c.status == query.status)
        for name, value in query.filters.items():
            conditions.append(func.lower(jobs.c[name]) == value.lower())
        if query.q:
            escaped = (query.needle.replace("\\", "\\\\").replace("%", "\\%")
                       .replace("_", "\\_"))
            text_match = jobs.c.search_text.like(f"%{escaped}%", escape="\\")
            job_id = query.job_id
            conditions.append(text_match if job_id is None
                              else or_(jobs.c.id == job_id, text_match))
        if query.sort == "name":
            key: ColumnElement[Any] = jobs.c.search_text
            if self._conn.dialect.name == "postgresql":
                key = key.collate("C")
            order = [key, jobs.c.id]
        else:
            order = [jobs.c.created_at, jobs.c.id]
        # The page and the count in one statement (one index scan, not two), ordered
        # and counted on narrow rows, then joined for the page's full rows.
        hits = (
            select(jobs.c.id, func.count().over().label("search_total"),
                   func.row_number().over(order_by=order).label("search_rank"))
            .where(*conditions).order_by(*order).limit(query.limit).offset(query.offset)
            .subquery()
        )
        rows = self._conn.execute(
            select(jobs, hits.c.search_total).join(hits, hits.c.id == jobs.c.id)
            .order_by(hits.c.search_rank)
        ).mappings().all()
        if rows:
            total = rows[0]["search_total"]
        elif query.offset == 0:
            total = 0
        else:  # a page past the end: count on its own
            total = self._conn.execute(
                select(func.count()).select_from(jobs).where(*conditions)
            ).scalar_one()
        return [row_to_job(row) for row in rows], int(total)

    def count_ready_ahead(self, confirmed_at: datetime, job_id: int) -> int:
        """Ready-to-print jobs before (``confirmed_at``, ``job_id``) in the print line:
        one COUNT on the (status, confirmed_at) index; a row without ``confirmed_at``
        counts by its ``created_at``."""
        when = func.coalesce(jobs.c.confirmed_at, jobs.c.created_at)
        query = select(func.count()).select_from(jobs).where(
            jobs.c.status == "ready_to_print",
            jobs.c.id != job_id,
            or_(when < confirmed_at, and_(when == confirmed_at, jobs.c.id < job_id)),
        )
        return int(self._conn.execute(query).scalar_one())

    def due_for_reminder(self, now: datetime, until: datetime, limit: int) -> builtins.list[int]:
        """Pending jobs whose link expires in ``[now, until]`` with no reminder for it."""
        query = (
            select(jobs.c.id)
            .where(
                jobs.c.status == "pending",
                jobs.c.confirmation_nonce.is_not(None),
                jobs.c.confirmation_expires_at >= now,
                jobs.c.confirmation_expires_at <= until,
                or_(jobs.c.reminder_nonce.is_(None),
                    jobs.c.reminder_nonce != jobs.c.confirmation_nonce),
            )
            .order_by(jobs.c.confirmation_expires_at, jobs.c.id)
            .limit(limit)
        )
        return [int(job_id) for job_id in self._conn.execute(query).scalars()]

    def with_payments_between(self, start: datetime, end: datetime) -> builtins.list[Job]:
        """Jobs with a payment recorded in ``[start, end)`` (UTC), by id: an EXISTS over
        the ``payments`` JSON array's elements (``json_array_elements`` and a timestamptz
        cast on PostgreSQL; ``json_each`` on SQLite, comparing the stored UTC ISO 8601
        texts, which sort as times since they all end in ``+00:00``)."""
        if self._conn.dialect.name == "postgresql":
            element = func.json_array_elements(jobs.c.payments).table_valued("value")
            at: Any = cast(element.c.value.op("->>")("recorded_at"), DateTime(timezone=True))
            low: Any = start
            high: Any = end
        else:
            element = func.json_each(jobs.c.payments).table_valued("value")
            at = func.json_extract(element.c.value, "$.recorded_at")
            low, high = utc_iso(start), utc_iso(end)
        paid = select(literal(1)).select_from(element).where(at >= low, at < high).exists()
        rows = self._conn.execute(select(jobs).where(paid).order_by(jobs.c.id)).mappings()
        return [row_to_job(row) for row in rows]

    def count_by_status(self) -> dict[str, int]:
        """Number of jobs per status; statuses without jobs are left out."""
        query = select(jobs.c.status, func.count()).group_by(jobs.c.status)
        return {status: int(n) for status, n in self._conn.execute(query)}

    def count_by_status_and_review(self) -> dict[str, tuple[int, int]]:
        """``{status: (jobs, of which not reviewed)}``, one grouped query."""
        new = func.sum(case((jobs.c.reviewed_at.is_(None), 1), else_=0))
        query = select(jobs.c.status, func.count(), new).group_by(jobs.c.status)
        return {status: (int(n), int(u or 0)) for status, n, u in self._conn.execute(query)}

    def entered_status_at(self, job_ids: Sequence[int]) -> dict[int, datetime]:
        """When each job entered its current status: the newest ``events`` row with
        ``to_status`` equal to the job's status (and a different ``from_status``), one
        query joining ``events`` to ``jobs`` (index: subject, subject_id)."""
        ids = sorted({int(i) for i in job_ids})
        if not ids:
            return {}
        moved_in = events.join(jobs, and_(jobs.c.id == events.c.subject_id,
                                          jobs.c.status == events.c.to_status))
        query = (
            select(events.c.subject_id, func.max(events.c.at))
            .select_from(moved_in)
            .where(events.c.subject == "job", events.c.subject_id.in_(ids),
                   or_(events.c.from_status.is_(None),
                       events.c.from_status != events.c.to_status))
            .group_by(events.c.subject_id)
        )
        return {int(i): at for i, at in self._conn.execute(query) if at is not None}

    @staticmethod
    def _require_id(job: Job) -> int:
        if job.id is None:
            raise ValueError("This job has no id yet; add it before updating or removing it.")
        return job.id

    def _raise_missing_or_changed(self, job_id: int) -> None:
        exists = self._conn.execute(select(jobs.c.id).where(jobs.c.id == job_id)).first()
        if exists is None:
            raise NotFoundError(f"There is no job {job_id}.")
        raise ConcurrentChangeError(job_id)


class SqlEventLog(_Repository):
    """The append-only ``events`` table (``printcore.ports.EventLog``)."""

    def append(self, event: Event) -> Event:
        """Insert ``event`` and return it with its new id."""
        row = event_to_row(event)
        row.pop("id", None)
        event_id = _inserted_id(self._conn.execute(insert(events).values(**row)))
        self._uow.changed = True
        return attrs.evolve(event, id=event_id)

    def append_many(self, many: Sequence[Event]) -> None:
        """Insert ``many``, ids ascending in the given order, none read back. PostgreSQL:
        ``INSERT … SELECT … FROM json_to_recordset … ORDER BY ord`` per
        :data:`~adapters.sql.batch.CHUNK_ROWS` events; SQLite: one driver
        ``executemany`` (:class:`~adapters.sql.batch.DriverRows`).
        Raises ValueError for an event with a naive ``at``."""
        if not many:
            return
        rows = []
        for event in many:
            row = event_to_row(event)
            row.pop("id", None)
            rows.append(row)
        if is_postgresql(self._conn):
            self._append_many_pg(rows)
        else:
            source = DriverRows(self._conn, events, list(rows[0]))
            self._conn.exec_driver_sql(source.insert_sql(), source.params(rows))
        self._uow.changed = True

    def _append_many_pg(self, rows: Sequence[Mapping[str, Any]]) -> None:
        source = Recordset(self._conn, events, list(rows[0]))
        statement = source.insert()
        for chunk in chunks(rows):
            self._conn.execute(statement, source.params(chunk))

    def for_subject(self, subject: str, subject_id: int) -> list[Event]:
        """Events of one subject (e.g. ``"job"``, 42), oldest first."""
        query = (
            select(events)
            .where(events.c.subject == subject, events.c.subject_id == subject_id)
            .order_by(events.c.id)
        )
        return [row_to_event(row) for row in self._conn.execute(query).mappings()]


class SqlStaffRepository(_Repository):
    """Staff names in the ``staff`` table (``printcore.ports.StaffRepository``)."""

    def add(self, member: StaffMember) -> None:
        """Add ``member``, or replace the stored one of that name (reactivating it)."""
        values = {"name": member.name, "active": member.active, "added_at": member.added_at}
        self._conn.execute(_upsert(self._conn, staff, values, "name"))

    def get(self, name: str) -> StaffMember | None:
        row = self._conn.execute(select(staff).where(staff.c.name == name)).mappings().first()
        return None if row is None else StaffMember(row["name"], row["active"], row["added_at"])

    def list(self, active_only: bool = True) -> list[StaffMember]:
        """Members sorted by name (Python order, whatever the database's collation)."""
        query = select(staff)
        if active_only:
            query = query.where(staff.c.active.is_(True))
        members = [
            StaffMember(row["name"], row["active"], row["added_at"])
            for row in self._conn.execute(query).mappings()
        ]
        return sorted(members, key=lambda m: m.name)

    def set_active(self, name: str, active: bool) -> None:
        """Raises NotFoundError for an unknown name."""
        result = self._conn.execute(
            update(staff).where(staff.c.name == name).values(active=active)
        )
        if result.rowcount != 1:
            raise NotFoundError(f"No staff member called {name!r}.")

    def rename(self, old: str, new: str) -> None:
        """Raises NotFoundError for an unknown ``old``; StaffStateError (409) when ``new``
        was taken meanwhile by another transaction (the unique key refuses it)."""
        try:
            with self._conn.begin_nested():
                result = self._conn.execute(
                    update(staff).where(staff.c.name == old).values(name=new))
        except IntegrityError:
            raise StaffStateError("rename", "in_use",
                                  f"{new!r} is already on the staff list; choose another name.",
                                  "new_name") from None
        if result.rowcount != 1:
            raise NotFoundError(f"No staff member called {old!r}.")


class SqlSettingsRepository(_Repository):
    """Key → text values in the ``settings`` table (``printcore.ports.SettingsRepository``)."""

    def get(self, key: str) -> str | None:
        return self._conn.execute(
            select(settings.c.value).where(settings.c.key == key)
        ).scalar_one_or_none()

    def set(self, key: str, value: str) -> None:
        self._conn.execute(_upsert(self._conn, settings, {"key": key, "value": value}, "key"))


def _inserted_id(result: CursorResult[Any]) -> int:
    key = result.inserted_primary_key
    if key is None or key[0] is None:
        raise RuntimeError("The database did not report the id of the new row.")
    return int(key[0])


def _upsert(conn: Connection, table: Table, values: dict[str, Any], key: str) -> Any:
    """INSERT ... ON CONFLICT (key) DO UPDATE, for SQLite and PostgreSQL."""
    dialect_insert = postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert
    stmt = dialect_insert(table).values(**values)
    return stmt.on_conflict_do_update(
        index_elements=[key], set_={name: stmt.excluded[name] for name in values if name != key}
    )


class SqlUnitOfWork:
    """One database transaction per ``with`` block (``printcore.ports.UnitOfWork``).

    Raises StorageError on entering when the database cannot be reached, and on leaving
    when the connection was lost inside the block (a database restarted mid-request:
    SQLAlchemy marks the error ``connection_invalidated``); the transaction was rolled
    back then, unless the connection broke during COMMIT itself, when its fate is
    unknown (the message says so). pool_pre_ping replaces the dead connections.
    """

    def __init__(
        self, engine: Engine, after_commit: Callable[[Sequence[int]], None] | None = None,
        after_change: Callable[[], None] | None = None,
    ) -> None:
        self.engine = engine
        self.after_commit = after_commit
        #: Called after a commit that appended events (live updates: adapters.live).
        self.after_change = after_change
        self.changed = False
        self._connection: Connection | None = None
        # Typed as the ports: the protocol's attributes are settable, hence invariant.
        self.jobs: JobRepository = SqlJobRepository(self)
        self.locks: JobLockRepository = SqlJobLockRepository(self)
        self.events: EventLog = SqlEventLog(self)
        self.staff: StaffRepository = SqlStaffRepository(self)
        self.settings: SettingsRepository = SqlSettingsRepository(self)
        self.sessions: SessionRepository = SqlSessionRepository(self)
        self.printers: PrinterRepository = SqlPrinterRepository(self)
        self.tickets: TicketRepository = SqlTicketRepository(self)
        self._outbox = SqlOutboxRepository(self)
        self.outbox: OutboxRepository = self._outbox

    @property
    def connection(self) -> Connection:
        """The open connection. Raises RuntimeError outside a ``with`` block."""
        if self._connection is None:
            raise RuntimeError("Use the unit of work inside `with uow:`.")
        return self._connection

    def __enter__(self) -> Self:
        if self._connection is not None:
            raise RuntimeError("This unit of work is already in use; make a new one.")
        try:
            conn = self.engine.connect()
        except DBAPIError as exc:
            raise connection_error(self.engine, exc) from exc
        try:
            conn.begin()
        except BaseException:
            conn.close()
            raise
        self._connection = conn
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        conn, self._connection = self._connection, None
        self._outbox.added = []
        self.changed = False
        if conn is None:
            return
        lost = isinstance(exc, DBAPIError) and exc.connection_invalidated
        try:
            if conn.in_transaction():
                conn.rollback()
        except DBAPIError as failed:
            # A rollback on a connection lost meanwhile: the server dropped the
            # transaction with the connection, which is what the rollback was for.
            if not (lost or failed.connection_invalidated):
                raise
        finally:
            conn.close()
        if lost:
            raise StorageError(
                "The database connection was lost while this was being saved (the database "
                "restarted?); nothing was changed. Try again in a few seconds.") from exc

    def commit(self) -> None:
        """Commit the work so far; later statements in the block start a new transaction.

        Then hands the ids of the outbox rows this transaction added to ``after_commit``
        (the relay's fast path), and calls ``after_change`` when it appended events (the
        live updates' wake-up); neither hook may raise (both are best effort: the relay
        and the live feed poll for what they missed).
        """
        try:
            self.connection.commit()
        except DBAPIError as exc:
            if not exc.connection_invalidated:
                raise
            raise StorageError(
                "The database connection was lost while this was being committed (the "
                "database restarted?); it may or may not have been saved. Reload to check "
                "before trying again.") from exc
        added, self._outbox.added = self._outbox.added, []
        changed, self.changed = self.changed, False
        if added and self.after_commit is not None:
            self.after_commit(added)
        if changed and self.after_change is not None:
            self.after_change()

    def rollback(self) -> None:
        self._outbox.added = []
        self.changed = False
        self.connection.rollback()
