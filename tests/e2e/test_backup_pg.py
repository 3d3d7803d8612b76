"""``printcore backup`` / ``printcore restore`` on PostgreSQL, proven by restoring.

A running lab on a database of its own (``printcore_backup_<random>``) has jobs in every
state, their events and outbox rows. It is backed up (pg_dump of an exported snapshot plus
the storage), restored into a fresh database (``printcore_restore_<random>``) and a fresh
home, compared table by table and byte by byte, and served again. A second backup is
taken while another thread keeps submitting and rejecting jobs: it restores, and the
storage audit of the restored lab finds nothing (every job has its files, no folder
without a job). Bad inputs tried: a restore into a database that has tables (the lab's
own: refused, nothing changed), a restore into a non-empty storage root, a PostgreSQL
that cannot be reached (exit 2), a backup PATH that exists, a PostgreSQL backup restored
into a SQLite home, a URL with a password (it reaches pg_dump only as PGPASSWORD), a
client program that is not installed.
"""

from __future__ import annotations

import json
import tarfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import psycopg
import pytest

from _live import (
    PG_DSN,
    STAFF,
    LiveServer,
    confirm_token,
    login,
    start_server,
    stop_server,
    submit,
    upload_sliced,
)
from _support import FIXTURES, service_missing
from adapters.backup import backup
from entrypoints.cli import main

MODEL = FIXTURES / "models" / "HalfDonut_ascii.stl"
SLICED = FIXTURES / "sliced" / "square_ring_plate_1.gcode"
EVERY_STATE = {"uploaded", "pending", "rejected", "ready_to_print", "printing", "completed",
               "paid_picked_up"}


def _ok(r: httpx.Response) -> dict[str, object]:
    assert r.status_code == 200, r.text
    data: dict[str, object] = r.json()
    return data


def _dsn(database: str) -> str:
    return PG_DSN.rsplit("/", 1)[0] + "/" + database


def _url(database: str) -> str:
    return _dsn(database).replace("postgresql://", "postgresql+psycopg://", 1)


@pytest.fixture(scope="module")
def new_database() -> Iterator[Callable[[str], str]]:
    """``new_database(prefix)`` → the name of a fresh, empty database; all dropped after."""
    made: list[str] = []

    def make(prefix: str) -> str:
        name = f"{prefix}_{uuid.uuid4().hex[:10]}"
        try:
            with psycopg.connect(PG_DSN, connect_timeout=3, autocommit=True) as conn:
                conn.execute(f'CREATE DATABASE "{name}"')
        except psycopg.OperationalError as err:
            service_missing(f"PostgreSQL at {PG_DSN}: {err}")
        made.append(name)
        return name

    yield make
    with psycopg.connect(PG_DSN, autocommit=True) as conn:
        for name in made:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory,
        new_database: Callable[[str], str]) -> Iterator[LiveServer]:
    """A running PostgreSQL lab with a job in every state."""
    database = new_database("printcore_backup")
    server = start_server(tmp_path_factory.mktemp("pg-lab-home"),
                          {"DATABASE_URL": _url(database)}, "postgresql")
    with server.api() as api:
        headers = login(api)
        submit(api, MODEL, student_name="Una Uploaded")
        rejected = submit(api, MODEL, student_name="Rita Rejected")
        _ok(api.post(f"/jobs/{rejected}/reject", headers=headers,
                     json={"staff_name": STAFF, "custom_reason": "Too thin to print."}))
        steps = {"Pia Pending": 0, "Rey Ready": 1, "Pete Printing": 2, "Cora Completed": 3,
                 "Paul Paid": 4}
        for name, depth in steps.items():
            job_id = submit(api, MODEL, student_name=name)
            r = upload_sliced(api, headers, job_id, SLICED)
            assert r.status_code == 201, r.text
            _ok(api.post(f"/jobs/{job_id}/approve", headers=headers, json={
                "staff_name": STAFF, "weight_g": 100, "time_hours": 2,
                "authoritative_file": r.json()["file"]["stored_name"]}))
            if depth >= 1:
                _ok(api.post("/confirm", json={"token": confirm_token(server, job_id)}))
            if depth >= 2:
                _ok(api.post(f"/jobs/{job_id}/mark-printing", headers=headers,
                             json={"staff_name": STAFF}))
            if depth >= 3:
                _ok(api.post(f"/jobs/{job_id}/mark-complete", headers=headers,
                             json={"staff_name": STAFF}))
            if depth >= 4:
                _ok(api.post(f"/jobs/{job_id}/payment", headers=headers, json={
                    "staff_name": STAFF, "grams": 100, "txn_no": "TX-1",
                    "picked_up_by": "Paul"}))
    server.env["BACKUP_TEST_DATABASE"] = database
    yield server
    stop_server(server)


