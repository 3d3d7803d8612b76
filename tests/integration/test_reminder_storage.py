"""The print line and confirmation reminders on every backend (memory, SQLite,
PostgreSQL): the repository queries, the service end to end on stored rows, a concurrent
double run on PostgreSQL that sends one email per job, migration 0009's backfill, and the
reminder email as the mail adapter renders it."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import attrs
import pytest
from sqlalchemy import Engine, inspect, text

from adapters.mail import MailRenderer
from adapters.sql import SqlUnitOfWork, upgrade
from adapters.sql.migrate import downgrade
from printcore import Actor, Job, PrintRequests, StaffDirectory, Submission
from printcore.memory import FixedClock, MemorySigner, PlainHasher
from printcore.outbox import OutboxMessage
from printcore.ports import Notice
from printcore.requests.memory import MemoryFileStore
from printcore.requests.reminders import REMINDER_KIND
from printcore.slicing import SliceEstimate

Factory = Callable[[], Any]
T0 = datetime(2026, 9, 1, 15, 0, 0, 123456, tzinfo=UTC)
ANA = Actor.staff("Ana Lee", "front-desk")


def make_job(n: int, status: str, **fields: Any) -> Job:
    return Job(student_name=f"Student {n}", email=f"s{n}@example.edu", discipline="Art",
               class_number="ART 1", print_method="filament", color="red", created_at=T0,
               updated_at=T0, status=status, **fields)


def add(factory: Factory, *jobs: Job) -> list[int]:
    with factory() as uow:
        ids = [uow.jobs.add(job) for job in jobs]
        uow.commit()
    return ids


# --- the repository queries -------------------------------------------------------------


def test_new_fields_round_trip(uow_factory: Factory) -> None:
    job = make_job(1, "pending", confirmed_at=T0 + timedelta(hours=1),
                   reminder_sent_at=T0 + timedelta(hours=2), reminder_nonce="n-1",
                   confirmation_nonce="n-1", confirmation_expires_at=T0 + timedelta(days=7))
    (job_id,) = add(uow_factory, job)
    with uow_factory() as uow:
        stored = uow.jobs.get(job_id)
    assert stored.confirmed_at == T0 + timedelta(hours=1)
    assert stored.reminder_sent_at == T0 + timedelta(hours=2)
    assert stored.reminder_nonce == "n-1" and stored.reminded


def test_count_ready_ahead(uow_factory: Factory) -> None:
    at = [T0 + timedelta(minutes=m) for m in range(4)]
    ids = add(
        uow_factory,
        make_job(1, "ready_to_print", confirmed_at=at[2]),
        make_job(2, "ready_to_print", confirmed_at=at[0]),
        make_job(3, "ready_to_print", confirmed_at=at[2]),  # same moment as 1: after it
        make_job(4, "printing", confirmed_at=at[0]),  # on a printer: not waiting
        make_job(5, "pending"),
        make_job(6, "ready_to_print", confirmed_at=None),  # counted by created_at (T0)
    )
    with uow_factory() as uow:
        counts = {i: uow.jobs.count_ready_ahead(at[2], i) for i in (ids[0], ids[2])}
        assert counts == {ids[0]: 2, ids[2]: 3}
        assert uow.jobs.count_ready_ahead(at[0], ids[1]) == 0  # job 6: same moment, later id
        assert uow.jobs.count_ready_ahead(T0, ids[5]) == 1  # job 2 is ahead of job 6
        assert uow.jobs.count_ready_ahead(at[3], 999) == 4


def test_due_for_reminder(uow_factory: Factory) -> None:
    now = T0 + timedelta(days=5)
    until = now + timedelta(hours=48)

    def pending(n: int, expires: datetime, **fields: Any) -> Job:
        return make_job(n, "pending", confirmation_nonce=f"n{n}",
                        confirmation_expires_at=expires, **fields)

    ids = add(
        uow_factory,
        pending(1, until),  # exactly at the lead time: due
        pending(2, now),  # at its last moment: due
        pending(3, now - timedelta(microseconds=1)),  # expired
        pending(4, until + timedelta(microseconds=1)),  # not yet
        pending(5, now + timedelta(hours=1), reminder_nonce="n5"),  # reminded for this link
        pending(6, now + timedelta(hours=2), reminder_nonce="old"),  # reminded, then resent
        make_job(7, "ready_to_print", confirmation_expires_at=now + timedelta(hours=1)),
    )
    with uow_factory() as uow:
        assert uow.jobs.due_for_reminder(now, until, 100) == [ids[1], ids[5], ids[0]]
        assert uow.jobs.due_for_reminder(now, until, 1) == [ids[1]]


# --- the service on stored rows ---------------------------------------------------------


@attrs.define
class Desk:
    requests: PrintRequests
    clock: FixedClock
    files: MemoryFileStore

    def approved(self, n: int) -> Job:
        svc = self.requests
        job = svc.submit(Submission(f"Student {n}", f"s{n}@example.edu", "Art", "ART 1",
                                    "filament", "red"),
                         self.files.stage("part.stl", b"solid part", ".stl"))
        assert job.id is not None
        sliced = svc.add_sliced_file(job.id, ANA, self.files.stage(
            "part.gcode.3mf", b"; sliced", ".gcode.3mf"), SliceEstimate(seconds=3600, grams=10))
        return svc.approve(job.id, ANA, 10, 1, sliced.stored_name)


def desk(factory: Factory, clock: FixedClock | None = None) -> Desk:
    clock = clock or FixedClock(T0)
    files = MemoryFileStore()
    StaffDirectory(uow=factory, hasher=PlainHasher(), clock=clock).add(ANA.name)
    svc = PrintRequests(uow=factory, files=files, signer=MemorySigner(), clock=clock)
    return Desk(svc, clock, files)


def reminder_rows(factory: Factory) -> list[OutboxMessage]:
    with factory() as uow:
        rows = uow.outbox.list(limit=1000)
    return [r for r in rows if r.kind == REMINDER_KIND]


def test_reminders_end_to_end_on_stored_rows(uow_factory: Factory) -> None:
    lab = desk(uow_factory)
    first = lab.approved(1)
    lab.clock.advance(hours=1)
    second = lab.approved(2)
    lab.clock.advance(days=5, minutes=-30)  # first's link: 47.5 h left; second's 48.5 h
    assert lab.requests.send_confirmation_reminders() == [first.id]
    assert lab.requests.send_confirmation_reminders() == []
    lab.clock.advance(hours=1)
    assert lab.requests.send_confirmation_reminders() == [second.id]
    rows = reminder_rows(uow_factory)
    assert sorted(r.subject_id for r in rows) == sorted([first.id, second.id])
    token = next(r for r in rows if r.subject_id == first.id).payload["confirm_token"]
    assert lab.requests.confirm(token).status == "ready_to_print"
    events = [e.kind for e in lab.requests.history(first.id or 0)]
    assert events.count(REMINDER_KIND) == 1


def test_the_print_line_on_stored_rows(uow_factory: Factory) -> None:
    lab = desk(uow_factory)
    svc = lab.requests
    jobs = [lab.approved(n) for n in range(3)]
    tokens = {}
    with uow_factory() as uow:
        for row in uow.outbox.list(limit=100):
            if row.kind == "approved":
                tokens[row.subject_id] = row.payload["confirm_token"]
    for job in reversed(jobs):
        lab.clock.advance(minutes=1)
        svc.confirm(tokens[job.id])
    places = [svc.place_in_line(svc.get(j.id or 0)) for j in jobs]
    assert places == [2, 1, 0]


# --- two runs at once on PostgreSQL ---------------------------------------------------


def _racing(engine: Engine, barrier: threading.Barrier) -> Callable[[], SqlUnitOfWork]:
    """Units of work whose runs meet after listing the candidates and after reading each
    job, so both runs read the same version of every job before either writes."""

    def make() -> SqlUnitOfWork:
        uow = SqlUnitOfWork(engine)
        jobs: Any = uow.jobs
        real_get, real_due = jobs.get, jobs.due_for_reminder

        def get(job_id: int) -> Job:
            job = real_get(job_id)
            if job.status == "pending":
                barrier.wait(timeout=20)
            return job

        def due(*args: Any) -> list[int]:
            found = real_due(*args)
            barrier.wait(timeout=20)
            return found

        jobs.get, jobs.due_for_reminder = get, due
        return uow

    return make


@pytest.mark.postgres
def test_two_runs_at_once_on_postgresql_send_one_email_per_job(pg_engine: Engine) -> None:
    def factory() -> SqlUnitOfWork:
        return SqlUnitOfWork(pg_engine)

    lab = desk(factory)
    jobs = [lab.approved(n) for n in range(5)]
    lab.clock.advance(days=6)
    barrier = threading.Barrier(2)
    racing = attrs.evolve(lab.requests, uow=_racing(pg_engine, barrier))
    results: list[list[int]] = []
    errors: list[BaseException] = []

    def run() -> None:
        try:
            results.append(racing.send_confirmation_reminders())
        except BaseException as err:  # reported below
            errors.append(err)
            barrier.abort()

    threads = [threading.Thread(target=run) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors
    assert sorted(results[0] + results[1]) == sorted(j.id for j in jobs)  # each once
    rows = reminder_rows(factory)
    assert sorted(r.subject_id for r in rows) == sorted(j.id for j in jobs)
    for job in jobs:
        kinds = [e.kind for e in lab.requests.history(job.id or 0)]
        assert kinds.count(REMINDER_KIND) == 1


# --- migration 0009 -------------------------------------------------------------------


def _old_rows(engine: Engine) -> None:
    """Jobs as an 0008 database holds them, with their confirmation events."""
    insert = ("INSERT INTO jobs (id, status, version, student_name, email, discipline, "
              "class_number, print_method, color, preferred_printer, notes, created_at, "
              "updated_at, failed_attempts, files, rejection_reasons, payments) VALUES "
              "(:id, :status, 3, 'Old', 'o@example.edu', 'Art', 'ART 1', 'filament', 'red', "
              "'', '', :created, :updated, 0, '[]', '[]', '[]')")
    event = ("INSERT INTO events (subject, subject_id, kind, actor_kind, actor_name, at, "
             "details) VALUES ('job', :id, :kind, 'student', 'Old', :at, '{}')")
    with engine.begin() as conn:
        for job_id, status, updated in ((1, "ready_to_print", T0 + timedelta(hours=5)),
                                        (2, "printing", T0 + timedelta(hours=6)),
                                        (3, "completed", T0 + timedelta(hours=7)),
                                        (4, "pending", T0 + timedelta(hours=1))):
            conn.execute(text(insert), {"id": job_id, "status": status, "created": T0,
                                        "updated": updated})
        conn.execute(text(event), {"id": 1, "kind": "confirm", "at": T0 + timedelta(hours=2)})
        conn.execute(text(event), {"id": 2, "kind": "force_confirm",
                                   "at": T0 + timedelta(hours=1)})
        conn.execute(text(event), {"id": 1, "kind": "start_print",
                                   "at": T0 + timedelta(hours=4)})


def _check_migration(engine: Engine) -> None:
    upgrade(engine, "0008")
    _old_rows(engine)
    upgrade(engine)
    with SqlUnitOfWork(engine) as uow:
        got = {i: uow.jobs.get(i) for i in (1, 2, 3, 4)}
    assert got[1].confirmed_at == T0 + timedelta(hours=2)  # its confirm event
    assert got[2].confirmed_at == T0 + timedelta(hours=1)  # its force_confirm event
    assert got[3].confirmed_at == T0 + timedelta(hours=7)  # no event: its updated_at
    assert got[4].confirmed_at is None  # not confirmed yet
    assert all(j.reminder_sent_at is None and j.reminder_nonce is None for j in got.values())
    assert all(j.version == 3 for j in got.values())  # the upgrade is nobody's change
    downgrade(engine, "0008")
    columns = {c["name"] for c in inspect(engine).get_columns("jobs")}
    assert not {"confirmed_at", "reminder_sent_at", "reminder_nonce"} & columns
    upgrade(engine)


def test_0009_backfills_confirmed_at_on_sqlite(tmp_path: Any) -> None:
    from adapters.sql import make_engine

    engine = make_engine(f"sqlite:///{tmp_path / 'old.db'}")
    try:
        _check_migration(engine)
    finally:
        engine.dispose()


@pytest.mark.postgres
def test_0009_backfills_confirmed_at_on_postgresql(pg_empty_engine: Engine) -> None:
    _check_migration(pg_empty_engine)


# --- the email --------------------------------------------------------------------------


def test_the_reminder_email_has_the_link_the_quote_and_the_expiry() -> None:
    renderer = MailRenderer("https://print.example.edu", "Fab Lab", "lab@example.edu",
                            "America/Chicago")
    notice = Notice(REMINDER_KIND, "s1@example.edu", 12, {
        "job_id": 12, "student_name": "Jane Doe", "print_method": "filament", "color": "Red",
        "status": "pending", "weight_g": 10.5, "time_hours": 1.5, "cost_cents": 305,
        "status_token": "ST", "confirm_token": "CT", "expires_at": "2026-11-09T21:30:00+00:00"})
    message = renderer.render(notice)
    assert message["Subject"] == ("[Fab Lab] Reminder: confirm print request #12 by "
                                  "Mon 09 Nov 2026, 03:30 PM CST")
    text_part, html_part = (p.get_payload(decode=True).decode() for p in message.get_payload())
    for body in (text_part, html_part):
        assert "https://print.example.edu/confirm/CT" in body
        assert "$3.05" in body and "10.5 g" in body
        assert "Mon 09 Nov 2026, 03:30 PM CST" in body
        assert "send you a new one" in body
