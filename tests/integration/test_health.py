"""Readiness (``GET /api/v1/health/ready``, :mod:`adapters.health`) and ``printcore
doctor``, in process (Starlette TestClient on the wired app) on SQLite and PostgreSQL.

Broken homes tried, each must answer 503 naming exactly that check (and doctor exit 1
with a ✗ line and what to do): the storage root made unwritable (``chattr +i``, or
``chmod`` when not root); the marker deleted while the database has a job (the "jobs
missing after reboot" incident); a marker from another lab's database; the storage root
missing; the database stamped one migration behind the head; ``REDIS_URL`` at a closed
port; a message waiting in the outbox for two hours. The answer never holds a password.
"""

from __future__ import annotations

import io
import os
import shutil
import socket
import subprocess
from collections.abc import Iterator
from contextlib import redirect_stderr, redirect_stdout
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, insert, text

from _support import FIXTURES
from adapters.health import MARKER_NAME, Readiness
from adapters.sql.migrate import alembic_config, head_revision
from adapters.sql.tables import outbox

MODEL = FIXTURES / "models" / "Moon.stl"
SUBMISSION = {"student_name": "Jane Doe", "email": "jane@university.edu",
              "discipline": "ME", "class_number": "", "print_method": "filament",
              "color": "Red"}


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def db_engine(request: pytest.FixtureRequest) -> Engine:
    name = "pg_engine" if request.param == "postgresql" else "sqlite_engine"
    engine: Engine = request.getfixturevalue(name)
    return engine


class Home:
    def __init__(self, client: Any, container: Any, env: dict[str, str]) -> None:
        self.client = client
        self.container = container
        self.env = env
        self.storage: Path = container.files.root

    def ready(self) -> tuple[int, dict[str, Any]]:
        r = self.client.get("/api/v1/health/ready")
        assert r.headers["cache-control"] == "no-store"
        return r.status_code, r.json()

    def submit(self) -> None:
        with MODEL.open("rb") as handle:
            r = self.client.post("/api/v1/submissions", data=SUBMISSION,
                                 files={"file": (MODEL.name, handle)})
        assert r.status_code == 201, r.text


@pytest.fixture
def home(db_engine: Engine, tmp_path: Path) -> Iterator[Home]:
    from starlette.testclient import TestClient

    from entrypoints.bootstrap import bootstrap
    from entrypoints.settings import load_settings
    from entrypoints.web import app_from_container

    env = {"PRINTCORE_HOME": str(tmp_path / "home"), "PRINTCORE_SECRET_KEY": "health-secret",
           "PRINTCORE_STAFF_PASSWORD": "health-password",
           "DATABASE_URL": db_engine.url.render_as_string(hide_password=False)}
    container = bootstrap(load_settings(env, env_file=None), engine=db_engine)
    app = app_from_container(container, isolated_inspection=True)
    client = TestClient(app, base_url="http://127.0.0.1")
    try:
        yield Home(client, container, env)
    finally:
        client.close()
        app.state.ctx.inspector.close()
        container.close()


def _failing(body: dict[str, Any]) -> list[str]:
    assert body["status"] == "failing"
    names = [c["name"] for c in body["checks"] if not c["ok"]]
    assert names == body["failing"]
    for check in body["checks"]:
        assert (check["action"] is None) == check["ok"]
    return names


def test_all_ok(home: Home, db_engine: Engine) -> None:
    status, body = home.ready()
    assert status == 200, body
    assert body["status"] == "ok" and body["failing"] == []
    checks = {c["name"]: c for c in body["checks"]}
    assert list(checks) == ["database", "storage", "outbox"]  # no REDIS_URL: no redis check
    db = checks["database"]["data"]
    assert db["kind"] == db_engine.dialect.name
    assert db["revision"] == db["head"] == head_revision()
    if db["kind"] == "postgresql":
        assert db["host"] and db["database"] == db_engine.url.database
    storage = checks["storage"]["data"]
    assert storage["writable"] is True and storage["marker"] is True
    assert storage["free_bytes"] > 0
    assert (home.storage / MARKER_NAME).is_file()
    assert not [p for p in home.storage.iterdir() if p.name.startswith(".probe-")]
    assert checks["outbox"]["data"]["waiting"] == 0
    if db_engine.url.password:
        assert db_engine.url.password not in str(body)
    # The liveness answer is unchanged.
    assert home.client.get("/api/v1/health").json()["status"] == "ok"


def test_unwritable_storage(home: Home) -> None:
    locked = subprocess.run(["chattr", "+i", str(home.storage)], capture_output=True).returncode == 0
    if not locked:
        if os.geteuid() == 0:
            pytest.fail("cannot make a folder unwritable as root without chattr")
        home.storage.chmod(0o500)
    try:
        status, body = home.ready()
    finally:
        if locked:
            subprocess.run(["chattr", "-i", str(home.storage)], check=True)
        else:
            home.storage.chmod(0o700)
    assert status == 503
    assert _failing(body) == ["storage"]
    assert "not writable" in body["checks"][1]["detail"]