def _cli(monkeypatch: pytest.MonkeyPatch, home: Path, *args: str, **env: str) -> int:
    monkeypatch.chdir(home.parent)
    monkeypatch.setenv("PRINTCORE_HOME", str(home))
    for key in ("DATABASE_URL", "PRINTCORE_STORAGE", "PRINTCORE_SECRET_KEY"):
        monkeypatch.delenv(key, raising=False)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    return main(list(args))


def _tables(database: str) -> dict[str, list[tuple[object, ...]]]:
    with psycopg.connect(_dsn(database)) as conn:
        names = [r[0] for r in conn.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public' "
            "ORDER BY table_name")]
        return {n: sorted(conn.execute(f'SELECT * FROM "{n}"').fetchall(), key=repr)
                for n in names}


def _files(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*")
            if p.is_file() and ".staging" not in p.relative_to(root).parts}


def _settled(database: str) -> None:
    """Wait until the lab's outbox has delivered (the relay changes rows meanwhile)."""
    deadline = time.monotonic() + 30
    while True:
        with psycopg.connect(_dsn(database)) as conn:
            row = conn.execute("SELECT count(*) FROM outbox WHERE status = 'pending'").fetchone()
        if row is not None and row[0] == 0:
            return
        assert time.monotonic() < deadline, "the outbox did not settle"
        time.sleep(0.1)


def test_a_pg_backup_restores_every_job_file_event_and_outbox_row_and_serves(
    lab: LiveServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str], new_database: Callable[[str], str],
) -> None:
    source = lab.env["BACKUP_TEST_DATABASE"]
    _settled(source)
    archive = tmp_path / "lab.tar"
    assert _cli(monkeypatch, lab.home, "backup", str(archive),
                DATABASE_URL=_url(source)) == 0
    assert "backup written to" in capsys.readouterr().out
    before = _tables(source)
    files_before = _files(lab.storage)
    assert {r[1] for r in before["jobs"]} == EVERY_STATE
    assert before["events"] and before["outbox"] and before["staff"]
    with tarfile.open(archive) as tar:
        manifest = json.loads(tar.extractfile("manifest.json").read())  # type: ignore[union-attr]
        assert "database/printcore.dump" in tar.getnames()
    assert manifest["database_kind"] == "postgresql" and manifest["jobs"] == 7
    assert manifest["left_out"] == []

    target = new_database("printcore_restore")
    fresh = tmp_path / "fresh"
    assert _cli(monkeypatch, fresh, "restore", str(archive), DATABASE_URL=_url(target)) == 0
    out = capsys.readouterr().out
    assert "restored the backup" in out and f"/{target}" in out
    assert _tables(target) == before
    assert _files(fresh / "storage") == files_before
    assert (fresh / "secret_key").read_bytes() == (lab.home / "secret_key").read_bytes()

    server = start_server(fresh, {"DATABASE_URL": _url(target)}, "postgresql")
    try:
        with server.api() as api:
            headers = login(api)
            for row in before["jobs"]:
                job = _ok(api.get(f"/jobs/{row[0]}", headers=headers))
                assert job["status"] == row[1]
                assert len(job["files"]) >= 1  # type: ignore[arg-type]
            ready = httpx.get(f"{server.url}/api/v1/health/ready", timeout=30)
            assert ready.status_code == 200, ready.text
    finally:
        stop_server(server)


def test_a_pg_backup_during_submissions_restores_and_audits_clean(
    lab: LiveServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    new_database: Callable[[str], str],
) -> None:
    from adapters.files.audit import audit_storage
    from adapters.files.store import LocalFileStore
    from adapters.sql import SqlUnitOfWork, make_engine

    stop = threading.Event()
    submitted: list[int] = []
    errors: list[BaseException] = []

    def keep_submitting() -> None:
        try:
            with lab.api() as api:
                headers = login(api, "Busy desk")
                while not stop.is_set():
                    job_id = submit(api, MODEL, student_name="Sam Streaming")
                    submitted.append(job_id)
                    if job_id % 2:  # a move between folders (Uploaded -> Rejected)
                        _ok(api.post(f"/jobs/{job_id}/reject", headers=headers, json={
                            "staff_name": STAFF, "custom_reason": "Busy test."}))
        except BaseException as err:
            errors.append(err)

    source = lab.env["BACKUP_TEST_DATABASE"]
    thread = threading.Thread(target=keep_submitting)
    thread.start()
    try:
        while len(submitted) < 2 and thread.is_alive():
            time.sleep(0.05)
        result = backup(_url(source), lab.storage, lab.home, tmp_path / "busy.tar")
        count = len(submitted)
        time.sleep(0.5)
    finally:
        stop.set()
        thread.join()
    assert not errors, errors
    assert len(submitted) > count >= 2  # submissions went on during and after the backup

    target = new_database("printcore_restore")
    fresh = tmp_path / "fresh"
    assert _cli(monkeypatch, fresh, "restore", str(result.path),
                DATABASE_URL=_url(target)) == 0
    engine = make_engine(_url(target))
    try:
        with psycopg.connect(_dsn(target)) as conn:
            restored_jobs = conn.execute("SELECT count(*) FROM jobs").fetchone()
        assert restored_jobs is not None and restored_jobs[0] == result.jobs >= 9
        report = audit_storage(LocalFileStore(fresh / "storage"), lambda: SqlUnitOfWork(engine))
        assert report.jobs_checked == result.jobs
        assert report.problems == []
    finally:
        engine.dispose()


