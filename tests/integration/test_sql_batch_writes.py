"""The batch writes the queue sweep uses (issue 14, "Sweep is quadratic"), on SQLite and
PostgreSQL: ``update_many`` of printers and tickets (compare-and-set on ``version``),
``append_many`` of events and ``add_many`` of outbox rows. Each must store exactly what
the one-row path stores, since PostgreSQL takes a batch as one JSON recordset and SQLite
as the driver's executemany of pre-processed rows (``adapters.sql.batch``).

Every column is changed (strings with quotes, backslashes, newlines and non-ASCII, an
emoji among them: a surrogate pair in JSON; datetimes at a +02:00 offset with microseconds; floats that need all 17 digits; NULLs
where values were; bytes with a NUL), batches cross the statement chunk size, and the
rows are compared with the one-row path's, JSON text included.

Bad inputs tried: a stale version (and a deleted row) somewhere in a batch, which
refuses the whole batch; a naive datetime; on PostgreSQL a claim committed by another
transaction while the batch waits for its row lock.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import attrs
import pytest
from sqlalchemy import Engine, String, cast, delete, select, update

from adapters.sql import SqlUnitOfWork, batch
from adapters.sql.tables import events, outbox, printers, tickets
from printcore.errors import ConcurrentChangeError
from printcore.events import Actor, Event
from printcore.outbox import Attachment, OutboxMessage
from printcore.queue.entities import Printer, Ticket

T0 = datetime(2026, 12, 1, 9, 0, 0, 123456, tzinfo=UTC)
PLUS2 = timezone(timedelta(hours=2))
ODD = "O'Brien \"the\" \\ back\\slash, né ✓ 😀\nline two\t{a,b} NULL"


@pytest.fixture(autouse=True)
def small_chunks(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Two rows per PostgreSQL statement, so every batch here spans several."""
    monkeypatch.setattr(batch, "CHUNK_ROWS", 2)
    yield


def _ticket(n: int) -> Ticket:
    return Ticket(member=f"m{n}", member_name=f"Member {n}", job_name=f"part {n}",
                  est_minutes=60, created_at=T0, queue_key=1_764_579_600.25 + n,
                  status="offered", printer=f"P{n}", offered_at=T0,
                  outcome="failed", photo_url="https://example.org/p.jpg")


def _changed_ticket(t: Ticket, n: int) -> None:
    """Every column but id and version changed; the set ones of ``_ticket`` to None."""
    at = (T0 + timedelta(minutes=n, microseconds=7)).astimezone(PLUS2)
    t.member, t.member_name, t.job_name = f"{ODD}{n}", f"{ODD} name", f"{ODD} job"
    t.est_minutes, t.created_at = 241 + n, at - timedelta(days=1)
    t.queue_key = 0.1 + 0.2 + n  # 0.30000000000000004: every digit must survive
    t.status, t.printer, t.offered_at = "printing", None, None
    t.claimed_at, t.started_at, t.closed_at = at, at + timedelta(minutes=1), at
    t.outcome, t.photo_url = None, None
    t.actual_minutes, t.misses, t.bound_minutes = 58 + n, 2, 600
    t.ended_at, t.ended_by = at + timedelta(hours=1), "member"


def _changed_printer(p: Printer, n: int) -> None:
    at = (T0 + timedelta(minutes=n, microseconds=3)).astimezone(PLUS2)
    p.name, p.label, p.status = f"X1C-{n}", f"{ODD} label", "printing"
    p.holder_ticket, p.holder = None, None
    p.claim_deadline, p.start_deadline = None, None
    p.print_ticket, p.print_member = 1000 + n, f"{ODD} member"
    p.started_at, p.predicted_end, p.offer_not_before = at, at + timedelta(hours=3), at
    p.live_state, p.live_at, p.live_percent = "RUNNING", at, 42
    p.live_layer, p.live_total_layers, p.live_remaining_minutes = 7, 300, 95
    p.live_file, p.live_error, p.print_key = f"{ODD}.3mf", "", f"key-{n}"
    p.last_print_key, p.unclaimed_since = f"old-{n}", at


def _stored(engine: Engine, table: Any) -> list[dict[str, Any]]:
    with engine.connect() as conn:
        return [dict(row) for row in conn.execute(select(table).order_by(table.c.id)).mappings()]


def _stored_with_json_text(engine: Engine, table: Any, json_column: str) -> list[dict[str, Any]]:
    """The rows, oldest first, with the JSON column's stored text as ``<column>_text``."""
    text = cast(table.c[json_column], String).label(f"{json_column}_text")
    with engine.connect() as conn:
        query = select(*table.c, text).order_by(table.c.id)
        return [dict(row) for row in conn.execute(query).mappings()]


def _assert_utc(rows: list[dict[str, Any]]) -> None:
    for row in rows:
        for name, value in row.items():
            if isinstance(value, datetime):
                assert value.utcoffset() == timedelta(0), (name, value)


# --- update_many ----------------------------------------------------------------------


