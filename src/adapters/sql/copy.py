"""Copy a whole printcore database into an empty PostgreSQL database (``printcore db copy``).

The move from the embedded SQLite to PostgreSQL (docs/backup.md):

1. The source must be at this printcore's migration head (``printcore db upgrade``) and
   hold exactly printcore's tables.
2. The target must be PostgreSQL and hold no rows in any table of its schema (tables
   without rows, e.g. an already migrated empty database, are fine). It is migrated to
   the head first (its own transaction: a refused or failed copy leaves it migrated and
   empty).
3. Every table of ``adapters.sql.tables.metadata`` is read in one source transaction (one
   snapshot; on SQLite a deferred read transaction, so a running server is not blocked)
   and written in foreign-key-safe order (``metadata.sorted_tables``) in ONE target
   transaction, ids included.
4. Each identity sequence is set past the largest id copied, and past SQLite's
   ``sqlite_sequence`` (AUTOINCREMENT: ids of deleted jobs are never handed out again).
5. The row count of every table is compared with the source before the commit: any
   difference rolls everything back.

The storage root is not touched: the files stay where they are; only DATABASE_URL changes.

Errors: ``CopyError`` (a ValidationError) for a refusal with what to do; nothing is
written to the target then (beyond the migration of step 2). StorageError for a database
that cannot be reached.
"""

from __future__ import annotations

from typing import Any

import attrs
from sqlalchemy import Engine, Table, func, insert, inspect, select, text

from adapters.sql.engine import database_kind
from adapters.sql.migrate import current_revision, head_revision, upgrade
from adapters.sql.tables import metadata
from printcore.errors import ValidationError

__all__ = ["BATCH_ROWS", "CopyError", "CopyResult", "copy_database"]

#: Rows read and inserted at a time.
BATCH_ROWS = 1000
_NOT_COPIED = {"alembic_version", "sqlite_sequence"}


class CopyError(ValidationError):
    """A copy refused or undone; the message says why and what to do."""


@attrs.frozen
class CopyResult:
    """``counts``: rows copied per table, in copy order; ``revision``: the migration head
    both databases are at; ``sequences``: the next id each identity hands out."""

    counts: dict[str, int]
    revision: str
    sequences: dict[str, int]


def _row_counts(conn: Any, tables: list[str]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for name in tables:
        quoted = conn.dialect.identifier_preparer.quote(name)
        counts[name] = int(conn.execute(text(f"SELECT count(*) FROM {quoted}")).scalar_one())
    return counts


def _check_source(source: Engine) -> str:
    head = head_revision()
    at = current_revision(source)
    if at != head:
        raise CopyError(f"The current database is at migration revision {at!r}, not this "
                        f"printcore's head {head!r}; run `printcore db upgrade` first. "
                        "Nothing was copied.")
    names = set(inspect(source).get_table_names()) - _NOT_COPIED
    if names != set(metadata.tables):
        extra = sorted(names - set(metadata.tables))
        missing = sorted(set(metadata.tables) - names)
        raise CopyError(f"The current database's tables are not printcore's (extra: "
                        f"{extra or 'none'}, missing: {missing or 'none'}); nothing was "
                        "copied. Copy by hand, or restore a backup first.")
    return str(head)


def _check_target_empty(target: Engine) -> None:
    names = inspect(target).get_table_names()
    with target.connect() as conn:
        counts = _row_counts(conn, [n for n in names if n != "alembic_version"])
        conn.rollback()
    used = {n: c for n, c in counts.items() if c}
    if used:
        shown = ", ".join(f"{n} ({c} rows)" for n, c in sorted(used.items())[:4])
        raise CopyError(f"The target database is not empty: {shown}. Copy into a new, "
                        "empty database (`createdb NAME`, or CREATE DATABASE NAME in psql). "
                        "Nothing was copied.")


def _sqlite_sequences(conn: Any) -> dict[str, int]:
    try:
        rows = conn.execute(text("SELECT name, seq FROM sqlite_sequence")).all()
    except Exception:
        return {}
    return {str(name): int(seq) for name, seq in rows}


def _copy_table(src: Any, dst: Any, table: Table) -> int:
    order = list(table.primary_key.columns) or list(table.columns)
    result = src.execution_options(yield_per=BATCH_ROWS).execute(
        select(table).order_by(*order))
    copied = 0
    for batch in result.mappings().partitions(BATCH_ROWS):
        dst.execute(insert(table), [dict(row) for row in batch])
        copied += len(batch)
    return copied


def _reset_sequences(dst: Any, used: dict[str, int]) -> dict[str, int]:
    """Set each identity column's sequence so the next id is past every id ever used."""
    nexts: dict[str, int] = {}
    for table in metadata.sorted_tables:
        identity = [c for c in table.columns if c.identity is not None]
        for column in identity:
            largest = dst.execute(select(func.max(column))).scalar_one() or 0
            last = max(int(largest), used.get(table.name, 0))
            sequence = dst.execute(text("SELECT pg_get_serial_sequence(:t, :c)"),
                                   {"t": table.name, "c": column.name}).scalar_one()
            if sequence is None:  # pragma: no cover - every Identity() has one
                continue
            # setval(seq, n, true): the next nextval() is n + 1; (seq, 1, false): it is 1.
            dst.execute(text("SELECT setval(:s, :n, :called)"),
                        {"s": sequence, "n": max(last, 1), "called": last > 0})
            nexts[table.name] = last + 1
    return nexts


def copy_database(source: Engine, target: Engine) -> CopyResult:
    """Copy every printcore table of ``source`` (SQLite or PostgreSQL) into the empty
    PostgreSQL database of ``target`` (see the module docstring for the steps).

    Returns the rows copied per table. Raises CopyError when the target is not PostgreSQL,
    is the source itself, has rows, or the source is not at the migration head or holds
    other tables; CopyError (everything rolled back) when a count differs after copying.
    StorageError when either database cannot be reached."""
    if database_kind(target) != "postgresql":
        raise CopyError("The target must be a PostgreSQL database "
                        "(postgresql://user:password@host:5432/dbname).")
    if (source.url.render_as_string(hide_password=False)
            == target.url.render_as_string(hide_password=False)):
        raise CopyError("The target is the current database; name another, empty one.")
    revision = _check_source(source)
    _check_target_empty(target)
    upgrade(target)
    _check_target_empty(target)  # migrations write no rows; another copy may have, meanwhile
    names = [t.name for t in metadata.sorted_tables]
    with source.connect() as src:
        if database_kind(source) == "sqlite":
            src = src.execution_options(sqlite_begin="DEFERRED")
        with src.begin():
            expected = _row_counts(src, names)
            used = _sqlite_sequences(src) if database_kind(source) == "sqlite" else {}
            with target.begin() as dst:
                counts = {t.name: _copy_table(src, dst, t) for t in metadata.sorted_tables}
                sequences = _reset_sequences(dst, used)
                found = _row_counts(dst, names)
                if found != expected or counts != expected:
                    bad = sorted(n for n in names
                                 if found.get(n) != expected.get(n) or counts[n] != expected[n])
                    raise CopyError(f"Row counts differ after copying ({', '.join(bad)}); "
                                    "nothing was kept in the target. Try again with the "
                                    "server stopped.")
    return CopyResult(counts, revision, sequences)
