"""Batch writes of thousands of rows (the queue sweep's), without SQLAlchemy's per-row cost.

**PostgreSQL: one JSON parameter per batch** (:class:`Recordset`). An ``executemany`` of N
rows is N statements (psycopg pipelines them, but each is still sent, planned and
counted), and SQLAlchemy's insertmanyvalues builds one statement with N × columns
placeholders that psycopg parses in Python (``_split_query``: 2.6 s of a profiled
10,000-deadline sweep). Arrays per column (``unnest``) make the statement short, but
psycopg then quotes every array item in Python (2.7 s of the same profile). Here the
batch travels as one JSON array of objects, written by ``json.dumps`` (C), and
PostgreSQL's ``json_to_recordset`` turns it back into typed rows::

    UPDATE tickets AS t SET status = v.status, …, version = t.version + 1
    FROM ROWS FROM (json_to_recordset(CAST(:rows AS JSON))
                    AS (c0 INTEGER, c1 INTEGER, c2 VARCHAR(32), …))
         WITH ORDINALITY AS v(id, version, status, …, ord)
    WHERE t.id = v.id AND t.version = v.version

Each row is an object keyed ``c0``, ``c1``, … (the columns' positions) without its NULLs:
10,000 printers are 1.3 MB of JSON instead of 5.6 MB with column names and nulls, less
to write and for PostgreSQL to parse (parsing was a third of the server's time for an
INSERT of 5,000 events, measured).

How values are encoded, so that a row reads back as the one-row path stores it:

- datetimes go through the column's own bind processing first (UTCDateTime: converted
  to UTC, ValueError for a naive one), then ISO 8601 (``2026-12-01T09:00:00.000001+00:00``),
  which ``timestamptz`` reads exactly;
- JSON columns (event ``details``, outbox ``payload``) are nested in the batch as they
  are: PostgreSQL keeps a ``json`` field's text as written, and ``json.dumps`` writes a
  nested value exactly as it writes that value alone, which is what psycopg stores for a
  one-row write (with an engine ``json_serializer``, that serializer's text is carried
  as a string and cast to JSON instead);
- bytes become ``\\x…`` hex text, ``bytea``'s input format;
- ``None`` is left out (a missing field is NULL); ints, floats (repr: exact; NaN and
  infinities refused) and strings are JSON's own.

**SQLite: the driver's own executemany** (:class:`DriverRows`). sqlite3's
``executemany`` is fast; what costs is SQLAlchemy building and processing a parameter
dict per row (0.5 s of 10,000 tickets' and printers' updates). Here the rows become
positional tuples, each value through the column's own bind processor (so exactly what
SQLAlchemy would send: UTCDateTime's naive UTC wall time in SQLite's text format, JSON
as ``json.dumps`` text), for ``Connection.exec_driver_sql``.

In both, a batch repeats its datetimes (a sweep's ``now``, the windows it opens), so
each distinct one (instant and time zone) is encoded once per column type.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import JSON, Column, Connection, Table, text
from sqlalchemy.sql.elements import TextClause
from sqlalchemy.types import TypeDecorator

__all__ = ["CHUNK_ROWS", "DriverRows", "Recordset", "chunks", "is_postgresql"]

#: Rows per PostgreSQL statement: bounds one parameter (a few MB of JSON for the widest
#: table) while keeping the round trips few (two for 10,000 rows).
CHUNK_ROWS = 5000

_T = TypeVar("_T")
_Encode = Callable[[Any], Any]
#: Encoded datetimes of one batch, by (encoder, instant, time zone).
_Done = dict[tuple[_Encode, datetime, Any], Any]


def is_postgresql(conn: Connection) -> bool:
    return conn.dialect.name == "postgresql"


def chunks(items: Sequence[_T], size: int | None = None) -> Iterator[Sequence[_T]]:
    """``items`` in consecutive slices of at most ``size`` (default :data:`CHUNK_ROWS`,
    read at each call), order kept."""
    size = size or CHUNK_ROWS
    for start in range(0, len(items), size):
        yield items[start:start + size]


class _Columns:
    """Some columns of one table, quoted for the connection's dialect."""

    def __init__(self, conn: Connection, table: Table, names: Sequence[str]) -> None:
        preparer = conn.dialect.identifier_preparer
        #: The column names, as given. Raises KeyError for a column the table lacks.
        self.names = list(names)
        self.columns: list[Column[Any]] = [table.c[name] for name in self.names]
        #: The quoted column names, in :attr:`names` order.
        self.quoted = [preparer.quote(name) for name in self.names]
        #: The quoted table name (with its schema, if it has one).
        self.table_sql = preparer.format_table(table)
        self._expected = set(self.names)

    def check(self, row: Mapping[str, Any]) -> None:
        """Raises KeyError unless ``row`` has exactly these columns."""
        if row.keys() != self._expected:
            raise KeyError(f"A batch row has the columns {sorted(row)}, "
                           f"not {sorted(self._expected)}.")


