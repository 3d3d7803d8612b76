"""``printcore backup`` / ``printcore restore`` proven by restoring (SQLite).

A lab with jobs in several states, their events and outbox rows is backed up while its
server runs, restored into a fresh home, compared table by table and byte by byte, and
served again. Bad inputs tried: a backup PATH that exists, a truncated archive, an archive
with one flipped byte, a non-empty home, a manifest from a newer migration revision, a
PostgreSQL DATABASE_URL that names a schema (backups cover a whole database), a SQLite
backup restored into PostgreSQL, a missing archive. PostgreSQL: tests/e2e/test_backup_pg.py.
"""

from __future__ import annotations

import io
import json
import sqlite3
import tarfile
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from _live import (
    STAFF,
    LiveServer,
    confirm_token,
    login,
    start_server,
    stop_server,
    submit,
    upload_sliced,
)
from _support import FIXTURES
from adapters.backup import backup
from entrypoints.cli import main

MODEL = FIXTURES / "models" / "HalfDonut_ascii.stl"
SLICED = FIXTURES / "sliced" / "square_ring_plate_1.gcode"


def _ok(r: httpx.Response) -> dict[str, object]:
    assert r.status_code == 200, r.text
    data: dict[str, object] = r.json()
    return data


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """A running SQLite lab: jobs uploaded, rejected, approved, confirmed and completed."""
    server = start_server(tmp_path_factory.mktemp("lab-home"), {}, "sqlite")
    with server.api() as api:
        headers = login(api)
        submit(api, MODEL, student_name="Una Uploaded")
        rejected = submit(api, MODEL, student_name="Rita Rejected")
        _ok(api.post(f"/jobs/{rejected}/reject", headers=headers,
                     json={"staff_name": STAFF, "custom_reason": "Too thin to print."}))
        for name in ("Cora Completed", "Abe Approved"):
            job_id = submit(api, MODEL, student_name=name)
            r = upload_sliced(api, headers, job_id, SLICED)
            assert r.status_code == 201, r.text
            _ok(api.post(f"/jobs/{job_id}/approve", headers=headers, json={
                "staff_name": STAFF, "weight_g": 100, "time_hours": 2,
                "authoritative_file": r.json()["file"]["stored_name"]}))
            if name.startswith("Cora"):
                _ok(api.post("/confirm", json={"token": confirm_token(server, job_id)}))
                _ok(api.post(f"/jobs/{job_id}/mark-printing", headers=headers,
                             json={"staff_name": STAFF}))
                _ok(api.post(f"/jobs/{job_id}/mark-complete", headers=headers,
                             json={"staff_name": STAFF}))
    yield server
    stop_server(server)


def _cli(monkeypatch: pytest.MonkeyPatch, home: Path, *args: str,
         **env: str) -> int:
    monkeypatch.chdir(home.parent)
    monkeypatch.setenv("PRINTCORE_HOME", str(home))
    for key in ("DATABASE_URL", "PRINTCORE_STORAGE", "PRINTCORE_SECRET_KEY"):
        monkeypatch.delenv(key, raising=False)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    return main(list(args))


def _tables(db: Path) -> dict[str, list[tuple[object, ...]]]:
    with sqlite3.connect(db) as conn:
        names = [r[0] for r in conn.execute(
            "SELECT name FROM sqlite_master WHERE type='table' ORDER BY name")]
        out = {n: sorted(conn.execute(f'SELECT * FROM "{n}"').fetchall(), key=repr)
               for n in names}
    conn.close()
    return out


def _files(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*")
            if p.is_file() and ".staging" not in p.relative_to(root).parts}


