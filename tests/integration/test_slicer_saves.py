"""The slicer's saves on a real directory tree (LocalFileStore.scan_saves, stage_save,
remove_save) with the real sliced files from ../shared/fixtures/sliced, and adoption
through the service with the real slicer-file reader.

Junk dropped into the job folder beside the real files: a symlink to a file outside the
storage root, a symlink to another file in the folder, a hard link, an empty file, a
model ``.stl``, a file over the size limit, a file just written (still growing), a FIFO,
a sub-folder named like a save, a name with undecodable bytes, hidden and temporary
files (``.~lock…#``, ``plate.gcode.tmp``), and names with ``..`` or ``/`` asked for by
hand; the job folder itself swapped for a symlink.
"""

from __future__ import annotations

import os
import shutil
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from adapters.files import LocalFileStore
from adapters.meshes import read_slice_estimate
from adapters.meshes.archives import ArchiveLimits
from printcore import PrintRequests, StaffDirectory, Submission
from printcore.errors import (
    FileTooLargeError,
    NotFoundError,
    StorageError,
    UnsupportedFileError,
    ValidationError,
)
from printcore.memory import FixedClock, MemorySigner, PlainHasher
from printcore.requests.job import Actor, Job
from printcore.requests.memory import MemoryDatabase, MemoryUnitOfWork
from printcore.requests.saves import candidates
from printcore.slicing import SliceEstimate

ANA = Actor.staff("Ana Lee", "front-desk")
LIMIT = 5_000_000
OLD = time.time() - 3600  # an mtime well past the settle time


def _aged(path: Path, at: float = OLD) -> Path:
    os.utime(path, (at, at), follow_symlinks=False)
    return path


def _lab(root: Path) -> tuple[PrintRequests, LocalFileStore, Job]:
    db = MemoryDatabase()
    files = LocalFileStore(root)
    files.prepare()
    clock = FixedClock()

    def uow() -> MemoryUnitOfWork:
        return MemoryUnitOfWork(db)

    StaffDirectory(uow=uow, hasher=PlainHasher(), clock=clock).add(ANA.name)
    svc = PrintRequests(uow=uow, files=files, signer=MemorySigner(), clock=clock)
    model = root / ".staging" / "upload.part"
    model.write_bytes(b"solid x\nendsolid x\n")
    staged = files_stage(model, "bracket.stl", ".stl")
    job = svc.submit(Submission(
        student_name="Jane Doe", email="jane@university.edu", discipline="ME",
        class_number="ME 101", print_method="filament", color="Red", preferred_printer="",
        notes=""), staged)
    return svc, files, job


def files_stage(path: Path, name: str, extension: str):  # type: ignore[no-untyped-def]
    import hashlib

    from printcore.requests.ports import StagedFile

    data = path.read_bytes()
    return StagedFile(path, name, extension, len(data), hashlib.sha256(data).hexdigest())


@pytest.fixture
def lab(tmp_path: Path):  # type: ignore[no-untyped-def]
    return _lab(tmp_path / "storage")


