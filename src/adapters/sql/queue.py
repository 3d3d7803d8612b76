"""The self-service queue's repositories over the ``printers`` and ``tickets`` tables
(``printcore.queue.ports.PrinterRepository`` / ``TicketRepository``).

Concurrency: ``update`` is a compare-and-set — ``UPDATE … WHERE id = ? AND version = ?``
— so of 50 members claiming one printer at the same instant exactly one row update
matches; every other transaction gets ConcurrentChangeError (PostgreSQL: the losers'
UPDATEs wait for the winner's row lock, then match no row; SQLite: ``BEGIN IMMEDIATE``
serialises the transactions, so the losers read the claimed printer and are refused).
Rows map one-to-one onto the entities' attrs fields.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from operator import attrgetter
from typing import Any, TypeVar

import attrs
from sqlalchemy import Connection, Table, func, insert, select, text, update

from adapters.sql.base import HasConnection
from adapters.sql.batch import DriverRows, Recordset, chunks, is_postgresql
from adapters.sql.tables import printers, tickets
from printcore.errors import ConcurrentChangeError, NotFoundError
from printcore.queue.entities import OPEN_TICKET_STATUSES, Printer, Ticket
from printcore.queue.ports import QueueSlot

__all__ = ["SqlPrinterRepository", "SqlTicketRepository"]

_E = TypeVar("_E", Printer, Ticket)


def _to_row(entity: Printer | Ticket) -> dict[str, Any]:
    return {f.name: getattr(entity, f.name) for f in attrs.fields(type(entity))}


def _from_row(cls: type[_E], row: Mapping[str, Any]) -> _E:
    return cls(**{f.name: row[f.name] for f in attrs.fields(cls)})


def _rows_of(entities: Sequence[Printer | Ticket]) -> list[dict[str, Any]]:
    """:func:`_to_row` of each entity of one class (one attrgetter for the batch)."""
    names = [f.name for f in attrs.fields(type(entities[0]))]
    get = attrgetter(*names)
    return [dict(zip(names, get(entity), strict=True)) for entity in entities]


class _Queue:
    def __init__(self, uow: HasConnection) -> None:
        self._uow = uow

    @property
    def _conn(self) -> Connection:
        return self._uow.connection

    def _cas(self, table: Table, entity: Printer | Ticket, what: str) -> None:
        """Store ``entity`` if its row still has ``entity.version``; bump both."""
        if entity.id is None:
            raise ValueError(f"This {what} has no id yet; add it first.")
        values = _to_row(entity)
        del values["id"], values["version"]
        result = self._conn.execute(
            update(table)
            .where(table.c.id == entity.id, table.c.version == entity.version)
            .values(**values, version=table.c.version + 1)
        )
        if result.rowcount != 1:
            exists = self._conn.execute(select(table.c.id).where(table.c.id == entity.id))
            if exists.first() is None:
                raise NotFoundError(f"There is no {what} #{entity.id}.")
            label = f"Printer {entity.name}" if isinstance(entity, Printer) else (
                f"Ticket #{entity.id}")
            raise ConcurrentChangeError(
                message=f"{label} was changed by someone else just now; try again.")
        entity.version += 1

    def _cas_many(self, table: Table, entities: Sequence[Printer | Ticket], what: str) -> None:
        """Compare-and-set of many rows: the same guarantee as :meth:`_cas` — when any
        row's version moved (or the row is gone), nothing of the unit of work may commit:
        ConcurrentChangeError saying how many of the batch were changed, raised after the
        statement (the unit of work rolls the batch back). PostgreSQL: one
        ``UPDATE … FROM json_to_recordset`` per :data:`~adapters.sql.batch.CHUNK_ROWS`
        rows (:meth:`_cas_many_pg`); SQLite: one driver ``executemany``
        (:meth:`_cas_many_executemany`). Falls back to :meth:`_cas` per row where the driver cannot count the rows
        an ``executemany`` matched. Raises ValueError for an entity without an id."""
        if not entities:
            return
        pg = is_postgresql(self._conn)
        if len(entities) == 1 or not (pg or self._conn.dialect.supports_sane_multi_rowcount):
            for entity in entities:
                self._cas(table, entity, what)
            return
        if any(entity.id is None for entity in entities):
            raise ValueError(f"This {what} has no id yet; add it first.")
        rows = _rows_of(entities)
        if pg:
            matched = self._cas_many_pg(table, rows)
        else:
            matched = self._cas_many_executemany(table, rows)
        if matched != len(rows):
            raise ConcurrentChangeError(
                message=f"{len(rows) - matched} of {len(rows)} {what}s were changed "
                        "by someone else just now; try again.")
        for entity in entities:
            entity.version += 1

    def _cas_many_pg(self, table: Table, rows: Sequence[Mapping[str, Any]]) -> int:
        """``UPDATE table AS t SET col = v.col, …, version = t.version + 1 FROM
        <rows as a recordset> AS v WHERE t.id = v.id AND t.version = v.version``
        (:mod:`adapters.sql.batch`), in chunks; the number of rows matched. A row
        changed by a concurrent transaction is checked again by PostgreSQL once that one
        commits (its version no longer matches), as with a one-row UPDATE."""
        source = Recordset(self._conn, table, list(rows[0]))
        sets = [f"{q} = {v}, " for name, q, v in zip(source.names, source.quoted,
                                                     source.values, strict=True)
                if name not in ("id", "version")]
        statement = text(
            f"UPDATE {source.table_sql} AS t SET {''.join(sets)}version = t.version + 1 "
            f"FROM {source.sql} WHERE t.id = v.id AND t.version = v.version")
        return sum(self._conn.execute(statement, source.params(chunk)).rowcount
                   for chunk in chunks(rows))

    def _cas_many_executemany(self, table: Table, rows: Sequence[Mapping[str, Any]]) -> int:
        """``UPDATE table SET col = ?, …, version = version + 1 WHERE id = ? AND
        version = ?`` as one driver executemany (:class:`~adapters.sql.batch.DriverRows`:
        the values processed as SQLAlchemy would, without its per-row cost); the rows
        matched."""
        names = [name for name in rows[0] if name not in ("id", "version")]
        source = DriverRows(self._conn, table, [*names, "id", "version"])
        *marks, id_mark, version_mark = source.marks
        sets = "".join(f"{q} = {m}, " for q, m in zip(source.quoted[:-2], marks, strict=True))
        statement = (f"UPDATE {source.table_sql} SET {sets}version = version + 1 "
                     f"WHERE id = {id_mark} AND version = {version_mark}")
        return int(self._conn.exec_driver_sql(statement, source.params(rows)).rowcount)

    def _insert(self, table: Table, entity: Printer | Ticket) -> int:
        values = _to_row(entity)
        values.pop("id")
        values["version"] = 1
        key = self._conn.execute(insert(table).values(**values)).inserted_primary_key
        if key is None or key[0] is None:
            raise RuntimeError("The database did not report the id of the new row.")
        entity.id, entity.version = int(key[0]), 1
        return entity.id


class SqlPrinterRepository(_Queue):
    def list(self) -> list[Printer]:
        """All printers, by name."""
        rows = self._conn.execute(select(printers)).mappings()
        return sorted((_from_row(Printer, r) for r in rows), key=lambda p: p.name)

    def get(self, name: str) -> Printer:
        """Raises NotFoundError naming the known printers."""
        row = self._conn.execute(select(printers).where(printers.c.name == name)).mappings()
        found = row.first()
        if found is None:
            names = sorted(self._conn.execute(select(printers.c.name)).scalars())
            known = ", ".join(names) or "none configured"
            raise NotFoundError(f"There is no printer called {name!r}; printers: {known}.")
        return _from_row(Printer, found)

    def add(self, printer: Printer) -> None:
        self._insert(printers, printer)

    def update(self, printer: Printer) -> None:
        """Compare-and-set on the version. Raises ConcurrentChangeError."""
        self._cas(printers, printer, "printer")

    def update_many(self, many: Sequence[Printer]) -> None:
        """``update`` of each, in one statement. Raises ConcurrentChangeError."""
        self._cas_many(printers, many, "printer")


class SqlTicketRepository(_Queue):
    def add(self, ticket: Ticket) -> int:
        return self._insert(tickets, ticket)

    def get(self, ticket_id: int) -> Ticket:
        """Raises NotFoundError."""
        found = self._conn.execute(
            select(tickets).where(tickets.c.id == ticket_id)).mappings().first()
        if found is None:
            raise NotFoundError(f"There is no ticket #{ticket_id}.")
        return _from_row(Ticket, found)

    def update(self, ticket: Ticket) -> None:
        """Compare-and-set on the version. Raises ConcurrentChangeError."""
        self._cas(tickets, ticket, "ticket")

    def update_many(self, many: Sequence[Ticket]) -> None:
        """``update`` of each, in one statement. Raises ConcurrentChangeError."""
        self._cas_many(tickets, many, "ticket")

    def open_tickets(self) -> list[Ticket]:
        """Open tickets in FIFO order (``queue_key``, then id)."""
        query = (select(tickets).where(tickets.c.status.in_(OPEN_TICKET_STATUSES))
                 .order_by(tickets.c.queue_key, tickets.c.id))
        return [_from_row(Ticket, r) for r in self._conn.execute(query).mappings()]

    def for_member(self, member: str, open_only: bool = False) -> list[Ticket]:
        """A member's tickets, newest first."""
        query = select(tickets).where(tickets.c.member == member)
        if open_only:
            query = query.where(tickets.c.status.in_(OPEN_TICKET_STATUSES))
        query = query.order_by(tickets.c.id.desc())
        return [_from_row(Ticket, r) for r in self._conn.execute(query).mappings()]

    def open_tickets_page(self, queued_limit: int) -> list[Ticket]:
        """The held and printing tickets and the first ``queued_limit`` queued, FIFO."""
        order = (tickets.c.queue_key, tickets.c.id)
        held = (select(tickets).where(tickets.c.status.in_(("offered", "claimed", "printing")))
                .order_by(*order))
        queued = (select(tickets).where(tickets.c.status == "queued").order_by(*order)
                  .limit(queued_limit))
        found = [_from_row(Ticket, r) for q in (held, queued)
                 for r in self._conn.execute(q).mappings()]
        found.sort(key=lambda t: (t.queue_key, t.id or 0))
        return found

    def queue_line(self) -> list[QueueSlot]:
        """(id, status, est_minutes) of every open ticket, FIFO: three plain columns."""
        query = (select(tickets.c.id, tickets.c.status, tickets.c.est_minutes)
                 .where(tickets.c.status.in_(OPEN_TICKET_STATUSES))
                 .order_by(tickets.c.queue_key, tickets.c.id))
        make = QueueSlot._make
        return [make(row) for row in self._conn.execute(query).all()]  # one fetchall

    def position(self, ticket: Ticket) -> int:
        """1 + the queued tickets ahead (one count on the (status, queue_key) index)."""
        ahead = (tickets.c.queue_key < ticket.queue_key) | (
            (tickets.c.queue_key == ticket.queue_key) & (tickets.c.id < (ticket.id or 0)))
        query = select(func.count()).select_from(tickets).where(
            tickets.c.status == "queued", ahead)
        return 1 + int(self._conn.execute(query).scalar_one())

    def last_queue_key(self) -> float | None:
        query = select(func.max(tickets.c.queue_key)).where(
            tickets.c.status.in_(OPEN_TICKET_STATUSES))
        found = self._conn.execute(query).scalar_one()
        return None if found is None else float(found)

    def closed(self, limit: int = 500) -> list[Ticket]:
        """Done tickets with a known duration or an upper bound, newest first."""
        query = (select(tickets)
                 .where(tickets.c.status == "done",
                        tickets.c.actual_minutes.is_not(None)
                        | tickets.c.bound_minutes.is_not(None))
                 .order_by(tickets.c.id.desc()).limit(limit))
        return [_from_row(Ticket, r) for r in self._conn.execute(query).mappings()]