def test_update_many_stores_every_column_of_tickets_and_printers(sql_engine: Engine) -> None:
    with SqlUnitOfWork(sql_engine) as uow:
        for n in range(5):
            uow.tickets.add(_ticket(n))
            uow.printers.add(Printer(f"P{n}", "old", status="offered", holder_ticket=n,
                                     holder=f"m{n}", claim_deadline=T0,
                                     start_deadline=T0, live_error="jammed"))
        uow.commit()
    with SqlUnitOfWork(sql_engine) as uow:
        ticket_rows, printer_rows = uow.tickets.open_tickets(), uow.printers.list()
        for n, (t, p) in enumerate(zip(ticket_rows, printer_rows, strict=True)):
            _changed_ticket(t, n)
            _changed_printer(p, n)
        uow.tickets.update_many(ticket_rows)
        uow.printers.update_many(printer_rows)
        uow.commit()
    assert {t.version for t in ticket_rows} == {p.version for p in printer_rows} == {2}
    with SqlUnitOfWork(sql_engine) as uow:
        assert [uow.tickets.get(t.id or 0) for t in ticket_rows] == ticket_rows
        assert uow.printers.list() == sorted(printer_rows, key=lambda p: p.name)
    stored = _stored(sql_engine, tickets)
    _assert_utc(stored)
    _assert_utc(_stored(sql_engine, printers))
    assert [r["queue_key"] for r in stored] == [0.1 + 0.2 + n for n in range(5)]
    assert stored[0]["claimed_at"] == T0 + timedelta(microseconds=7)
    assert {r["version"] for r in stored} == {2}


def test_a_stale_or_missing_row_refuses_the_whole_batch(sql_engine: Engine) -> None:
    """One copy among five is stale (another transaction moved its version; it sits in
    the last statement of the batch), or one row is gone: ConcurrentChangeError naming
    how many, and nothing of the batch stored nor any version bumped."""
    with SqlUnitOfWork(sql_engine) as uow:
        for n in range(5):
            uow.tickets.add(_ticket(n))
        uow.commit()
    with SqlUnitOfWork(sql_engine) as uow:
        copies = uow.tickets.open_tickets()
    with SqlUnitOfWork(sql_engine) as uow:  # someone claims the last one meanwhile
        winner = uow.tickets.get(copies[4].id or 0)
        winner.status = "claimed"
        uow.tickets.update(winner)
        uow.commit()
    before = _stored(sql_engine, tickets)
    for n, t in enumerate(copies):
        _changed_ticket(t, n)
    with SqlUnitOfWork(sql_engine) as uow:
        with pytest.raises(ConcurrentChangeError, match="1 of 5 tickets were changed"):
            uow.tickets.update_many(copies)
    assert _stored(sql_engine, tickets) == before
    assert [t.version for t in copies] == [1] * 5

    with sql_engine.begin() as conn:
        conn.execute(delete(tickets).where(tickets.c.id == copies[1].id))
    fresh = [t for t in _fresh_tickets(sql_engine)]
    gone = attrs.evolve(fresh[0], id=copies[1].id)
    with SqlUnitOfWork(sql_engine) as uow:
        with pytest.raises(ConcurrentChangeError, match="1 of 5 tickets were changed"):
            uow.tickets.update_many([*fresh, gone])
    assert [r["version"] for r in _stored(sql_engine, tickets)] == [1, 1, 1, 2]


def _fresh_tickets(engine: Engine) -> list[Ticket]:
    with SqlUnitOfWork(engine) as uow:
        return uow.tickets.open_tickets()


def test_a_naive_datetime_in_a_batch_is_refused(sql_engine: Engine) -> None:
    with SqlUnitOfWork(sql_engine) as uow:
        for n in range(3):
            uow.tickets.add(_ticket(n))
        uow.commit()
    many = _fresh_tickets(sql_engine)
    many[2].claimed_at = datetime(2026, 12, 1, 9, 0)
    with SqlUnitOfWork(sql_engine) as uow, pytest.raises(ValueError, match="naive"):
        uow.tickets.update_many(many)


@pytest.mark.postgres
def test_a_claim_committed_while_the_batch_waits_wins(pg_engine: Engine) -> None:
    """PostgreSQL: the batch UPDATE waits for the row lock of a claim in progress; once
    the claim commits, the batch matches one row fewer and is refused."""
    with SqlUnitOfWork(pg_engine) as uow:
        for n in range(4):
            uow.tickets.add(_ticket(n))
        uow.commit()
    copies = _fresh_tickets(pg_engine)
    for t in copies:
        t.misses = 1
    claim = pg_engine.connect()
    claim.begin()
    claim.execute(update(tickets).where(tickets.c.id == copies[2].id)
                  .values(status="claimed", version=tickets.c.version + 1))
    outcome: list[Exception | None] = []

    def sweep() -> None:
        try:
            with SqlUnitOfWork(pg_engine) as uow:
                uow.tickets.update_many(copies)
                uow.commit()
            outcome.append(None)
        except Exception as exc:  # handed to the test thread
            outcome.append(exc)

    thread = threading.Thread(target=sweep)
    thread.start()
    thread.join(0.5)
    assert thread.is_alive(), "the batch did not wait for the claim's row lock"
    claim.commit()
    claim.close()
    thread.join(10)
    assert len(outcome) == 1 and isinstance(outcome[0], ConcurrentChangeError)
    assert [(r["status"], r["misses"], r["version"]) for r in _stored(pg_engine, tickets)] \
        == [("offered", 0, 1), ("offered", 0, 1), ("claimed", 0, 2), ("offered", 0, 1)]