def test_scan_offers_the_real_saves_and_refuses_the_junk(lab, fixtures_dir: Path, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    svc, files, job = lab
    folder = files.folder(job)
    sliced = fixtures_dir / "sliced"
    _aged(Path(shutil.copy(sliced / "wormdrive.gcode.3mf", folder / "wormdrive.gcode.3mf")),
          OLD)
    _aged(Path(shutil.copy(sliced / "square_ring_plate_1.gcode", folder / "ring.gcode")),
          OLD + 60)  # newer, but a .gcode ranks below a .gcode.3mf
    outside = tmp_path / "secret.gcode"
    outside.write_text("; not the lab's")
    (folder / "escape.gcode").symlink_to(outside)
    (folder / "inner.gcode.3mf").symlink_to(folder / "wormdrive.gcode.3mf")
    os.link(outside, folder / "hard.gcode")
    _aged(folder / "hard.gcode")
    (folder / "empty.gcode").touch()
    _aged(folder / "empty.gcode")
    _aged(Path(shutil.copy(fixtures_dir / "models" / "Moon.stl", folder / "Moon.stl")))
    with open(folder / "huge.gcode", "wb") as handle:
        handle.truncate(LIMIT + 1)
    _aged(folder / "huge.gcode")
    (folder / "growing.gcode.3mf").write_bytes(b"PK\x03\x04 half")  # mtime: now
    os.mkfifo(folder / "pipe.gcode")
    _aged(folder / "pipe.gcode")
    (folder / "sub.gcode").mkdir()
    (folder / ".~lock.wormdrive.gcode.3mf#").write_text("lock")
    (folder / "plate.gcode.tmp").write_text("tmp")
    weird = os.fsencode(str(folder)) + b"/bad\xff.gcode"
    with open(weird, "wb") as handle:
        handle.write(b"; g")
    os.utime(weird, (OLD, OLD))

    scan = files.scan_saves(job, LIMIT)
    assert [s.name for s in scan.saves] == ["ring.gcode", "wormdrive.gcode.3mf"]
    reasons = {s.name: s.reason for s in scan.skipped}
    assert reasons == {
        "bad\ufffd.gcode": "The file name holds characters that are not plain text; rename "
                           "the file.",
        "empty.gcode": "empty",
        "escape.gcode": "a link, not a file the slicer saved",
        "growing.gcode.3mf": "still being written; rescan in a moment",
        "hard.gcode": "a hard link to another file; save a real copy",
        "huge.gcode": "larger than the 5 MB upload limit",
        "inner.gcode.3mf": "a link, not a file the slicer saved",
        "pipe.gcode": "not a regular file",
        "sub.gcode": "not a regular file",
    }
    ranked = candidates(job, scan.saves)
    assert [c.name for c in ranked] == ["wormdrive.gcode.3mf", "ring.gcode"]
    assert ranked[0].size_bytes == (sliced / "wormdrive.gcode.3mf").stat().st_size
    assert ranked[0].at == datetime.fromtimestamp(OLD, UTC)


def test_stage_save_refuses_links_bad_names_and_vanished_files(lab, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    svc, files, job = lab
    folder = files.folder(job)
    outside = tmp_path / "secret.gcode"
    outside.write_text("; secret")
    (folder / "escape.gcode").symlink_to(outside)
    (folder / "big.gcode").write_bytes(b";" * 100)
    _aged(folder / "big.gcode")
    staging_before = sorted(files.staging_dir.iterdir())
    for name in ("../../secret.gcode", "sub/x.gcode", "..", "a..b.gcode", "x.stl"):
        with pytest.raises(ValidationError) as bad:
            files.stage_save(job, name, LIMIT)
        assert "authoritative_file" in bad.value.fields
    with pytest.raises(UnsupportedFileError, match="link"):
        files.stage_save(job, "escape.gcode", LIMIT)
    with pytest.raises(NotFoundError):
        files.stage_save(job, "gone.gcode", LIMIT)
    with pytest.raises(FileTooLargeError):
        files.stage_save(job, "big.gcode", 10)
    assert sorted(files.staging_dir.iterdir()) == staging_before  # nothing left behind
    assert outside.read_text() == "; secret"


def test_a_job_folder_swapped_for_a_link_is_not_read(lab, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    svc, files, job = lab
    folder = files.folder(job)
    elsewhere = tmp_path / "elsewhere"
    shutil.move(folder, elsewhere)
    (elsewhere / "plate.gcode").write_text("; g")
    _aged(elsewhere / "plate.gcode")
    folder.symlink_to(elsewhere, target_is_directory=True)
    with pytest.raises(StorageError):
        files.scan_saves(job, LIMIT)
    with pytest.raises(StorageError):
        files.stage_save(job, "plate.gcode", LIMIT)


def test_adopting_the_real_save_stores_it_with_its_estimate(lab, fixtures_dir: Path) -> None:  # type: ignore[no-untyped-def]
    svc, files, job = lab
    folder = files.folder(job)
    source = fixtures_dir / "sliced" / "wormdrive.gcode.3mf"
    _aged(Path(shutil.copy(source, folder / "wormdrive.gcode.3mf")))
    staged = files.stage_save(job, "wormdrive.gcode.3mf", LIMIT)
    estimate = read_slice_estimate(staged.path, staged.extension, ArchiveLimits())
    assert (estimate.seconds, estimate.grams) == (3256, 10.48)  # the fixtures README
    stored = svc.add_sliced_file(job.id, ANA, staged, estimate, job.version,
                                 save_name="wormdrive.gcode.3mf")
    job = svc.get(job.id)
    assert stored.stored_name == "JaneDoe_Filament_Red_1_sliced.gcode.3mf"
    assert (folder / stored.stored_name).read_bytes() == source.read_bytes()
    assert not (folder / "wormdrive.gcode.3mf").exists()  # moved, not copied
    metadata = files.read_metadata(job)
    assert [f["stored_name"] for f in metadata["files"]] == [
        "JaneDoe_Filament_Red_1.stl", stored.stored_name]
    assert sorted(p.name for p in folder.iterdir()) == sorted(
        [*(f["stored_name"] for f in metadata["files"]), "metadata.json"])
    event = svc.history(job.id)[-1]
    assert (event.kind, event.details["source"], event.actor.name) == (
        "add_sliced_file", "slicer save", ANA.name)
    assert files.scan_saves(job, LIMIT).saves == ()


def test_a_save_rewritten_after_staging_is_kept_and_a_generated_name_never_overwrites(
        lab, fixtures_dir: Path) -> None:  # type: ignore[no-untyped-def]
    svc, files, job = lab
    folder = files.folder(job)
    (folder / "plate.gcode").write_text("; first")
    _aged(folder / "plate.gcode")
    # A file the slicer saved under the name printcore would generate next:
    (folder / "JaneDoe_Filament_Red_1_sliced.gcode").write_text("; the slicer's own")
    _aged(folder / "JaneDoe_Filament_Red_1_sliced.gcode")
    staged = files.stage_save(job, "plate.gcode", LIMIT)
    (folder / "plate.gcode").write_text("; second, newer")
    stored = svc.add_sliced_file(job.id, ANA, staged, SliceEstimate(seconds=34),
                                 save_name="plate.gcode")
    assert stored.stored_name == "JaneDoe_Filament_Red_1_sliced2.gcode"
    assert (folder / "JaneDoe_Filament_Red_1_sliced.gcode").read_text() == "; the slicer's own"
    assert (folder / "plate.gcode").read_text() == "; second, newer"  # kept: a newer save
    assert (folder / stored.stored_name).read_text() == "; first"