def test_a_backup_restores_every_job_file_event_and_outbox_row_and_serves(
    lab: LiveServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    archive = tmp_path / "lab.tar"
    assert _cli(monkeypatch, lab.home, "backup", str(archive)) == 0
    assert "backup written to" in capsys.readouterr().out
    before = _tables(lab.home / "printcore.db")
    files_before = _files(lab.storage)
    assert len(before["jobs"]) == 4 and before["events"] and before["outbox"]
    assert {r[1] for r in before["jobs"]} >= {"uploaded", "rejected", "completed"}

    fresh = tmp_path / "fresh"
    assert _cli(monkeypatch, fresh, "restore", str(archive)) == 0
    assert "restored the backup" in capsys.readouterr().out
    assert _tables(fresh / "printcore.db") == before
    assert _files(fresh / "storage") == files_before
    assert (fresh / "secret_key").read_bytes() == (lab.home / "secret_key").read_bytes()

    server = start_server(fresh, {}, "sqlite")
    try:
        with server.api() as api:
            headers = login(api)
            for row in before["jobs"]:
                job = _ok(api.get(f"/jobs/{row[0]}", headers=headers))
                assert job["status"] == row[1]
            page = httpx.get(f"{server.url}/staff/jobs/{before['jobs'][0][0]}",
                             cookies=None, follow_redirects=False)
            assert page.status_code in (200, 302, 303)  # the staff page answers
    finally:
        stop_server(server)


def test_a_backup_during_submissions_restores_consistently(
    lab: LiveServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    stop = threading.Event()
    submitted: list[int] = []

    def keep_submitting() -> None:
        with lab.api() as api:
            while not stop.is_set():
                submitted.append(submit(api, MODEL, student_name="Sam Streaming"))

    thread = threading.Thread(target=keep_submitting)
    thread.start()
    try:
        while len(submitted) < 2:
            threading.Event().wait(0.05)
        result = backup(f"sqlite:///{lab.home / 'printcore.db'}", lab.storage, lab.home,
                        tmp_path / "busy.tar")
    finally:
        stop.set()
        thread.join()
    assert len(submitted) > 2
    fresh = tmp_path / "fresh"
    assert _cli(monkeypatch, fresh, "restore", str(result.path)) == 0
    from adapters.backup import _snapshot_jobs

    wanted = _snapshot_jobs(fresh / "printcore.db")
    assert len(wanted) == result.jobs >= 4
    for folder in wanted:
        assert (fresh / "storage" / folder / "metadata.json").is_file(), folder


def _nothing_written(home: Path) -> bool:
    return not home.exists() or {p.name for p in home.iterdir()} <= {"secret_key"}


def test_refusals_change_nothing(
    lab: LiveServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    archive = tmp_path / "lab.tar"
    assert _cli(monkeypatch, lab.home, "backup", str(archive)) == 0
    good = archive.read_bytes()
    capsys.readouterr()

    # A PATH that exists: refused, the file untouched.
    assert _cli(monkeypatch, lab.home, "backup", str(archive)) == 1
    assert "exists already" in capsys.readouterr().err
    assert archive.read_bytes() == good

    # A truncated archive.
    cut = tmp_path / "cut.tar"
    cut.write_bytes(good[: len(good) // 2])
    assert _cli(monkeypatch, tmp_path / "h1", "restore", str(cut)) == 1
    assert "nothing was restored" in capsys.readouterr().err
    assert _nothing_written(tmp_path / "h1")

    # One flipped byte inside a stored file's content.
    with tarfile.open(archive) as tar:
        member = next(m for m in tar if m.name.startswith("storage/") and m.size > 100)
    flipped = bytearray(good)
    flipped[member.offset_data + 50] ^= 0xFF
    bad = tmp_path / "flipped.tar"
    bad.write_bytes(bytes(flipped))
    assert _cli(monkeypatch, tmp_path / "h2", "restore", str(bad)) == 1
    err = capsys.readouterr().err
    assert "does not match its manifest" in err and member.name in err
    assert _nothing_written(tmp_path / "h2")

    # A manifest from a newer migration revision.
    newer = tmp_path / "newer.tar"
    with tarfile.open(archive) as src, tarfile.open(newer, "w") as dst:
        for m in src:
            data = src.extractfile(m).read()  # type: ignore[union-attr]
            if m.name == "manifest.json":
                manifest = json.loads(data)
                manifest["migration_revision"] = "9999"
                data = json.dumps(manifest).encode()
                m.size = len(data)
            dst.addfile(m, io.BytesIO(data))
    assert _cli(monkeypatch, tmp_path / "h3", "restore", str(newer)) == 1
    assert "newer than this printcore" in capsys.readouterr().err
    assert _nothing_written(tmp_path / "h3")

    # A non-empty home (the lab's own): refused, its database untouched.
    before = (lab.home / "printcore.db").stat().st_mtime_ns
    assert _cli(monkeypatch, lab.home, "restore", str(archive)) == 1
    assert "needs an empty home" in capsys.readouterr().err
    assert (lab.home / "printcore.db").stat().st_mtime_ns == before

    # No such archive; a PostgreSQL URL naming a schema (a backup is of a whole database).
    assert _cli(monkeypatch, tmp_path / "h4", "restore", str(tmp_path / "nope.tar")) == 1
    assert "There is no backup" in capsys.readouterr().err
    assert _cli(monkeypatch, tmp_path / "h5", "backup", str(tmp_path / "pg.tar"),
                DATABASE_URL="postgresql://postgres@127.0.0.1:5432/test"
                             "?options=-csearch_path%3Dsomeschema") == 1
    assert "names a schema" in capsys.readouterr().err
    assert not (tmp_path / "pg.tar").exists()


def test_a_file_replaced_after_it_was_hashed_is_hashed_again_as_written(tmp_path: Path) -> None:
    """The sha256 computed ahead belongs to the file as it was (device, inode, size,
    mtime); a file replaced since (as metadata.json is, atomically) is hashed as copied,
    so the manifest always matches the bytes in the archive."""
    import hashlib
    from concurrent.futures import Future

    from adapters.backup import _add, _hash_ahead, _open_tar

    path = tmp_path / "metadata.json"
    path.write_bytes(b'{"status": "uploaded"}')
    ahead: Future[object] = Future()
    ahead.set_result(_hash_ahead(path))
    replacement = tmp_path / "metadata.json.tmp"
    replacement.write_bytes(b'{"status": "pending", "longer": true}')
    replacement.replace(path)
    fresh: Future[object] = Future()
    fresh.set_result(_hash_ahead(path))
    entries: dict[str, dict[str, object]] = {}
    with (tmp_path / "a.tar").open("wb", buffering=0) as raw, _open_tar(raw) as tar:
        assert _add(tar, "stale", path, entries, ahead)  # type: ignore[arg-type]
        assert _add(tar, "fresh", path, entries, fresh)  # type: ignore[arg-type]
        assert not _add(tar, "gone", tmp_path / "nope", entries, fresh)  # type: ignore[arg-type]
    want = hashlib.sha256(path.read_bytes()).hexdigest()
    assert entries["stale"]["sha256"] == entries["fresh"]["sha256"] == want
    with tarfile.open(tmp_path / "a.tar") as tar:
        for name in ("stale", "fresh"):
            assert tar.extractfile(name).read() == path.read_bytes()  # type: ignore[union-attr]
