"""Staff notes and corrected details on every backend (the in-memory fake, SQLite,
PostgreSQL) with the real file store: what ``set_staff_notes``/``edit_details`` change is
read back whole from a fresh unit of work (multi-line, non-ASCII, at the 2000-character
limit), the events keep old and new values, ``metadata.json`` and the search text follow
a corrected email and name; a refused change writes nothing; and migration 0007 gives old
jobs empty notes and drops the columns on downgrade.

Bad inputs tried here: a stale version on SQL (the row's version guard), an unknown
field and an email without ``@`` (nothing stored, no event, metadata unchanged).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import Engine, inspect, text

from adapters.files import LocalFileStore
from adapters.files.store import METADATA_NAME
from adapters.sql import SqlUnitOfWork, make_engine, upgrade
from adapters.sql.migrate import downgrade
from adapters.tokens import ItsdangerousSigner
from printcore import (
    Actor,
    ConcurrentChangeError,
    PrintRequests,
    StaffDirectory,
    StagedFile,
    Submission,
    ValidationError,
)
from printcore.memory import FixedClock, PlainHasher
from printcore.requests.details import STAFF_NOTES_LIMIT
from printcore.requests.ports import RequestsUnitOfWork
from printcore.requests.search import JobQuery

Factory = Callable[[], RequestsUnitOfWork]
ANA = Actor.staff("Ana Lee", "front-desk")
T0 = datetime(2026, 9, 1, 15, 0, tzinfo=UTC)
NOTES = "Élodie called:\n  • brim off\n\tprint at 0.2 mm — 日本語 ok"


def _service(factory: Factory, root: Path) -> tuple[PrintRequests, LocalFileStore, FixedClock]:
    store = LocalFileStore(root)
    store.prepare()
    clock = FixedClock()
    svc = PrintRequests(uow=factory, files=store, signer=ItsdangerousSigner("t" * 32),
                        clock=clock)
    StaffDirectory(uow=factory, hasher=PlainHasher(), clock=clock).add(ANA.name)  # type: ignore[arg-type]
    return svc, store, clock


def _submit(svc: PrintRequests, store: LocalFileStore) -> int:
    content = b"solid x\nendsolid x\n"
    path = store.staging_dir / "upload.part"
    path.write_bytes(content)
    staged = StagedFile(path, "bracket.stl", ".stl", len(content),
                        hashlib.sha256(content).hexdigest())
    job = svc.submit(Submission("Jane van Doe", "jane@univeristy.edu", "Art", "ART 1",
                                "filament", "Red", "", ""), staged)
    assert job.id is not None
    return job.id


def _metadata(store: LocalFileStore, svc: PrintRequests, job_id: int) -> dict[str, object]:
    return dict(json.loads((store.folder(svc.get(job_id)) / METADATA_NAME).read_text("utf-8")))


def test_notes_and_corrections_round_trip(uow_factory: Factory, tmp_path: Path) -> None:
    svc, store, clock = _service(uow_factory, tmp_path / "storage")
    job_id = _submit(svc, store)
    clock.advance(minutes=3)
    noted = svc.set_staff_notes(job_id, ANA, NOTES)
    clock.advance(minutes=2)
    fixed = svc.edit_details(job_id, ANA, {"email": "jane@university.edu",
                                           "student_name": "Janet van Doe",
                                           "preferred_printer": "X1C-2"}, noted.version)

    again = svc.get(job_id)  # a fresh unit of work
    assert again == fixed
    assert (again.staff_notes, again.staff_notes_by) == (NOTES, "Ana Lee")
    assert again.staff_notes_at is not None and again.staff_notes_at.tzinfo is not None
    assert again.staff_notes_at == noted.updated_at
    assert (again.email, again.student_name, again.preferred_printer) == (
        "jane@university.edu", "Janet van Doe", "X1C-2")
    assert again.original is not None and again.original.stored_name.startswith("JaneVanDoe")
    # The folder (named for the student) moved with the name; the files kept their names.
    assert store.path_of(again, again.original.stored_name).is_file()
    assert store.folder(again).name.startswith("JanetVanDoe")
    uploaded = [p.name for p in (store.root / "Uploaded").iterdir()]
    assert uploaded == [store.folder(again).name]

    kinds = [(e.kind, e.details) for e in svc.history(job_id)]
    assert kinds[1] == ("notes", {"old": "", "new": NOTES})
    assert kinds[2] == ("edit", {"changes": {
        "email": {"old": "jane@univeristy.edu", "new": "jane@university.edu"},
        "student_name": {"old": "Jane van Doe", "new": "Janet van Doe"},
        "preferred_printer": {"old": "", "new": "X1C-2"}}})

    meta = _metadata(store, svc, job_id)
    assert (meta["email"], meta["student_name"], meta["staff_notes"]) == (
        "jane@university.edu", "Janet van Doe", NOTES)
    assert [j.id for j in svc.search_jobs(JobQuery(q="janet"))[0]] == [job_id]
    assert [j.id for j in svc.search_jobs(JobQuery(q="@university.edu"))[0]] == [job_id]
    assert svc.search_jobs(JobQuery(q="univeristy"))[1] == 0

    longest = "ü" * STAFF_NOTES_LIMIT
    assert svc.set_staff_notes(job_id, ANA, longest).staff_notes == longest
    assert svc.get(job_id).staff_notes == longest


def test_refused_changes_store_nothing(uow_factory: Factory, tmp_path: Path) -> None:
    svc, store, _ = _service(uow_factory, tmp_path / "storage")
    job_id = _submit(svc, store)
    before, events, meta = svc.get(job_id), svc.history(job_id), _metadata(store, svc, job_id)
    with pytest.raises(ValidationError):
        svc.edit_details(job_id, ANA, {"email": "no-at-sign", "color": "Blue"})
    with pytest.raises(ValidationError):
        svc.edit_details(job_id, ANA, {"print_method": "resin"})
    with pytest.raises(ValidationError):
        svc.set_staff_notes(job_id, ANA, "x" * (STAFF_NOTES_LIMIT + 1))
    with pytest.raises(ConcurrentChangeError):
        svc.set_staff_notes(job_id, ANA, "late", before.version - 1)
    assert (svc.get(job_id), svc.history(job_id), _metadata(store, svc, job_id)) == (
        before, events, meta)


def _migration_check(engine: Engine) -> None:
    upgrade(engine, "0006")
    with engine.begin() as conn:
        conn.execute(text(
            "INSERT INTO jobs (status, version, student_name, email, discipline, class_number,"
            " print_method, color, preferred_printer, notes, created_at, failed_attempts,"
            " files, rejection_reasons, payments) VALUES ('completed', 4, 'Old Ada', "
            "'old@example.edu', 'Art', 'ART 1', 'filament', 'red', '', '', :at, 0, '[]', "
            "'[]', '[]')"), {"at": T0})
    upgrade(engine)
    with SqlUnitOfWork(engine) as uow:
        (old,) = uow.jobs.list()
    assert (old.staff_notes, old.staff_notes_by, old.staff_notes_at, old.version) == (
        "", None, None, 4)
    downgrade(engine, "0006")
    columns = {c["name"] for c in inspect(engine).get_columns("jobs")}
    assert not {"staff_notes", "staff_notes_by", "staff_notes_at"} & columns
    upgrade(engine)


def test_0007_on_sqlite(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'old.db'}")
    try:
        _migration_check(engine)
    finally:
        engine.dispose()


@pytest.mark.postgres
def test_0007_on_postgresql(pg_empty_engine: Engine) -> None:
    _migration_check(pg_empty_engine)
