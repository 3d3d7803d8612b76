"""One contract for the UnitOfWork and its repositories, run against every backend:
the in-memory fake, SQLite and PostgreSQL (CONVENTIONS.md #8)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import attrs
import pytest

from printcore.errors import ConcurrentChangeError, NotFoundError
from printcore.events import Event
from printcore.ports import StaffMember, UnitOfWork, WorkstationSession
from printcore.requests.job import Actor, Job, JobFile, Payment
from printcore.slicing import SliceEstimate

Factory = Callable[[], UnitOfWork]
T0 = datetime(2026, 9, 1, 15, 0, 0, 123456, tzinfo=UTC)


def make_job(n: int = 1, *, status: str = "uploaded", at: datetime = T0) -> Job:
    return Job(
        student_name=f"Ada Lovelace {n}",
        email=f"ada{n}@example.edu",
        discipline="Engineering",
        class_number="ENGR 101",
        print_method="filament",
        color="red",
        created_at=at,
        updated_at=at,
        status=status,
    )


def full_job() -> Job:
    """A job with every field set, as it looks after a reverted pickup."""
    job = make_job(7, status="completed")
    job.preferred_printer = "Bambu X1C #2"
    job.notes = "Ünïcode notes ✓\nwith a newline"
    job.files = [
        JobFile("Ada_filament_red_7.stl", "my part (final).stl", "original", 123456, "a" * 64, T0),
        JobFile(
            "Ada_filament_red_7_sliced_1.gcode.3mf",
            "plate.gcode.3mf",
            "sliced",
            999,
            "b" * 64,
            T0 + timedelta(hours=1),
            SliceEstimate(
                seconds=5400,
                grams=12.34,
                slicer="BambuStudio 01.09.07.52",
                source="Metadata/slice_info.config",
            ),
        ),
        JobFile(
            "Ada_filament_red_7_sliced_2.gcode",
            "plate2.gcode",
            "sliced",
            5,
            "c" * 64,
            T0 + timedelta(hours=2),
            SliceEstimate(seconds=None, grams=None),
        ),
    ]
    job.authoritative_file = "Ada_filament_red_7_sliced_1.gcode.3mf"
    job.weight_g = 12.34
    job.time_hours = 1.5
    job.cost_cents = 300
    job.rejection_reasons = ["Too small", "Custom: walls thinner than 0.4 mm"]
    job.confirmation_nonce = "nonce-123"
    job.confirmation_expires_at = T0 + timedelta(days=7)
    job.printer = "Prusa MK4"
    job.failed_attempts = 2
    job.payments = [
        Payment(
            12.5,
            300,
            "TXN-1",
            "Ada",
            "Sam",
            T0 + timedelta(days=1),
            voided_at=T0 + timedelta(days=2),
            void_reason="wrong amount",
        ),
        Payment(12.0, 300, "TXN-2", "Ada's friend", "Sam", T0 + timedelta(days=2, seconds=1)),
    ]
    job.updated_at = T0 + timedelta(days=2, seconds=1)
    job.reviewed_at = T0 + timedelta(minutes=5, microseconds=7)
    job.reviewed_by = "Sam Ünal"
    return job


def add(uow_factory: Factory, job: Job) -> Job:
    with uow_factory() as uow:
        uow.jobs.add(job)
        uow.commit()
    return job


def get(uow_factory: Factory, job_id: int) -> Job:
    with uow_factory() as uow:
        return uow.jobs.get(job_id)


def event(subject_id: int, kind: str, at: datetime = T0, subject: str = "job") -> Event:
    return Event(
        subject,
        subject_id,
        kind,
        Actor.staff("Sam", "front-desk"),
        at,
        details={"grams": 12.5, "reasons": ["a", "b"], "nested": {"x": None}},
        from_status="uploaded",
        to_status="pending",
    )


# --- jobs -----------------------------------------------------------------------------


def test_add_and_get_round_trip_a_fully_populated_job(uow_factory: Factory) -> None:
    job = full_job()
    with uow_factory() as uow:
        job_id = uow.jobs.add(job)
        uow.commit()
    assert job.id == job_id and job.version == 1
    got = get(uow_factory, job_id)
    assert got == job
    assert got is not job
    for value in (
        got.created_at,
        got.files[1].uploaded_at,
        got.payments[0].voided_at,
        got.confirmation_expires_at,
        got.reviewed_at,
    ):
        assert value is not None and value.utcoffset() == timedelta(0)
    assert got.files[1].estimate == SliceEstimate(
        5400, 12.34, "BambuStudio 01.09.07.52", "Metadata/slice_info.config"
    )
    assert got.active_payment is not None and got.active_payment.txn_no == "TXN-2"
    assert (got.reviewed_at, got.reviewed_by) == (job.reviewed_at, "Sam Ünal")


def test_add_gives_new_increasing_ids_and_version_one(uow_factory: Factory) -> None:
    first, second = add(uow_factory, make_job(1)), add(uow_factory, make_job(2))
    assert first.id is not None and second.id is not None and second.id > first.id
    assert (first.version, second.version) == (1, 1)


def test_ids_of_removed_jobs_are_not_reused(uow_factory: Factory) -> None:
    old = add(uow_factory, make_job(1))
    with uow_factory() as uow:
        uow.jobs.remove(old)
        uow.commit()
    new = add(uow_factory, make_job(2))
    assert new.id is not None and old.id is not None and new.id > old.id


def test_get_unknown_job_raises_not_found(uow_factory: Factory) -> None:
    with uow_factory() as uow, pytest.raises(NotFoundError):
        uow.jobs.get(424242)


def test_update_stores_changes_and_bumps_version(uow_factory: Factory) -> None:
    job_id = add(uow_factory, make_job()).id
    assert job_id is not None
    with uow_factory() as uow:
        job = uow.jobs.get(job_id)
        job.status, job.weight_g, job.cost_cents = "pending", 20.0, 300
        job.rejection_reasons.append("x")
        uow.jobs.update(job)
        assert job.version == 2
        assert uow.jobs.get(job_id).weight_g == 20.0  # reads its own writes
        uow.commit()
    stored = get(uow_factory, job_id)
    assert (stored.version, stored.status, stored.weight_g, stored.rejection_reasons) == (
        2,
        "pending",
        20.0,
        ["x"],
    )


def test_update_sets_and_clears_the_review(uow_factory: Factory) -> None:
    job_id = add(uow_factory, make_job()).id
    assert job_id is not None
    assert (get(uow_factory, job_id).reviewed_at, get(uow_factory, job_id).reviewed_by) == (
        None, None)
    for reviewed_at, reviewed_by in ((T0 + timedelta(hours=1), "Sam"), (None, None)):
        with uow_factory() as uow:
            job = uow.jobs.get(job_id)
            job.reviewed_at, job.reviewed_by = reviewed_at, reviewed_by
            uow.jobs.update(job)
            uow.commit()
        stored = get(uow_factory, job_id)
        assert (stored.reviewed_at, stored.reviewed_by) == (reviewed_at, reviewed_by)
    assert stored.version == 3


def test_add_then_update_in_one_unit_of_work(uow_factory: Factory) -> None:
    """What submit does: add, attach the file, update, commit."""
    job = make_job()
    with uow_factory() as uow:
        job_id = uow.jobs.add(job)
        job.files.append(JobFile("f.stl", "f.stl", "original", 1, "d" * 64, T0))
        uow.jobs.update(job)
        uow.commit()
    assert job.version == 2
    assert get(uow_factory, job_id) == job


def test_stale_update_raises_and_changes_nothing(uow_factory: Factory) -> None:
    job_id = add(uow_factory, make_job()).id
    assert job_id is not None
    mine, theirs = get(uow_factory, job_id), get(uow_factory, job_id)
    with uow_factory() as uow:
        theirs.notes = "theirs"
        uow.jobs.update(theirs)
        uow.commit()
    with uow_factory() as uow, pytest.raises(ConcurrentChangeError) as caught:
        mine.notes = "mine"
        uow.jobs.update(mine)
        uow.events.append(event(job_id, "approve"))
        uow.commit()
    assert caught.value.job_id == job_id
    stored = get(uow_factory, job_id)
    assert (stored.notes, stored.version) == ("theirs", 2)
    with uow_factory() as uow:
        assert uow.events.for_subject("job", job_id) == []


def test_update_of_a_removed_job_raises_not_found(
    uow_factory: Factory, backend: str, request: pytest.FixtureRequest
) -> None:
    job = add(uow_factory, make_job())
    stale = get(uow_factory, job.id or 0)
    with uow_factory() as uow:
        uow.jobs.remove(job)
        uow.commit()
    with uow_factory() as uow, pytest.raises(NotFoundError):
        uow.jobs.update(stale)
        uow.commit()


def test_remove_deletes_the_job(uow_factory: Factory) -> None:
    job = add(uow_factory, make_job())
    with uow_factory() as uow:
        uow.jobs.remove(job)
        uow.commit()
    with uow_factory() as uow, pytest.raises(NotFoundError):
        uow.jobs.get(job.id or 0)


def test_stale_remove_raises_and_keeps_the_job(uow_factory: Factory) -> None:
    job = add(uow_factory, make_job())
    theirs = get(uow_factory, job.id or 0)
    with uow_factory() as uow:
        uow.jobs.update(theirs)
        uow.commit()
    with uow_factory() as uow, pytest.raises(ConcurrentChangeError):
        uow.jobs.remove(job)
        uow.commit()
    assert get(uow_factory, job.id or 0).version == 2


def test_list_orders_filters_and_pages(uow_factory: Factory) -> None:
    specs = [  # (n, status, minutes after T0)
        (1, "uploaded", 30),
        (2, "pending", 10),
        (3, "uploaded", 10),
        (4, "uploaded", 0),
        (5, "uploaded", 10),
        (6, "rejected", 50),
    ]
    ids = {
        n: add(uow_factory, make_job(n, status=s, at=T0 + timedelta(minutes=m))).id
        for n, s, m in specs
    }
    with uow_factory() as uow:
        uploaded = [j.id for j in uow.jobs.list(status="uploaded")]
        everything = [j.id for j in uow.jobs.list()]
        page = [j.id for j in uow.jobs.list(status="uploaded", limit=2, offset=1)]
        newest_two = [j.id for j in uow.jobs.list(limit=2)]
        assert uow.jobs.list(status="printing") == []
        assert uow.jobs.list(status="uploaded", offset=10) == []
    assert uploaded == [ids[4], ids[3], ids[5], ids[1]]  # oldest first, ties by id
    assert everything == [ids[6], ids[1], ids[5], ids[3], ids[2], ids[4]]  # newest first
    assert page == [ids[3], ids[5]]
    assert newest_two == [ids[6], ids[1]]


def test_count_by_status(uow_factory: Factory) -> None:
    with uow_factory() as uow:
        assert uow.jobs.count_by_status() == {}
    for n, status in enumerate(["uploaded", "uploaded", "pending", "paid_picked_up"]):
        add(uow_factory, make_job(n, status=status))
    with uow_factory() as uow:
        assert uow.jobs.count_by_status() == {"uploaded": 2, "pending": 1, "paid_picked_up": 1}


# --- transactions ---------------------------------------------------------------------


def test_leaving_without_commit_rolls_everything_back(uow_factory: Factory) -> None:
    kept = add(uow_factory, make_job(1))
    with uow_factory() as uow:
        lost_id = uow.jobs.add(make_job(2))
        kept.notes = "changed"
        uow.jobs.update(kept)
        uow.events.append(event(lost_id, "submit"))
        uow.staff.add(StaffMember("Sam", True, T0))
        uow.settings.set("k", "v")
    with uow_factory() as uow:
        with pytest.raises(NotFoundError):
            uow.jobs.get(lost_id)
        assert uow.jobs.get(kept.id or 0).notes == ""
        assert uow.jobs.get(kept.id or 0).version == 1
        assert uow.events.for_subject("job", lost_id) == []
        assert uow.staff.get("Sam") is None
        assert uow.settings.get("k") is None


def test_rollback_discards_and_an_exception_rolls_back(uow_factory: Factory) -> None:
    with uow_factory() as uow:
        uow.settings.set("a", "1")
        uow.rollback()
        uow.settings.set("b", "2")
        uow.commit()
    with pytest.raises(RuntimeError), uow_factory() as uow:
        uow.settings.set("c", "3")
        raise RuntimeError("boom")
    with uow_factory() as uow:
        assert (uow.settings.get("a"), uow.settings.get("b"), uow.settings.get("c")) == (
            None,
            "2",
            None,
        )


def test_work_after_commit_needs_its_own_commit(uow_factory: Factory) -> None:
    with uow_factory() as uow:
        uow.settings.set("first", "1")
        uow.commit()
        uow.settings.set("second", "2")
    with uow_factory() as uow:
        assert (uow.settings.get("first"), uow.settings.get("second")) == ("1", None)


# --- events ---------------------------------------------------------------------------


def test_append_returns_the_event_with_its_id(
    uow_factory: Factory, backend: str, request: pytest.FixtureRequest
) -> None:
    with uow_factory() as uow:
        stored = uow.events.append(event(1, "submit"))
        uow.commit()
    assert stored.id is not None
    with uow_factory() as uow:
        assert uow.events.for_subject("job", 1) == [stored]


def test_events_come_back_in_order_per_subject(uow_factory: Factory) -> None:
    appended = [
        event(1, "submit"),
        event(2, "submit"),
        event(1, "approve", T0 - timedelta(1)),
        event(1, "started", subject="printer"),
        event(1, "confirm"),
    ]
    with uow_factory() as uow:
        for e in appended:
            uow.events.append(e)
        uow.commit()
    with uow_factory() as uow:
        job_1 = uow.events.for_subject("job", 1)
        assert uow.events.for_subject("job", 3) == []
        assert [e.kind for e in uow.events.for_subject("printer", 1)] == ["started"]
    assert [e.kind for e in job_1] == ["submit", "approve", "confirm"]  # append order
    ids = [e.id for e in job_1]
    assert None not in ids and ids == sorted(ids)
    assert [attrs.evolve(e, id=None) for e in job_1] == [appended[0], appended[2], appended[4]]
    assert job_1[0].at.utcoffset() == timedelta(0)
    assert job_1[0].actor == Actor("staff", "Sam", "front-desk")


def test_events_survive_the_removal_of_their_job(uow_factory: Factory) -> None:
    job = make_job()
    with uow_factory() as uow:
        job_id = uow.jobs.add(job)
        uow.events.append(event(job_id, "submit"))
        uow.commit()
    with uow_factory() as uow:
        uow.jobs.remove(job)
        uow.events.append(attrs.evolve(event(job_id, "delete"), to_status="deleted"))
        uow.commit()
    with uow_factory() as uow:
        assert [e.kind for e in uow.events.for_subject("job", job_id)] == ["submit", "delete"]


# --- staff and settings ---------------------------------------------------------------


def test_staff_add_get_list_and_set_active(uow_factory: Factory) -> None:
    with uow_factory() as uow:
        assert uow.staff.get("Sam") is None
        assert uow.staff.list() == []
        for name in ("sam", "Bob", "alex"):
            uow.staff.add(StaffMember(name, True, T0))
        uow.commit()
    with uow_factory() as uow:
        assert uow.staff.get("Bob") == StaffMember("Bob", True, T0)
        assert uow.staff.get("bob") is None  # names are exact
        uow.staff.set_active("sam", False)
        with pytest.raises(NotFoundError):
            uow.staff.set_active("nobody", False)
        uow.commit()
    with uow_factory() as uow:
        assert [m.name for m in uow.staff.list()] == ["Bob", "alex"]
        assert [m.name for m in uow.staff.list(active_only=False)] == ["Bob", "alex", "sam"]
        assert uow.staff.get("sam") == StaffMember("sam", False, T0)
        uow.staff.add(StaffMember("sam", True, T0 + timedelta(days=1)))  # reactivate
        uow.commit()
    with uow_factory() as uow:
        assert uow.staff.get("sam") == StaffMember("sam", True, T0 + timedelta(days=1))
        assert [m.name for m in uow.staff.list()] == ["Bob", "alex", "sam"]


def test_staff_member_without_added_at(uow_factory: Factory) -> None:
    with uow_factory() as uow:
        uow.staff.add(StaffMember("Kim"))
        uow.commit()
    with uow_factory() as uow:
        assert uow.staff.get("Kim") == StaffMember("Kim", True, None)


def test_settings_get_set_and_overwrite(uow_factory: Factory) -> None:
    with uow_factory() as uow:
        assert uow.settings.get("staff_password_hash") is None
        uow.settings.set("staff_password_hash", "$argon2id$v=19$first")
        uow.settings.set("other", "")
        uow.commit()
    with uow_factory() as uow:
        assert uow.settings.get("staff_password_hash") == "$argon2id$v=19$first"
        assert uow.settings.get("other") == ""
        uow.settings.set("staff_password_hash", "second")
        uow.commit()
    with uow_factory() as uow:
        assert uow.settings.get("staff_password_hash") == "second"


def _session(n: int, at: datetime = T0) -> WorkstationSession:
    return WorkstationSession(id=f"sid-{n}", workstation=f"Front desk {n} ✓", started_at=at,
                              last_seen_at=at)


def test_sessions_add_get_list_touch_and_end(uow_factory: Factory) -> None:
    with uow_factory() as uow:
        uow.sessions.add(_session(1))
        uow.sessions.add(_session(2, T0 + timedelta(minutes=5)))
        uow.commit()
    with uow_factory() as uow:
        assert uow.sessions.get("sid-1") == _session(1)
        assert uow.sessions.get("nope") is None
        assert [s.id for s in uow.sessions.list()] == ["sid-2", "sid-1"]  # newest first
        uow.sessions.touch("sid-1", T0 + timedelta(minutes=9))
        assert uow.sessions.end("sid-2", T0 + timedelta(minutes=10), "logged out") is True
        assert uow.sessions.end("sid-2", T0 + timedelta(minutes=11), "again") is False
        assert uow.sessions.end("unknown", T0, "x") is False
        uow.commit()
    with uow_factory() as uow:
        one, two = uow.sessions.get("sid-1"), uow.sessions.get("sid-2")
        assert one is not None and one.last_seen_at == T0 + timedelta(minutes=9) and one.active
        assert two is not None and not two.active
        assert (two.ended_at, two.ended_by) == (T0 + timedelta(minutes=10), "logged out")
        assert [s.id for s in uow.sessions.list()] == ["sid-1"]
        assert {s.id for s in uow.sessions.list(active_only=False)} == {"sid-1", "sid-2"}


def test_sessions_end_all_ends_only_the_active_ones(uow_factory: Factory) -> None:
    with uow_factory() as uow:
        for n in range(3):
            uow.sessions.add(_session(n))
        uow.sessions.end("sid-0", T0, "logged out")
        uow.commit()
    with uow_factory() as uow:
        assert uow.sessions.end_all(T0 + timedelta(hours=1), "password changed") == 2
        uow.commit()
    with uow_factory() as uow:
        assert uow.sessions.list() == []
        ended = {s.id: s.ended_by for s in uow.sessions.list(active_only=False)}
        assert ended == {"sid-0": "logged out", "sid-1": "password changed",
                         "sid-2": "password changed"}


def test_sessions_written_without_commit_are_rolled_back(uow_factory: Factory) -> None:
    with uow_factory() as uow:
        uow.sessions.add(_session(5))
    with uow_factory() as uow:
        assert uow.sessions.get("sid-5") is None