# --- events ---------------------------------------------------------------------------


def _events(subject_id: int) -> list[Event]:
    at = T0.astimezone(PLUS2)
    details: list[dict[str, Any]] = [
        {"printer": "X1C-1", "misses": 1, "until": "2026-12-01T09:10:00+00:00"},
        {}, {"nested": {"list": [1, 2.5, None, True, "é ✓"], "q": ODD}, "none": None},
        {"big": 10**15, "float": 0.1 + 0.2},
    ]
    return [Event("ticket", subject_id + i, kind, Actor(kind="member", name=ODD,
                                                       workstation=None if i else "desk"),
                  at + timedelta(seconds=i, microseconds=i), details[i % len(details)],
                  from_status=None if i % 2 else "offered",
                  to_status="queued" if i % 3 else None)
            for i, kind in enumerate(["missed", "expired", "offered", "note", "missed"])]


def test_append_many_stores_what_append_stores(sql_engine: Engine) -> None:
    with SqlUnitOfWork(sql_engine) as uow:
        for event in _events(100):
            uow.events.append(event)
        uow.commit()
    with SqlUnitOfWork(sql_engine) as uow:
        uow.events.append_many(_events(100))
        uow.commit()
    rows = _stored_with_json_text(sql_engine, events, "details")
    assert len(rows) == 10
    ids = [r.pop("id") for r in rows]
    assert ids == sorted(ids) and len(set(ids)) == 10  # the batch's order kept
    assert rows[:5] == rows[5:]  # details' stored JSON text included
    _assert_utc(rows)
    assert rows[5]["at"] == T0 and rows[7]["details"]["nested"]["q"] == ODD


# --- outbox ---------------------------------------------------------------------------


def _messages() -> list[OutboxMessage]:
    at = T0.astimezone(PLUS2)
    return [
        OutboxMessage("discord", "offered", "m1", "ticket", 7, at,
                      {"printer": "X1C-1", "until": "10:10", "text": ODD}),
        OutboxMessage("email", "approved", "ann@example.org", "job", 42, at,
                      {"job": {"cost_cents": 300, "lines": [ODD, None]}},
                      next_attempt_at=at + timedelta(minutes=5),
                      attachment=Attachment("payments.xlsx", "application/vnd.ms-excel",
                                            b"PK\x00\x01\xff binary")),
        OutboxMessage("discord", "missed", "m2", "ticket", 8, at, {}, status="failed",
                      attempts=3, lease_until=at, relayed_at=at, sent_at=None,
                      last_error=ODD),
    ]


def test_add_many_stores_what_add_stores_and_sets_the_ids(sql_engine: Engine) -> None:
    handed: list[list[int]] = []
    one_by_one, batch_of = _messages(), _messages() + _messages()
    with SqlUnitOfWork(sql_engine) as uow:
        for message in one_by_one:
            uow.outbox.add(message)
        uow.commit()
    # the newest row deleted: ids are never handed out twice (AUTOINCREMENT, identity)
    with sql_engine.begin() as conn:
        conn.execute(delete(outbox).where(outbox.c.id == one_by_one[-1].id))
    uow = SqlUnitOfWork(sql_engine, after_commit=lambda ids: handed.append(list(ids)))
    with uow:
        ids = uow.outbox.add_many(batch_of)
        uow.commit()
    assert ids == [m.id for m in batch_of] == handed[0]
    assert ids == sorted(ids) and ids[0] > (one_by_one[-1].id or 0)
    assert [m.next_attempt_at for m in batch_of] == [m.next_attempt_at for m in one_by_one] * 2
    rows = _stored_with_json_text(sql_engine, outbox, "payload")
    assert [r.pop("id") for r in rows] == [one_by_one[0].id, one_by_one[1].id, *ids]
    assert rows[2:5] == rows[5:8]
    assert rows[:2] == rows[2:4]  # payload's stored JSON text and the bytes included
    assert rows[1]["attachment"] == b"PK\x00\x01\xff binary"
    _assert_utc(rows)
    with SqlUnitOfWork(sql_engine) as uow:
        assert [uow.outbox.get(i) for i in ids] == batch_of


def test_add_many_then_add_continues_the_ids(sql_engine: Engine) -> None:
    with SqlUnitOfWork(sql_engine) as uow:
        first = uow.outbox.add_many(_messages())
        after = uow.outbox.add(_messages()[0])
        uow.commit()
    assert after > max(first)
    with SqlUnitOfWork(sql_engine) as uow:
        assert [m.id for m in reversed(uow.outbox.list())] == [*first, after]
