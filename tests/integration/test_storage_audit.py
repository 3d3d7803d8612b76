"""The storage audit (:mod:`adapters.files.audit`) finds what a crash between copy, commit
and delete leaves (and what a person did by hand), and ``repair`` fixes the safe ones,
each as an event; real folders, on SQLite and PostgreSQL.

Bad states tried: an old folder left after the commit, a new copy left before it, a
folder only in the wrong status folder, a copy under an old name (interrupted
correction), a tampered file with and without an intact copy elsewhere, a deleted
authoritative file, metadata.json edited / unparseable / missing, partial uploads and
temporary copy folders old and fresh, folders of unknown and of deleted jobs, a folder
not named like a job's, a leftover copy holding a file the job's folder lacks, a job
changed between the scan and the repair, and a job with no folder at all.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import Engine

from adapters.files import LocalFileStore, StagingArea
from adapters.files.audit import AuditReport, audit_storage
from adapters.sql import SqlUnitOfWork
from adapters.sql.tables import events as events_table
from adapters.sql.tables import jobs as jobs_table
from adapters.tokens import ItsdangerousSigner
from printcore import Actor, PrintRequests, SliceEstimate, StaffDirectory, StagedFile, Submission
from printcore.events import Event
from printcore.lab_events import LAB_ID, LAB_SUBJECT
from printcore.memory import PlainHasher, SystemClock
from printcore.requests.job import Job

ADA = Actor.staff("Ada", "Desk")
OLD = time.time() - 3600  # an hour ago: past the settle window


class World:
    def __init__(self, svc: PrintRequests, store: LocalFileStore,
                 uow: Callable[[], SqlUnitOfWork], home: Path, engine: Engine) -> None:
        self.svc, self.store, self.uow, self.home, self.engine = svc, store, uow, home, engine

    def audit(self, repair: bool = False, **kw: object) -> AuditReport:
        return audit_storage(self.store, self.uow, repair=repair, **kw)  # type: ignore[arg-type]

    def events(self, job_id: int, kind: str = "audit_repaired") -> list[dict[str, object]]:
        with self.uow() as work:
            return [e.details for e in work.events.for_subject("job", job_id)
                    if e.kind == kind]

    def lab_events(self) -> list[dict[str, object]]:
        with self.uow() as work:
            return [e.details for e in work.events.for_subject(LAB_SUBJECT, LAB_ID)
                    if e.kind == "audit_repaired"]


def _stage(store: LocalFileStore, content: bytes, name: str, ext: str) -> StagedFile:
    upload = StagingArea(store.staging_dir).open(10_000_000)
    upload.write(content)
    digest = upload.finish()
    return StagedFile(upload.path, name, ext, len(content), digest)


def _aged(path: Path) -> Path:
    os.utime(path, (OLD, OLD))
    return path


def _tree(root: Path) -> dict[str, bytes | None]:
    return {p.relative_to(root).as_posix(): (p.read_bytes() if p.is_file() else None)
            for p in sorted(root.rglob("*"))}


@pytest.fixture()
def world(sql_engine: Engine, tmp_path: Path) -> Iterator[World]:
    store = LocalFileStore(tmp_path / "storage")
    store.prepare()

    def uow() -> SqlUnitOfWork:
        return SqlUnitOfWork(sql_engine)

    svc = PrintRequests(uow=uow, files=store, signer=ItsdangerousSigner("s"),
                        clock=SystemClock())
    StaffDirectory(uow=uow, hasher=PlainHasher(), clock=SystemClock()).add("Ada")
    yield World(svc, store, uow, tmp_path, sql_engine)


def _approved_job(w: World, name: str = "Jane Doe") -> Job:
    job = w.svc.submit(Submission(name, "j@u.edu", "ME", "", "filament", "Red"),
                       _stage(w.store, b"solid x\nendsolid x\n", "x.stl", ".stl"))
    assert job.id is not None
    f = w.svc.add_sliced_file(job.id, ADA, _stage(w.store, b"; gcode\n", "x.gcode", ".gcode"),
                              SliceEstimate(60, 2.0))
    w.svc.approve(job.id, ADA, 2.0, 1.0, f.stored_name)
    return w.svc.get(job.id)


def _kinds(report: AuditReport) -> list[str]:
    return [f.kind for f in report.findings]


def test_a_clean_store_passes(world: World) -> None:
    _approved_job(world)
    report = world.audit()
    assert report.jobs_checked == 1 and report.findings == [] and report.ok
    assert report.problems == [] and report.repairs == []


def test_leftovers_of_interrupted_moves_are_found_and_repaired(world: World) -> None:
    job = _approved_job(world)
    assert job.id is not None
    # Crash after the commit, before the delete: the old Uploaded folder is still there.
    shutil.copytree(world.store.folder(job, "pending"), world.store.folder(job, "uploaded"))
    _aged(world.store.folder(job, "uploaded"))
    # Crash before the commit of a next move: a copy already in ReadyToPrint.
    world.store.copy_job(job, "pending", "ready_to_print")
    _aged(world.store.folder(job, "ready_to_print"))
    before = _tree(world.store.root)
    dry = world.audit()
    assert _kinds(dry) == ["stale_duplicate", "stale_duplicate"] and not dry.ok
    assert any("leftover copy in Uploaded/" in p for p in dry.problems)
    assert [r.finding.repair for r in dry.repairs] == [
        f"remove ReadyToPrint/{world.store.folder(job).name}",
        f"remove Uploaded/{world.store.folder(job).name}"]
    assert not any(r.done for r in dry.repairs)
    assert _tree(world.store.root) == before, "a dry run changes nothing"
    assert world.events(job.id) == []

    repaired = world.audit(repair=True, actor=ADA)
    assert len(repaired.repaired) == 2 and repaired.ok
    assert not world.store.folder(job, "uploaded").exists()
    assert not world.store.folder(job, "ready_to_print").exists()
    assert world.audit().findings == []
    events = world.events(job.id)
    assert [e["finding"] for e in events] == ["stale_duplicate", "stale_duplicate"]
    with world.uow() as work:
        actors = {e.actor for e in work.events.for_subject("job", job.id)
                  if e.kind == "audit_repaired"}
    assert actors == {ADA}


def test_a_fresh_copy_is_a_move_in_progress_and_left_alone(world: World) -> None:
    job = _approved_job(world)
    world.store.copy_job(job, "pending", "ready_to_print")  # just now: a move about to commit
    assert world.audit(repair=True).findings == []
    assert world.store.folder(job, "ready_to_print").is_dir()
    assert _kinds(world.audit(settle_seconds=0)) == ["stale_duplicate"]


def test_a_folder_in_the_wrong_status_folder_is_moved(world: World) -> None:
    job = _approved_job(world)
    assert job.id is not None
    shutil.move(world.store.folder(job, "pending"), world.store.folder(job, "uploaded"))
    dry = world.audit()
    name = world.store.folder(job).name
    assert _kinds(dry) == ["folder_state_mismatch"]
    f = dry.findings[0]
    assert (f.path, f.target) == (f"Uploaded/{name}", f"Pending/{name}")
    assert f.repair == f"move Uploaded/{name} to Pending/{name}"
    report = world.audit(repair=True)
    assert report.repaired == [f"job {job.id}: move Uploaded/{name} to Pending/{name}"]
    assert not world.store.folder(job, "uploaded").exists()
    assert world.store.exists(job, job.authoritative_file)  # type: ignore[arg-type]
    assert world.store.read_metadata(job)["status"] == "pending"
    assert world.audit().findings == []
    assert world.events(job.id)[0]["finding"] == "folder_state_mismatch"


def test_a_tampered_file_is_restored_from_an_intact_copy_or_reported(world: World) -> None:
    job = _approved_job(world)
    assert job.id is not None
    original = job.files[0].stored_name
    shutil.copytree(world.store.folder(job), world.store.folder(job, "uploaded"))
    _aged(world.store.folder(job, "uploaded"))
    (world.store.folder(job) / original).write_bytes(b"changed")
    report = world.audit(repair=True)
    assert _kinds(report) == ["missing_file", "stale_duplicate"] and report.ok
    assert (world.store.folder(job) / original).read_bytes() == b"solid x\nendsolid x\n"
    assert world.audit().findings == []

    # No intact copy left: reported, not repairable, nothing removed.
    (world.store.folder(job) / original).write_bytes(b"changed again")
    report = world.audit(repair=True)
    assert _kinds(report) == ["missing_file"] and not report.ok
    assert report.findings[0].repair is None and "restore it from a backup" in report.problems[0]
    assert (world.store.folder(job) / original).read_bytes() == b"changed again"


def test_a_missing_authoritative_file_is_reported(world: World) -> None:
    job = _approved_job(world)
    assert job.authoritative_file is not None
    (world.store.folder(job) / job.authoritative_file).unlink()
    report = world.audit(repair=True)
    assert _kinds(report) == ["missing_authoritative_file"] and not report.ok
    assert "upload the sliced file again" in report.problems[0]


def test_metadata_differing_from_the_database_is_rewritten(world: World) -> None:
    job = _approved_job(world)
    assert job.id is not None
    path = world.store.folder(job) / "metadata.json"
    data = json.loads(path.read_text())
    data["email"] = "someone@else.edu"
    path.write_text(json.dumps(data))
    assert _kinds(world.audit()) == ["metadata_mismatch"]
    assert world.audit(repair=True).ok
    assert world.store.read_metadata(job)["email"] == "j@u.edu"
    for broken in ("{not json", None):
        if broken is None:
            path.unlink()
        else:
            path.write_text(broken)
        assert _kinds(world.audit()) == ["metadata_mismatch"]
        assert world.audit(repair=True).ok
    assert world.audit().findings == []
    assert [e["finding"] for e in world.events(job.id)] == ["metadata_mismatch"] * 3


def test_staging_leftovers_older_than_the_window_are_removed(world: World) -> None:
    job = _approved_job(world)
    staging = world.store.staging_dir
    old_part = _aged(_write(staging / f"{uuid.uuid4().hex}.part", b"half an upl"))
    new_part = _write(staging / f"{uuid.uuid4().hex}.part", b"being written")
    temp_dir = world.store.root / "Printing" / f".{world.store.folder(job).name}.{uuid.uuid4().hex}.tmp"
    temp_dir.mkdir()
    _write(temp_dir / "x.stl", b"partial copy")
    _aged(temp_dir)
    temp_meta = _aged(_write(world.store.folder(job) / f".metadata.json.{uuid.uuid4().hex}.tmp",
                             b"{"))
    report = world.audit(repair=True)
    assert _kinds(report) == ["staging_leftover"] * 3 and report.ok
    assert not old_part.exists() and not temp_dir.exists() and not temp_meta.exists()
    assert new_part.exists(), "an upload being received is left alone"
    # The partial upload belongs to no job: a lab event; the two temporary copies of
    # job 1's folder and metadata: events on the job.
    assert [e["finding"] for e in world.lab_events()] == ["staging_leftover"]
    assert job.id is not None and len(world.events(job.id)) == 2
    assert world.audit().findings == []


def _write(path: Path, content: bytes) -> Path:
    path.write_bytes(content)
    return path


def test_orphan_folders_are_reported_never_deleted(world: World) -> None:
    job = _approved_job(world)
    other = _approved_job(world, "John Roe")
    assert other.id is not None
    stray = world.store.root / "Uploaded" / "Somebody_Filament_Red_999"
    stray.mkdir()
    _write(stray / "model.stl", b"solid")
    odd = world.store.root / "Pending" / "my notes"
    odd.mkdir()
    _write(world.store.root / "Pending" / ".DS_Store", b"mac")
    kept = world.store.root / "kept"
    shutil.copytree(world.store.folder(other), kept)
    world.svc.delete(other.id, ADA, "sent twice")
    shutil.copytree(kept, world.store.folder(other, "pending"))  # the delete's crash leftover
    report = world.audit(repair=True)
    assert _kinds(report) == ["orphan_folder"] * 3 and not report.ok
    assert report.repairs == []
    assert stray.is_dir() and odd.is_dir() and world.store.folder(other, "pending").is_dir()
    messages = {f.job_id: f.message for f in report.findings}
    assert "was deleted" in messages[other.id] and "no such job" in messages[999]
    assert "not named like a job" in messages[None]
    # A job removed by retention (its tombstone) whose folder survived the run.
    with world.uow() as work:
        work.events.append(Event("job", 999, "archived", ADA, datetime.now(UTC),
                                 details={"archive": "retention-2026.zip"}))
        work.commit()
    (finding,) = [f for f in world.audit().findings if f.job_id == 999]
    assert "archived by retention (its files are in the archive retention-2026.zip)" in (
        finding.message) and finding.repair is None
    assert world.audit().jobs_checked == 1 and job.id is not None


def test_a_submission_killed_before_its_metadata_is_a_leftover(world: World) -> None:
    """The web process killed after moving a submission's model into ``Uploaded/`` and
    before writing its ``metadata.json`` (bench/faults_web_kill.py found one): no row, no
    history, a later job saved, so the id was never saved: a leftover its repairs
    remove. The same folder with a sub-folder in it (not what a submission leaves) stays
    an orphan for staff."""
    first = _approved_job(world)
    later = _approved_job(world, "John Roe")
    assert first.id is not None and later.id is not None
    with world.uow() as work:  # as if the first had never been committed
        work.connection.execute(jobs_table.delete().where(jobs_table.c.id == first.id))
        work.connection.execute(events_table.delete().where(
            (events_table.c.subject == "job") & (events_table.c.subject_id == first.id)))
        work.commit()
    folder = world.store.folder(first)
    shutil.rmtree(folder)
    folder = world.store.root / "Uploaded" / folder.name
    folder.mkdir()
    _write(folder / "x.stl", b"solid x\nendsolid x\n")
    _aged(folder / "x.stl")
    _aged(folder)
    report = world.audit(repair=True)
    assert [f.kind for f in report.findings if f.job_id == first.id] == ["staging_leftover"]
    assert not folder.exists()
    assert world.audit().ok

    folder.mkdir()
    (folder / "notes").mkdir()
    _aged(folder)
    kinds = [f.kind for f in world.audit(repair=True).findings if f.job_id == first.id]
    assert kinds == ["orphan_folder"] and folder.is_dir()


def test_a_leftover_holding_other_files_is_kept(world: World) -> None:
    job = _approved_job(world)
    shutil.copytree(world.store.folder(job), world.store.folder(job, "uploaded"))
    _write(world.store.folder(job, "uploaded") / "plate_2.3mf", b"a slicer's save")
    _aged(world.store.folder(job, "uploaded"))
    report = world.audit(repair=True)
    assert _kinds(report) == ["stale_duplicate"] and not report.ok
    assert report.repairs[0].error is not None and "plate_2.3mf" in report.repairs[0].error
    assert world.store.folder(job, "uploaded").is_dir()
    # A thumbnail is made again when missing: it does not keep a leftover.
    (world.store.folder(job, "uploaded") / "plate_2.3mf").unlink()
    _write(world.store.folder(job, "uploaded") / "thumbnail.png", b"png")
    _aged(world.store.folder(job, "uploaded"))
    assert world.audit(repair=True).ok
    assert not world.store.folder(job, "uploaded").exists()


def test_an_old_name_copy_after_an_interrupted_correction(world: World) -> None:
    job = _approved_job(world)
    assert job.id is not None
    before = world.store.folder(job)
    kept = world.home / "kept"
    shutil.copytree(before, kept)
    world.svc.edit_details(job.id, ADA, {"color": "Blue"})
    shutil.copytree(kept, before)  # crash after the commit, before removing the old name
    _aged(before)
    report = world.audit(repair=True)
    assert _kinds(report) == ["stale_duplicate"] and report.ok
    assert not before.exists() and world.store.folder(world.svc.get(job.id)).is_dir()


def test_a_job_changed_between_scan_and_repair_is_skipped(world: World) -> None:
    job = _approved_job(world)
    assert job.id is not None
    shutil.copytree(world.store.folder(job), world.store.folder(job, "uploaded"))
    _aged(world.store.folder(job, "uploaded"))
    from adapters.files import audit as module

    audit = module._Audit(world.store, world.uow, module.SETTLE_SECONDS)  # type: ignore[arg-type]
    report = AuditReport()
    audit.scan(report)
    world.svc.force_confirm(job.id, ADA, "paid by phone")
    assert audit.apply(report.findings[0]) == "the job changed since the scan; run the audit again"
    assert world.store.folder(job, "uploaded").is_dir()


def test_a_job_without_any_folder(world: World) -> None:
    job = _approved_job(world)
    shutil.rmtree(world.store.folder(job))
    report = world.audit(repair=True)
    assert _kinds(report) == ["missing_folder"] and not report.ok
    assert "restore its files from a backup" in report.problems[0]


def test_the_cli_exits_non_zero_on_problems(world: World) -> None:
    job = _approved_job(world)
    shutil.copytree(world.store.folder(job, "pending"), world.store.folder(job, "uploaded"))
    _aged(world.store.folder(job, "uploaded"))
    env = {**os.environ, "PRINTCORE_HOME": str(world.home), "PRINTCORE_STORAGE": str(world.store.root),
           "DATABASE_URL": world.engine.url.render_as_string(hide_password=False)}
    cmd = [sys.executable, "-m", "entrypoints.cli", "storage", "check"]
    first = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=60)
    assert first.returncode == 1 and "leftover copy in Uploaded/" in first.stdout, first
    name = world.store.folder(job).name
    assert f"[repair: remove Uploaded/{name}]" in first.stdout, "the dry run says what it would do"
    fixed = subprocess.run([*cmd, "--repair"], env=env, capture_output=True, text=True, timeout=60)
    assert fixed.returncode == 0 and "repaired: job" in fixed.stdout, fixed
    assert job.id is not None
    with world.uow() as work:
        (event,) = [e for e in work.events.for_subject("job", job.id)
                    if e.kind == "audit_repaired"]
    assert event.actor.kind == "system" and event.actor.name.startswith("storage check (")
    assert event.actor.workstation  # the host it ran on
    again = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=60)
    assert again.returncode == 0 and "0 problem(s)" in again.stdout, again


def test_a_file_rewritten_with_its_mtime_put_back_is_still_checked(world: World) -> None:
    """The audit remembers hashes of unchanged files; same size and mtime is not enough."""
    job = _approved_job(world)
    assert world.audit().findings == []  # every file hashed (and remembered) once
    path = world.store.folder(job) / job.files[0].stored_name
    info = path.stat()
    path.write_bytes(b"X" * info.st_size)
    os.utime(path, ns=(info.st_atime_ns, info.st_mtime_ns))
    assert _kinds(world.audit()) == ["missing_file"]


def test_a_confirmation_reminder_is_not_a_metadata_mismatch(world: World) -> None:
    """A reminder bumps the job's ``updated_at`` without rewriting metadata.json; a
    changed ``updated_at`` alone is not a finding, an extra key is."""
    from datetime import UTC, datetime, timedelta

    job = _approved_job(world)
    path = world.store.folder(job) / "metadata.json"
    assert world.svc.send_confirmation_reminders(datetime.now(UTC) + timedelta(days=6)) == [
        job.id]
    assert world.svc.get(job.id).updated_at != job.updated_at  # type: ignore[arg-type]
    assert world.audit().findings == []
    data = json.loads(path.read_text())
    path.write_text(json.dumps({**data, "surprise": 1}))
    assert _kinds(world.audit()) == ["metadata_mismatch"]