def test_pg_refusals_change_nothing(
    lab: LiveServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str], new_database: Callable[[str], str],
) -> None:
    source = lab.env["BACKUP_TEST_DATABASE"]
    archive = tmp_path / "lab.tar"
    assert _cli(monkeypatch, lab.home, "backup", str(archive),
                DATABASE_URL=_url(source)) == 0
    capsys.readouterr()
    good = archive.read_bytes()

    # A PATH that exists.
    assert _cli(monkeypatch, lab.home, "backup", str(archive), DATABASE_URL=_url(source)) == 1
    assert "exists already" in capsys.readouterr().err
    assert archive.read_bytes() == good

    # Into a database that has tables (the lab's own): refused, its rows unchanged.
    _settled(source)
    before = _tables(source)
    assert _cli(monkeypatch, tmp_path / "h1", "restore", str(archive),
                DATABASE_URL=_url(source)) == 1
    err = capsys.readouterr().err
    assert "needs an empty database" in err and "createdb" in err
    assert _tables(source) == before
    assert not (tmp_path / "h1" / "storage").exists()

    # Into an empty database but a storage root that holds files.
    target = new_database("printcore_restore")
    (tmp_path / "h2" / "storage").mkdir(parents=True)
    (tmp_path / "h2" / "storage" / "stray.txt").write_text("x")
    assert _cli(monkeypatch, tmp_path / "h2", "restore", str(archive),
                DATABASE_URL=_url(target)) == 1
    assert "not empty" in capsys.readouterr().err
    assert _tables(target) == {}

    # A PostgreSQL backup into a SQLite home.
    assert _cli(monkeypatch, tmp_path / "h3", "restore", str(archive)) == 1
    assert "postgresql database and DATABASE_URL is sqlite" in capsys.readouterr().err
    assert not (tmp_path / "h3" / "printcore.db").exists()

    # PostgreSQL not reachable: exit 2, nothing written.
    nowhere = "postgresql+psycopg://postgres@127.0.0.1:1/nothing"
    assert _cli(monkeypatch, lab.home, "backup", str(tmp_path / "no.tar"),
                DATABASE_URL=nowhere) == 2
    assert "Cannot reach the database" in capsys.readouterr().err
    assert not (tmp_path / "no.tar").exists()
    assert not list(tmp_path.glob(".printcore-backup-*"))

    # The good archive still restores after all that.
    assert _cli(monkeypatch, tmp_path / "h2b", "restore", str(archive),
                DATABASE_URL=_url(target)) == 0
    assert {r[1] for r in _tables(target)["jobs"]} == EVERY_STATE


def test_the_password_goes_to_pg_dump_in_its_environment_only(
    lab: LiveServer, tmp_path: Path,
) -> None:
    """The libpq options never carry the password; a URL with one backs up (trust auth
    ignores it); a missing client program is named with the package to install."""
    from adapters.backup import BackupError, _pg_connection, pg_tool

    args, env = _pg_connection("postgresql://ada:s3cret%21@db.lab:5433/printcore"
                               "?sslmode=require")
    assert args == ["--host=db.lab", "--port=5433", "--username=ada"]
    assert "s3cret" not in " ".join(args)
    assert (env["PGPASSWORD"], env["PGSSLMODE"], env["PGDATABASE"]) == (
        "s3cret!", "require", "printcore")

    source = lab.env["BACKUP_TEST_DATABASE"]
    with_password = _url(source).replace("postgres@", "postgres:s3cret@", 1)
    result = backup(with_password, lab.storage, lab.home, tmp_path / "pw.tar")
    assert result.jobs >= 7 and result.path.is_file()

    with pytest.raises(BackupError, match="apt install postgresql-client"):
        pg_tool("pg_dump_that_is_not_installed")