class Recordset(_Columns):
    """The FROM item ``ROWS FROM (json_to_recordset(CAST(:rows AS JSON)) AS (<col> <type>,
    …)) WITH ORDINALITY AS v(<col>, …, ord)`` over some columns of one table (PostgreSQL),
    and the ``:rows`` parameter for a batch of row mappings.

    ``v.ord`` is a row's 1-based position in its batch (``ORDER BY v.ord`` keeps the
    batch's order); :attr:`values` are the SQL expressions of the columns' values.
    """

    def __init__(self, conn: Connection, table: Table, names: Sequence[str]) -> None:
        super().__init__(conn, table, names)
        dialect = conn.dialect
        #: The SQL expressions of the values (``v."col"``), in :attr:`names` order.
        self.values = [f"v.{q}" for q in self.quoted]
        custom_json = getattr(dialect, "_json_serializer", None)
        definitions = []
        self._encoders: list[tuple[str, _Encode]] = []
        for i, column in enumerate(self.columns):
            kind = column.type.compile(dialect=dialect)
            process = column.type.dialect_impl(dialect).bind_processor(dialect)
            if isinstance(column.type, JSON):
                if custom_json is not None:  # carried as the serializer's text
                    kind = "TEXT"
                    self.values[i] = f"CAST(v.{self.quoted[i]} AS JSON)"
                    self._encoders.append((column.name, custom_json))
                # else nested in the batch as it is (see the module doc)
            elif _python_type(column) is bytes:
                self._encoders.append((column.name, _bytea))
            elif _python_type(column) is datetime:
                self._encoders.append((column.name, _iso_after(process)))
            elif process is not None:
                self._encoders.append((column.name, process))
            definitions.append(f"c{i} {kind}")
        #: The FROM item, to put in a statement's text.
        self.sql = (f"ROWS FROM (json_to_recordset(CAST(:rows AS JSON)) "
                    f"AS ({', '.join(definitions)})) "
                    f"WITH ORDINALITY AS v({', '.join(self.quoted)}, ord)")
        self._keys = [f"c{i}" for i in range(len(self.names))]
        self._encode_at = [(self.names.index(name), encode) for name, encode in self._encoders]

    def insert(self) -> TextClause:
        """``INSERT INTO <table> (<cols>) SELECT <values> FROM <this> ORDER BY v.ord``:
        the rows inserted in the batch's order, so identity values ascend with it."""
        return text(f"INSERT INTO {self.table_sql} ({', '.join(self.quoted)}) "
                    f"SELECT {', '.join(self.values)} FROM {self.sql} ORDER BY v.ord")

    def params(self, rows: Sequence[Mapping[str, Any]]) -> dict[str, str]:
        """``{"rows": <JSON text>}`` for ``rows``, each with exactly the columns of
        :attr:`names`. Raises KeyError for a row with other columns, ValueError for a
        naive datetime, TypeError for a value JSON cannot carry."""
        done: _Done = {}
        names, keys, encode_at = self.names, self._keys, self._encode_at
        batch = []
        for row in rows:
            self.check(row)
            values = [row[name] for name in names]
            for i, encode in encode_at:
                if values[i] is not None:
                    values[i] = _encoded(encode, values[i], done)
            batch.append({k: v for k, v in zip(keys, values, strict=True) if v is not None})
        return {"rows": json.dumps(batch, allow_nan=False)}


class DriverRows(_Columns):
    """Rows of some columns as the DB-API's positional parameter tuples, in
    :attr:`names` order, each value as the column's bind processor makes it, for
    ``Connection.exec_driver_sql(sql, tuples)`` (an executemany). The statement's
    placeholders are the dialect's positional ones (``?`` for sqlite3; :attr:`marks`).
    Raises ValueError for a dialect with named placeholders."""

    def __init__(self, conn: Connection, table: Table, names: Sequence[str]) -> None:
        super().__init__(conn, table, names)
        dialect = conn.dialect
        if dialect.paramstyle not in ("qmark", "format"):
            raise ValueError(f"DriverRows needs positional placeholders, not "
                             f"{dialect.paramstyle!r} ({dialect.name}).")
        mark = "?" if dialect.paramstyle == "qmark" else "%s"
        #: One placeholder per column, in :attr:`names` order.
        self.marks = [mark] * len(self.names)
        processors = [c.type.dialect_impl(dialect).bind_processor(dialect)
                      for c in self.columns]
        self._processed = [(i, p) for i, p in enumerate(processors) if p is not None]

    def insert_sql(self) -> str:
        """``INSERT INTO <table> (<cols>) VALUES (?, …)``, for ``exec_driver_sql``."""
        return (f"INSERT INTO {self.table_sql} ({', '.join(self.quoted)}) "
                f"VALUES ({', '.join(self.marks)})")

    def params(self, rows: Sequence[Mapping[str, Any]]) -> list[tuple[Any, ...]]:
        """One tuple per row. Raises KeyError for a row with other columns than
        :attr:`names`, ValueError for a naive datetime (UTCDateTime)."""
        names = self.names
        done: _Done = {}
        tuples = []
        for row in rows:
            self.check(row)
            values = [row[name] for name in names]
            for i, process in self._processed:
                if values[i] is not None:
                    values[i] = _encoded(process, values[i], done)
            tuples.append(tuple(values))
        return tuples


def _encoded(encode: _Encode, value: Any, done: _Done) -> Any:
    """``encode(value)``, once per encoder and distinct datetime (instant and time zone)
    of a batch: ``done`` remembers."""
    if not isinstance(value, datetime):
        return encode(value)
    key = (encode, value, value.tzinfo)
    found = done.get(key)
    if found is None:
        found = done[key] = encode(value)
    return found


def _python_type(column: Column[Any]) -> type | None:
    """The Python type of the column's values (a TypeDecorator's underlying type's)."""
    kind = column.type
    if isinstance(kind, TypeDecorator):
        kind = kind.impl_instance
    try:
        found: type = kind.python_type
    except NotImplementedError:
        return None
    return found


def _iso_after(process: _Encode | None) -> Callable[[Any], str]:
    """The column's bind processing (UTCDateTime: to UTC, naive refused), then ISO 8601."""
    if process is None:
        return lambda value: value.isoformat()
    return lambda value: process(value).isoformat()


def _bytea(value: bytes) -> str:
    return "\\x" + bytes(value).hex()