def test_marker_missing_with_jobs(home: Home) -> None:
    home.submit()
    (home.storage / MARKER_NAME).unlink()
    status, body = home.ready()
    assert status == 503 and _failing(body) == ["storage"]
    storage = body["checks"][1]
    assert storage["data"]["jobs_in_database"] == 1 and storage["data"]["marker"] is False
    assert "not the lab's storage root" in storage["detail"]


def test_fresh_empty_root_with_jobs_gets_no_marker(home: Home, tmp_path: Path) -> None:
    """The incident itself: the lab's database, an empty root (the disk not mounted) at
    start. The start must not write a marker there, and the check must fail."""
    from adapters.health import ensure_storage_marker

    home.submit()
    with home.container.engine.begin() as conn:  # as if the id had never been given
        conn.execute(text("DELETE FROM settings WHERE key = 'storage_id'"))
    empty = tmp_path / "unmounted"
    empty.mkdir()
    assert ensure_storage_marker(home.container.engine, empty) is None
    assert not (empty / MARKER_NAME).exists()
    report = Readiness(home.container.engine, empty).run()
    assert report.failing == ["storage"]


def test_marker_of_another_database(home: Home) -> None:
    (home.storage / MARKER_NAME).write_text('{"storage_id": "0123abcd"}')
    status, body = home.ready()
    assert status == 503 and _failing(body) == ["storage"]
    assert "another database" in body["checks"][1]["detail"]


def test_storage_root_missing(home: Home) -> None:
    shutil.rmtree(home.storage)
    status, body = home.ready()
    assert status == 503 and _failing(body) == ["storage"]
    assert "does not exist" in body["checks"][1]["detail"]


def test_database_behind_head(home: Home, db_engine: Engine) -> None:
    head = head_revision()
    previous = ScriptDirectory.from_config(alembic_config()).get_revision(head).down_revision
    assert isinstance(previous, str)
    with db_engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = :v"), {"v": previous})
    try:
        status, body = home.ready()
    finally:
        with db_engine.begin() as conn:
            conn.execute(text("UPDATE alembic_version SET version_num = :v"), {"v": head})
    assert status == 503 and _failing(body) == ["database"]
    db = body["checks"][0]
    assert db["data"]["revision"] == previous and db["data"]["head"] == head
    assert "printcore db upgrade" in db["action"]


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_redis_at_closed_port(home: Home) -> None:
    port = _closed_port()
    home.client.app.state.readiness = Readiness(
        home.container.engine, home.storage,
        redis_url=f"redis://:hunter2secret@127.0.0.1:{port}/0")
    status, body = home.ready()
    # The worker's heartbeat is in Redis: not checkable, so failing too, pointing at Redis.
    assert status == 503 and _failing(body) == ["redis", "worker"]
    assert body["checks"][2]["data"]["port"] == port
    assert body["checks"][3]["detail"] == "Not checked: Redis does not answer."
    assert body["checks"][3]["action"] == "Fix the redis check first."
    assert "hunter2secret" not in str(body)


def test_thresholds_from_settings(home: Home) -> None:
    """PRINTCORE_OUTBOX_ALERT_SECONDS and PRINTCORE_STORAGE_MIN_FREE_MB reach the checks
    through ``readiness_for``: a message waiting 2 minutes passes the default (1 h) and
    fails a 60 s alert; a 10^7 MB minimum fails the storage check on any real disk."""
    from entrypoints.doctor import readiness_for
    from entrypoints.settings import load_settings

    two_minutes = datetime.now(UTC) - timedelta(minutes=2)
    with home.container.engine.begin() as conn:
        conn.execute(insert(outbox).values(
            channel="email", kind="received", recipient="jane@university.edu",
            subject="job", subject_id=1, payload={}, status="pending", attempts=1,
            created_at=two_minutes, next_attempt_at=two_minutes + timedelta(days=1)))
    engine = home.container.engine
    assert readiness_for(load_settings(home.env, env_file=None), engine).run().ok
    strict = load_settings({**home.env, "PRINTCORE_OUTBOX_ALERT_SECONDS": "60",
                            "PRINTCORE_STORAGE_MIN_FREE_MB": "10000000"}, env_file=None)
    report = readiness_for(strict, engine).run()
    assert report.failing == ["storage", "outbox"]
    checks = {c.name: c for c in report.checks}
    assert checks["outbox"].data["max_age_seconds"] == 60
    assert "more than 60 s" in checks["outbox"].detail
    assert "at least 10000000000000 needed" in checks["storage"].detail


