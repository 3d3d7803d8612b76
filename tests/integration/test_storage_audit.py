"""The storage audit finds what a crash between copy, commit and delete leaves, and
``--repair`` fixes it (real SQLite database, real folders)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from adapters.files import LocalFileStore, StagingArea
from adapters.files.audit import audit_storage
from adapters.sql import SqlUnitOfWork, make_engine, upgrade
from adapters.tokens import ItsdangerousSigner
from printcore import Actor, PrintRequests, SliceEstimate, StaffDirectory, StagedFile, Submission
from printcore.memory import PlainHasher, SystemClock

ADA = Actor.staff("Ada", "Desk")


def _stage(store: LocalFileStore, content: bytes, name: str, ext: str) -> StagedFile:
    upload = StagingArea(store.staging_dir).open(10_000_000)
    upload.write(content)
    digest = upload.finish()
    return StagedFile(upload.path, name, ext, len(content), digest)


@pytest.fixture()
def world(tmp_path: Path):  # type: ignore[no-untyped-def]
    engine = make_engine(f"sqlite:///{tmp_path / 'db.sqlite'}")
    upgrade(engine)
    store = LocalFileStore(tmp_path / "storage")
    store.prepare()
    uow = lambda: SqlUnitOfWork(engine)  # noqa: E731
    svc = PrintRequests(uow=uow, files=store,
                        signer=ItsdangerousSigner("s"), clock=SystemClock())
    StaffDirectory(uow=uow, hasher=PlainHasher(), clock=SystemClock()).add("Ada")
    yield svc, store, uow, tmp_path
    engine.dispose()


def _approved_job(svc: PrintRequests, store: LocalFileStore) -> int:
    job = svc.submit(Submission("Jane Doe", "j@u.edu", "ME", "", "filament", "Red"),
                     _stage(store, b"solid x\nendsolid x\n", "x.stl", ".stl"))
    assert job.id is not None
    f = svc.add_sliced_file(job.id, ADA, _stage(store, b"; gcode\n", "x.gcode", ".gcode"),
                            SliceEstimate(60, 2.0))
    svc.approve(job.id, ADA, 2.0, 1.0, f.stored_name)
    return job.id


def test_a_clean_store_passes(world) -> None:  # type: ignore[no-untyped-def]
    svc, store, uow, _ = world
    _approved_job(svc, store)
    report = audit_storage(store, uow)
    assert report.jobs_checked == 1 and report.problems == [] and report.ok


def test_leftovers_of_interrupted_moves_are_found_and_repaired(world) -> None:  # type: ignore[no-untyped-def]
    svc, store, uow, _ = world
    job_id = _approved_job(svc, store)
    job = svc.get(job_id)
    # Crash after the commit, before the delete: the old Uploaded folder is still there.
    shutil.copytree(store.folder(job, "pending"), store.folder(job, "uploaded"))
    # Crash before the commit of a next move: a copy already in ReadyToPrint.
    store.copy_job(job, "pending", "ready_to_print")
    report = audit_storage(store, uow)
    assert len(report.problems) == 2 and not report.ok
    assert any("leftover copy in uploaded" in p for p in report.problems)
    repaired = audit_storage(store, uow, repair=True)
    assert len(repaired.repaired) == 2
    assert not store.folder(job, "uploaded").exists()
    assert not store.folder(job, "ready_to_print").exists()
    assert audit_storage(store, uow).problems == []


def test_a_missing_folder_is_restored_from_a_complete_leftover(world) -> None:  # type: ignore[no-untyped-def]
    svc, store, uow, _ = world
    job_id = _approved_job(svc, store)
    job = svc.get(job_id)
    shutil.copytree(store.folder(job, "pending"), store.folder(job, "uploaded"))
    shutil.rmtree(store.folder(job, "pending"))
    report = audit_storage(store, uow, repair=True)
    assert report.repaired == [f"job {job_id}: restored from uploaded"]
    assert store.exists(job, job.authoritative_file)  # type: ignore[arg-type]


def test_a_tampered_file_is_reported_not_silently_accepted(world) -> None:  # type: ignore[no-untyped-def]
    svc, store, uow, _ = world
    job_id = _approved_job(svc, store)
    job = svc.get(job_id)
    (store.folder(job) / job.files[0].stored_name).write_bytes(b"changed")
    report = audit_storage(store, uow)
    assert report.problems == [f"job {job_id}: its pending folder is missing or incomplete"]


def test_the_cli_exits_non_zero_on_problems(world, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    svc, store, uow, home = world
    job_id = _approved_job(svc, store)
    job = svc.get(job_id)
    shutil.copytree(store.folder(job, "pending"), store.folder(job, "uploaded"))
    env = {**os.environ, "PRINTCORE_HOME": str(home), "PRINTCORE_STORAGE": str(store.root),
           "DATABASE_URL": f"sqlite:///{home / 'db.sqlite'}"}
    cmd = [sys.executable, "-m", "entrypoints.cli", "storage", "check"]
    first = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=60)
    assert first.returncode == 1 and "leftover copy in uploaded" in first.stdout
    fixed = subprocess.run([*cmd, "--repair"], env=env, capture_output=True, text=True, timeout=60)
    assert fixed.returncode == 0 and "repaired" in fixed.stdout
