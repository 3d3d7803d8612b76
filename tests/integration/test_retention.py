"""Retention (issue 13) against the real things: SQLite and PostgreSQL, a real storage
root, real zips; and ``printcore retention`` as a process (SQLite home).

The lab: one job in every state submitted 40 days ago ("old"; the final ones rejected /
picked up then) and one in every state 5 days ago ("new"), each with its files, events
and outbox rows; retention at 30 days must take exactly the two old final jobs.

Bad inputs tried: an archive folder that does not exist, one that cannot be written
(``chattr +i``, as a full disk would refuse), a job whose pickup is reverted between the
preview and the removal (skipped), two runs at once (each job removed once), a second
identical run (removes nothing), and on the
command line ``--older-than 0``, ``abc``, a missing ``--archive`` folder and an unknown
``--staff`` name (exit 1, nothing removed).
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import zipfile
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import attrs
import pytest
from sqlalchemy import Engine, func, select

from adapters.files import LocalFileStore, StagingArea
from adapters.retention import StorageFolders, ZipArchiver, list_archives, verify_archive
from adapters.sql import SqlUnitOfWork, make_engine, upgrade
from adapters.sql.retention import SqlRetentionStore
from adapters.sql.tables import events, jobs, outbox
from adapters.tokens import ItsdangerousSigner
from printcore import Actor, PrintRequests, SliceEstimate, StaffDirectory, StagedFile, Submission
from printcore.errors import StorageError
from printcore.lab_events import LAB_ID, LAB_SUBJECT
from printcore.memory import FixedClock, PlainHasher
from printcore.requests.retention import Retention, RetentionMode

ANA = Actor.staff("Ana Lee", "front-desk")
STATES = ("uploaded", "pending", "rejected", "ready_to_print", "printing", "completed",
          "paid_picked_up")
NOW = datetime.now(UTC).replace(microsecond=0)


@attrs.define
class Lab:
    engine: Engine
    store: LocalFileStore
    clock: FixedClock
    svc: PrintRequests
    ids: dict[str, dict[str, int]]
    tmp: Path

    def uow(self) -> SqlUnitOfWork:
        return SqlUnitOfWork(self.engine)

    def retention(self, archive_dir: Path | None) -> Retention:
        return Retention(SqlRetentionStore(self.uow), StorageFolders(self.store), self.clock,
                         ZipArchiver(archive_dir, self.store, self.clock.now)
                         if archive_dir is not None else None,
                         active_staff=lambda: {ANA.name})

    @property
    def old_final(self) -> list[int]:
        return [self.ids["old"]["rejected"], self.ids["old"]["paid_picked_up"]]

    def job_rows(self) -> dict[int, str]:
        with self.engine.connect() as conn:
            return dict(conn.execute(select(jobs.c.id, jobs.c.status)).all())  # type: ignore[arg-type]

    def count(self, table: Any) -> int:
        with self.engine.connect() as conn:
            return int(conn.execute(select(func.count()).select_from(table)).scalar_one())

    def tree(self) -> dict[str, bytes]:
        root = self.store.root
        return {p.relative_to(root).as_posix(): p.read_bytes()
                for p in sorted(root.rglob("*"))
                if p.is_file() and p.name != ".printcore-storage"}  # written at first start


def _stage(store: LocalFileStore, content: bytes, name: str, ext: str) -> StagedFile:
    upload = StagingArea(store.staging_dir).open(10_000_000)
    upload.write(content)
    digest = upload.finish()
    return StagedFile(upload.path, name, ext, len(content), digest)


def _job_in(lab_svc: PrintRequests, store: LocalFileStore, uow: Callable[[], SqlUnitOfWork],
            status: str, name: str) -> int:
    svc = lab_svc
    job = svc.submit(Submission(name, f"{name.split()[0].lower()}@u.edu", "ME", "ME 101",
                                "filament", "Red"),
                     _stage(store, f"solid {name}\nendsolid\n".encode(), "part.stl", ".stl"))
    assert job.id is not None
    job_id = job.id
    if status == "uploaded":
        return job_id
    if status == "rejected":
        svc.reject(job_id, ANA, custom_reason="Walls too thin")
        return job_id
    f = svc.add_sliced_file(job_id, ANA, _stage(store, b"; gcode " + name.encode(), "p.gcode",
                                                ".gcode"), SliceEstimate(3600, 12.0))
    svc.approve(job_id, ANA, 12.0, 1.0, f.stored_name)
    if status == "pending":
        return job_id
    with uow() as u:
        token = next(m.payload["confirm_token"] for m in u.outbox.list(limit=1000)
                     if m.subject_id == job_id and "confirm_token" in m.payload)
    svc.confirm(token)
    if status == "ready_to_print":
        return job_id
    svc.start_print(job_id, ANA, "Bambu X1")
    if status == "printing":
        return job_id
    svc.complete(job_id, ANA)
    if status == "completed":
        return job_id
    svc.pick_up(job_id, ANA, 12.5, "T-1", name)
    return job_id


def _lab(engine: Engine, tmp: Path) -> Lab:
    store = LocalFileStore(tmp / "storage")
    store.prepare()
    clock = FixedClock(NOW - timedelta(days=40))
    uow = lambda: SqlUnitOfWork(engine)  # noqa: E731
    svc = PrintRequests(uow=uow, files=store, signer=ItsdangerousSigner("s"), clock=clock)
    StaffDirectory(uow=uow, hasher=PlainHasher(), clock=clock).add(ANA.name)
    ids: dict[str, dict[str, int]] = {"old": {}, "new": {}}
    for age in ("old", "new"):
        for status in STATES:
            ids[age][status] = _job_in(svc, store, uow, status, f"{age.title()} {status}")
        clock.current = NOW - timedelta(days=5)
    clock.current = NOW
    return Lab(engine, store, clock, svc, ids, tmp)


@pytest.fixture
def lab(sql_engine: Engine, tmp_path: Path) -> Lab:
    return _lab(sql_engine, tmp_path)


def test_preview_counts_sizes_and_ids(lab: Lab) -> None:
    before = (lab.job_rows(), lab.count(events), lab.tree())
    plan = lab.retention(None).preview(30)
    assert plan.job_ids == lab.old_final
    assert plan.counts() == {"rejected": 1, "paid_picked_up": 1}
    for planned in plan.jobs:
        with lab.uow() as u:
            folder = lab.store.folder(u.jobs.get(planned.job_id))
        files = [p for p in folder.iterdir() if p.is_file()]
        assert (planned.bytes, planned.files) == (sum(p.stat().st_size for p in files),
                                                  len(files))
        assert planned.files == (2 if planned.status == "rejected" else 3)  # + metadata.json
    assert plan.bytes == sum(j.bytes for j in plan.jobs) > 0
    assert lab.retention(None).preview(3).count == 4
    assert lab.retention(None).preview(41).count == 0
    assert (lab.job_rows(), lab.count(events), lab.tree()) == before  # a preview changes nothing


def test_archive_holds_every_entry_and_removal_leaves_tombstones(lab: Lab) -> None:
    archives = lab.tmp / "archives"
    archives.mkdir()
    originals = {}
    with lab.uow() as u:
        for job_id in lab.old_final:
            job = u.jobs.get(job_id)
            folder = lab.store.folder(job)
            originals[job_id] = (job, {p.name: p.read_bytes() for p in folder.iterdir()},
                                 [e.kind for e in u.events.for_subject("job", job_id)],
                                 folder)
    outbox_before = {j: [r for r in _outbox(lab) if r == j] for j in lab.old_final}
    assert all(outbox_before.values())  # each had emails
    others = {k: v for k, v in lab.job_rows().items() if k not in lab.old_final}

    result = lab.retention(archives).apply(30, RetentionMode.ARCHIVE, ANA)

    assert list(result.removed) == lab.old_final and result.skipped == ()
    assert result.archive is not None
    path = archives / result.archive.name
    assert [a.name for a in list_archives(archives)] == [path.name]
    assert not [p for p in archives.iterdir() if p.name.endswith(".partial")]
    manifest = verify_archive(path)
    with zipfile.ZipFile(path) as zf:
        names = set(zf.namelist())
        listed = {e["name"]: e for e in manifest["entries"]}
        assert names == set(listed) | {"manifest.json"}
        for name, entry in listed.items():  # every entry's checksum, by hand
            body = zf.read(name)
            assert hashlib.sha256(body).hexdigest() == entry["sha256"]
            assert len(body) == entry["bytes"]
        assert manifest["job_ids"] == lab.old_final and manifest["created_by"] == ANA.name
        assert manifest["older_than_days"] == 30
        for job_id in lab.old_final:
            job, files, kinds, folder = originals[job_id]
            row = json.loads(zf.read(f"jobs/{job_id}/job.json"))
            assert (row["id"], row["status"], row["student_name"]) == (
                job_id, job.status, job.student_name)
            assert len(row["payments"]) == len(job.payments)
            assert [e["kind"] for e in json.loads(zf.read(f"jobs/{job_id}/events.json"))] == kinds
            mails = json.loads(zf.read(f"jobs/{job_id}/outbox.json"))
            assert len(mails) == len(outbox_before[job_id]) and mails[0]["subject_id"] == job_id
            assert zf.read(f"jobs/{job_id}/metadata.json") == files.pop("metadata.json")
            for name, content in files.items():
                assert zf.read(f"jobs/{job_id}/files/{name}") == content
            assert {n for n in names if n.startswith(f"jobs/{job_id}/files/")} == {
                f"jobs/{job_id}/files/{n}" for n in files}
            assert not folder.exists()
    # rows, outbox rows gone; everything else untouched; history kept with a tombstone
    assert lab.job_rows() == others
    assert not [j for j in _outbox(lab) if j in lab.old_final]
    with lab.uow() as u:
        for job_id in lab.old_final:
            history = u.events.for_subject("job", job_id)
            assert [e.kind for e in history[:-1]] == originals[job_id][2]
            stone = history[-1]
            assert (stone.kind, stone.actor.name, stone.details["archive"]) == (
                "archived", ANA.name, path.name)
            assert stone.at == lab.clock.now()
        run = u.events.for_subject(LAB_SUBJECT, LAB_ID)
    assert [e.kind for e in run] == ["retention_applied"]
    d = run[0].details
    assert (d["removed"], d["rejected"], d["paid_picked_up"], d["archive"], d["bytes"]) == (
        2, 1, 1, path.name, result.bytes_removed)
    assert d["job_ids"] == lab.old_final and run[0].actor == ANA


def _outbox(lab: Lab) -> list[int]:
    with lab.engine.connect() as conn:
        return [int(i) for i in conn.execute(select(outbox.c.subject_id).where(
            outbox.c.subject == "job")).scalars()]


def test_second_run_removes_nothing(lab: Lab) -> None:
    archives = lab.tmp / "archives"
    archives.mkdir()
    lab.retention(archives).apply(30, RetentionMode.ARCHIVE, ANA)
    rows, tree, zips = lab.job_rows(), lab.tree(), sorted(os.listdir(archives))
    again = lab.retention(archives).apply(30, RetentionMode.ARCHIVE, ANA)
    assert again.removed == () and again.archive is None
    assert (lab.job_rows(), lab.tree(), sorted(os.listdir(archives))) == (rows, tree, zips)
    with lab.uow() as u:
        assert [e.details["removed"] for e in u.events.for_subject(LAB_SUBJECT, LAB_ID)] == [2, 0]


def test_prune_removes_without_a_zip_and_keeps_tombstones(lab: Lab) -> None:
    result = lab.retention(None).apply(30, RetentionMode.PRUNE, ANA)
    assert list(result.removed) == lab.old_final and result.archive is None
    with lab.uow() as u:
        stone = u.events.for_subject("job", lab.old_final[0])[-1]
    assert (stone.kind, stone.details["archive"]) == ("pruned", None)


def _unchanged(lab: Lab) -> Callable[[], None]:
    before = (lab.job_rows(), lab.count(events), lab.count(outbox), lab.tree())

    def check() -> None:
        assert (lab.job_rows(), lab.count(events), lab.count(outbox), lab.tree()) == before

    return check


def test_a_missing_archive_folder_removes_nothing(lab: Lab) -> None:
    check = _unchanged(lab)
    with pytest.raises(StorageError, match="does not exist.*Nothing was removed"):
        lab.retention(lab.tmp / "nowhere").apply(30, RetentionMode.ARCHIVE, ANA)
    check()


def test_an_unwritable_archive_folder_removes_nothing(lab: Lab) -> None:
    archives = lab.tmp / "archives"
    archives.mkdir()
    locked = subprocess.run(["chattr", "+i", str(archives)], capture_output=True).returncode == 0
    if not locked:
        if os.geteuid() == 0:
            pytest.fail("cannot make a folder unwritable as root without chattr")
        archives.chmod(0o500)
    check = _unchanged(lab)
    try:
        with pytest.raises(StorageError, match="not writable.*Nothing was removed"):
            lab.retention(archives).apply(30, RetentionMode.ARCHIVE, ANA)
    finally:
        if locked:
            subprocess.run(["chattr", "-i", str(archives)], check=True)
        else:
            archives.chmod(0o700)
    check()
    assert list(archives.iterdir()) == []


def test_a_job_changed_meanwhile_is_skipped(lab: Lab) -> None:
    archives = lab.tmp / "archives"
    archives.mkdir()
    retention = lab.retention(archives)
    store = retention.store
    paid = lab.ids["old"]["paid_picked_up"]

    class RevertFirst:
        def candidates(self, cutoff):  # type: ignore[no-untyped-def]
            return store.candidates(cutoff)

        def records(self, planned):  # type: ignore[no-untyped-def]
            return store.records(planned)

        def remove(self, planned, tombstone, summary):  # type: ignore[no-untyped-def]
            lab.svc.revert_pickup(paid, ANA, "Weighed the wrong part")
            return store.remove(planned, tombstone, summary)

    retention.store = RevertFirst()
    result = retention.apply(30, RetentionMode.ARCHIVE, ANA)
    assert result.removed == (lab.ids["old"]["rejected"],) and result.skipped == (paid,)
    assert lab.job_rows()[paid] == "completed"
    with lab.uow() as u:
        job = u.jobs.get(paid)
        assert lab.store.folder(job).is_dir()
        assert u.events.for_subject("job", paid)[-1].kind == "revert_pickup"
        assert u.events.for_subject(LAB_SUBJECT, LAB_ID)[0].details["skipped_ids"] == [paid]


# --- the command line (SQLite home) -------------------------------------------------------


@pytest.fixture
def home(tmp_path: Path) -> Iterator[Lab]:
    home = tmp_path / "home"
    engine = make_engine(f"sqlite:///{home / 'printcore.db'}")
    upgrade(engine)
    yield _lab(engine, home)
    engine.dispose()


def _cli(home: Lab, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PRINTCORE_", "DATABASE"))}
    env["PRINTCORE_HOME"] = str(home.tmp)
    return subprocess.run([sys.executable, "-m", "entrypoints.cli", "retention", *args],
                          capture_output=True, text=True, env=env, cwd=home.tmp, timeout=120)


def test_cli_preview_then_archive(home: Lab) -> None:
    check = _unchanged(home)
    shown = _cli(home, "--older-than", "30")
    assert shown.returncode == 0, shown.stderr
    assert "rejected:        1 job(s)" in shown.stdout
    assert "paid_picked_up:  1 job(s)" in shown.stdout
    assert "job ids: " + " ".join(map(str, home.old_final)) in shown.stdout
    assert "preview only: nothing was changed" in shown.stdout
    check()
    for bad in (["--older-than", "0"], ["--older-than", "abc"],
                ["--older-than", "30", "--archive", str(home.tmp / "none"), "--apply"],
                ["--older-than", "30", "--apply", "--staff", "Nobody"]):
        refused = _cli(home, *bad)
        assert refused.returncode == 1, (bad, refused.stdout, refused.stderr)
        assert "printcore:" in refused.stderr
        check()
    (home.tmp / "zips").mkdir()
    done = _cli(home, "--older-than", "30", "--archive", str(home.tmp / "zips"), "--apply",
                "--staff", ANA.name)
    assert done.returncode == 0, done.stderr
    assert "archived 2 job(s)" in done.stdout and "verified" in done.stdout
    [archive] = list_archives(home.tmp / "zips")
    assert archive.name in done.stdout
    assert set(home.job_rows()).isdisjoint(home.old_final)
    again = _cli(home, "--older-than", "30", "--apply")
    assert again.returncode == 0 and "pruned 0 job(s)" in again.stdout


def test_two_runs_at_once_remove_each_job_once(lab: Lab) -> None:
    """Two workstations pruning at the same moment: every job is removed by exactly one
    run and gets exactly one tombstone; the other run skips it."""
    import threading

    results: list[Any] = []
    barrier = threading.Barrier(2)

    def run() -> None:
        retention = lab.retention(None)
        plan_first = retention.store

        class Together:
            def candidates(self, cutoff):  # type: ignore[no-untyped-def]
                return plan_first.candidates(cutoff)

            def records(self, planned):  # type: ignore[no-untyped-def]
                return plan_first.records(planned)

            def remove(self, planned, tombstone, summary):  # type: ignore[no-untyped-def]
                barrier.wait(timeout=30)  # both planned the same jobs; now both remove
                return plan_first.remove(planned, tombstone, summary)

        retention.store = Together()
        results.append(retention.apply(30, RetentionMode.PRUNE, ANA))

    threads = [threading.Thread(target=run) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert len(results) == 2
    removed = sorted(i for r in results for i in r.removed)
    skipped = sorted(i for r in results for i in r.skipped)
    assert removed == lab.old_final and skipped == lab.old_final
    with lab.uow() as u:
        for job_id in lab.old_final:
            assert [e.kind for e in u.events.for_subject("job", job_id)].count("pruned") == 1
        assert len(u.events.for_subject(LAB_SUBJECT, LAB_ID)) == 2