def test_outbox_backlog(home: Home) -> None:
    old = datetime.now(UTC) - timedelta(hours=2)
    with home.container.engine.begin() as conn:
        conn.execute(insert(outbox).values(
            channel="email", kind="received", recipient="jane@university.edu",
            subject="job", subject_id=1, payload={}, status="pending", attempts=3,
            created_at=old, next_attempt_at=old + timedelta(days=1)))
    status, body = home.ready()
    assert status == 503 and _failing(body) == ["outbox"]
    data = body["checks"][2]["data"]
    assert data["waiting"] == 1 and data["oldest_waiting_seconds"] >= 7200


# --- printcore doctor ------------------------------------------------------------------

def _doctor(env: dict[str, str], monkeypatch: pytest.MonkeyPatch, where: Path,
            *options: str) -> tuple[int, str]:
    from entrypoints.cli import main

    monkeypatch.chdir(where)  # no stray .env
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    out = io.StringIO()
    with redirect_stdout(out):
        code = main(["doctor", *options])
    return code, out.getvalue()


def test_doctor_good_and_broken(home: Home, monkeypatch: pytest.MonkeyPatch,
                                tmp_path: Path) -> None:
    code, out = _doctor(home.env, monkeypatch, tmp_path)
    assert code == 0, out
    assert out.splitlines()[0].startswith("✓ database")
    assert "✓ storage" in out and "✓ outbox" in out and "All checks pass." in out
    home.submit()
    (home.storage / MARKER_NAME).unlink()
    code, out = _doctor(home.env, monkeypatch, tmp_path)
    assert code == 1, out
    assert "✗ storage" in out and "✓ database" in out
    assert "→ Mount the lab's storage" in out
    assert out.strip().endswith("1 check(s) failing: storage.")


def test_doctor_database_unreachable(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    env = {"PRINTCORE_HOME": str(tmp_path / "home"), "PRINTCORE_SECRET_KEY": "s",
           "DATABASE_URL": f"postgresql://printcore:pw-secret-9@127.0.0.1:{_closed_port()}/lab"}
    code, out = _doctor(env, monkeypatch, tmp_path)
    assert code == 1
    assert "✗ database" in out and "cannot connect" in out and "pw-secret-9" not in out
    assert "Start the database server or correct DATABASE_URL" in out


# --- GET /metrics ----------------------------------------------------------------------

def test_metrics(home: Home) -> None:
    from prometheus_client.parser import text_string_to_metric_families

    home.submit()
    old = datetime.now(UTC) - timedelta(minutes=10)
    with home.container.engine.begin() as conn:
        conn.execute(insert(outbox).values(
            channel="email", kind="received", recipient="jane@university.edu",
            subject="job", subject_id=1, payload={}, status="failed", attempts=12,
            created_at=old, next_attempt_at=old))
    r = home.client.get("/metrics")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/plain; version=0.0.4")
    samples = {(s.name, s.labels.get("state")): s.value
               for family in text_string_to_metric_families(r.text) for s in family.samples}
    assert samples[("printcore_up", None)] == 1
    assert samples[("printcore_jobs", "uploaded")] == 1
    assert samples[("printcore_jobs", "paid_picked_up")] == 0
    assert samples[("printcore_outbox_failed", None)] == 1
    # The submission's email may or may not be delivered yet: both figures are there.
    assert ("printcore_outbox_waiting", None) in samples
    assert ("printcore_outbox_oldest_waiting_seconds", None) in samples
    assert "jane@university.edu" not in r.text


def test_doctor_only_some_checks(home: Home, monkeypatch: pytest.MonkeyPatch,
                                 tmp_path: Path) -> None:
    """``--check NAME`` (a container's health check): only those lines, judged alone; a
    name these settings do not have (``worker`` without REDIS_URL, a typo) exits 2 with
    the names there are. The bot's check appears with DISCORD_TOKEN and fails without a
    beat, naming `printcore bot`."""
    home.submit()
    (home.storage / MARKER_NAME).unlink()  # storage fails, but it is not asked about
    code, out = _doctor(home.env, monkeypatch, tmp_path, "--check", "database")
    assert code == 0, out
    assert out.splitlines()[0].startswith("✓ database") and "storage" not in out
    err = io.StringIO()
    with redirect_stderr(err):
        code, out = _doctor(home.env, monkeypatch, tmp_path, "--check", "worker")
    assert code == 2 and "no check called worker" in err.getvalue()
    assert "database, storage, outbox" in err.getvalue()
    env = {**home.env, "DISCORD_TOKEN": "not-a-real-token"}
    code, out = _doctor(env, monkeypatch, tmp_path, "--check", "bot", "--check", "database")
    assert code == 1, out
    assert "✗ bot" in out and "→ Start `printcore bot`" in out
    assert out.strip().endswith("1 check(s) failing: bot.")
