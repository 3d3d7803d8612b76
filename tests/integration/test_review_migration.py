"""Migration 0006 (job review) on SQLite and PostgreSQL: jobs that were there before the
upgrade come out reviewed by ``'before upgrade'`` at the moment of the upgrade (no NEW
flood), jobs added afterwards are not reviewed, and a downgrade drops the columns."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import Engine, inspect, text

from adapters.sql import SqlUnitOfWork, make_engine, upgrade
from adapters.sql.migrate import downgrade
from printcore.requests.job import Job

T0 = datetime(2026, 9, 1, 15, 0, tzinfo=UTC)


def _insert_old_job(engine: Engine) -> None:
    with engine.begin() as conn:
        conn.execute(text(
            "INSERT INTO jobs (status, version, student_name, email, discipline, class_number,"
            " print_method, color, preferred_printer, notes, created_at, failed_attempts,"
            " files, rejection_reasons, payments) VALUES ('printing', 3, 'Old Ada', "
            "'old@example.edu', 'Art', 'ART 1', 'filament', 'red', '', '', :at, 0, '[]', "
            "'[]', '[]')"), {"at": T0})


def _check(engine: Engine) -> None:
    upgrade(engine, "0005")
    _insert_old_job(engine)
    before = datetime.now(UTC)
    upgrade(engine)
    after = datetime.now(UTC)
    with SqlUnitOfWork(engine) as uow:
        (old,) = uow.jobs.list()
        assert old.reviewed_by == "before upgrade"
        assert old.reviewed_at is not None and before <= old.reviewed_at <= after
        assert old.version == 3  # the upgrade is not a change anyone made
        assert uow.events.for_subject("job", old.id or 0) == []
        new = Job(student_name="New Bea", email="bea@example.edu", discipline="Art",
                  class_number="ART 2", print_method="resin", color="grey", created_at=T0)
        uow.jobs.add(new)
        uow.commit()
    with SqlUnitOfWork(engine) as uow:
        stored = uow.jobs.get(new.id or 0)
    assert (stored.reviewed_at, stored.reviewed_by) == (None, None)
    downgrade(engine, "0005")
    columns = {c["name"] for c in inspect(engine).get_columns("jobs")}
    assert not {"reviewed_at", "reviewed_by"} & columns
    upgrade(engine)


def test_0006_marks_existing_jobs_reviewed_on_sqlite(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'old.db'}")
    try:
        _check(engine)
    finally:
        engine.dispose()


@pytest.mark.postgres
def test_0006_marks_existing_jobs_reviewed_on_postgresql(pg_empty_engine: Engine) -> None:
    _check(pg_empty_engine)
