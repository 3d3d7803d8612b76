"""``printcore db copy --to URL`` (adapters.sql.copy): a SQLite lab moved to PostgreSQL.

The SQLite lab is made through the wired app (Starlette TestClient) and its services: a
job in every state (and one deleted, so SQLite's AUTOINCREMENT counter is past the largest
id), their events and outbox rows, staff members (one deactivated), workstation sessions,
settings, printers and queue tickets (offered, printing, queued, cancelled). After the
copy every table is compared row by row, and every job, event, outbox message, staff
member, session, setting, printer and ticket through the app's own repositories; the app
served from PostgreSQL shows the jobs and hands out the next id (never a deleted one's).

Bad inputs tried: a target that has rows (refused, exit 1, target unchanged); ``--to``
that is not a URL, a SQLite URL, a PostgreSQL URL without a database name, a PostgreSQL
that cannot be reached (each exit 2 with what to use instead, nothing written); a target
that is the current database itself.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, inspect, select

from _support import FIXTURES
from adapters.sql import SqlUnitOfWork, make_engine
from adapters.sql.copy import CopyError, copy_database
from adapters.sql.tables import metadata
from entrypoints.cli import main
from printcore.requests.job import Actor

MODEL = FIXTURES / "models" / "Moon.stl"
SLICED = FIXTURES / "sliced" / "square_ring_plate_1.gcode"
STAFF = "Ada Lovelace"
PASSWORD = "copy-test-password"
EVERY_STATE = {"uploaded", "pending", "rejected", "ready_to_print", "printing", "completed",
               "paid_picked_up"}


class Lab:
    def __init__(self, home: Path, env: dict[str, str], client: Any, container: Any) -> None:
        self.home, self.env, self.client, self.container = home, env, client, container
        self.headers: dict[str, str] = {}

    def ok(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        r = self.client.request(method, "/api/v1" + path, headers=self.headers, **kwargs)
        assert r.status_code in (200, 201), r.text
        data: dict[str, Any] = r.json()
        return data

    def submit(self, name: str) -> int:
        with MODEL.open("rb") as handle:
            return int(self.ok("POST", "/submissions", data={
                "student_name": name, "email": "s@university.edu", "discipline": "ME",
                "class_number": "ME 1", "print_method": "filament", "color": "Red"},
                files={"file": (MODEL.name, handle)})["id"])


def _open(env: dict[str, str]) -> tuple[Any, Any]:
    from starlette.testclient import TestClient

    from entrypoints.bootstrap import bootstrap
    from entrypoints.settings import load_settings
    from entrypoints.web import app_from_container

    container = bootstrap(load_settings(env, env_file=None))
    app = app_from_container(container, isolated_inspection=True)
    return TestClient(app, base_url="http://127.0.0.1"), container


def _close(client: Any, container: Any) -> None:
    client.close()
    client.app.state.ctx.inspector.close()
    container.close()


def _login(lab: Lab, workstation: str) -> None:
    r = lab.client.post("/api/v1/auth/login",
                        json={"workstation": workstation, "password": PASSWORD})
    assert r.status_code == 200, r.text
    lab.headers = {"Authorization": f"Bearer {r.json()['token']}"}


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[Lab]:
    """A seeded SQLite lab (see the module docstring), its app closed again."""
    home = tmp_path / "home"
    env = {"PRINTCORE_HOME": str(home), "PRINTCORE_SECRET_KEY": "copy-secret",
           "PRINTCORE_STAFF_PASSWORD": PASSWORD}
    client, container = _open(env)
    lab = Lab(home, env, client, container)
    try:
        container.staff.add(STAFF)
        container.staff.add("Ben Gone")
        container.staff.deactivate("Ben Gone")
        _login(lab, "Front desk")
        _login(lab, "Back office")
        staff = {"staff_name": STAFF}
        lab.submit("Una Uploaded")
        rejected = lab.submit("Rita Rejected")
        lab.ok("POST", f"/jobs/{rejected}/reject",
               json={**staff, "custom_reason": "Too thin to print."})
        for depth, name in enumerate(("Pia Pending", "Rey Ready", "Pete Printing",
                                      "Cora Completed", "Paul Paid")):
            job_id = lab.submit(name)
            with SLICED.open("rb") as handle:
                sliced = lab.ok("POST", f"/jobs/{job_id}/files", data=staff,
                                files={"file": (SLICED.name, handle)})["file"]["stored_name"]
            lab.ok("POST", f"/jobs/{job_id}/approve", json={
                **staff, "weight_g": 100, "time_hours": 2, "authoritative_file": sliced})
            for step, path, extra in (
                (1, "force-confirm", {"reason": "Said yes at the desk"}),
                (2, "mark-printing", {}), (3, "mark-complete", {}),
                (4, "payment", {"grams": 100, "txn_no": "TX-1", "picked_up_by": "Paul"}),
            ):
                if depth >= step:
                    lab.ok("POST", f"/jobs/{job_id}/{path}", json={**staff, **extra})
        gone = lab.submit("Dee Deleted")
        container.requests.delete(gone, Actor.staff(STAFF, "Front desk"), "a duplicate")
        queue = container.queue
        queue.sync_printers([("MK4-1", "Prusa MK4 #1"), ("X1C", "Bambu X1C")])
        queue.join("m1", "Mia", "bracket", timedelta(minutes=90))
        queue.claim("m1", "MK4-1")
        queue.report_started("m1")
        queue.join("m2", "Max", "gear", timedelta(minutes=30))
        queue.join("m3", "Moe", "vase", timedelta(hours=3))
        queue.join("m4", "Meg", "clip", timedelta(minutes=10))
        queue.cancel("m4")
        for n in range(5, 5 + len(queue.sync_printers([])) + 8):  # more than the printers
            queue.join(f"m{n}", f"Member {n}", "part", timedelta(minutes=20))
    finally:
        _close(client, container)
    yield lab


def _rows(engine: Engine) -> dict[str, list[dict[str, Any]]]:
    with engine.connect() as conn:
        out = {t.name: [dict(r) for r in conn.execute(
            select(t).order_by(*t.primary_key.columns)).mappings()]
            for t in metadata.sorted_tables}
        conn.rollback()
    return out


def _through_repositories(engine: Engine) -> dict[str, Any]:
    """Everything the app reads, through its own repositories."""
    with engine.connect() as conn:
        job_ids = [r[0] for r in conn.execute(select(metadata.tables["jobs"].c.id))]
        tickets = [r[0] for r in conn.execute(select(metadata.tables["tickets"].c.id))]
        outbox = [r[0] for r in conn.execute(select(metadata.tables["outbox"].c.id))]
        keys = [r[0] for r in conn.execute(select(metadata.tables["settings"].c.key))]
        conn.rollback()
    uow = SqlUnitOfWork(engine)
    with uow:
        return {
            "jobs": {i: uow.jobs.get(i) for i in sorted(job_ids)},
            "events": {i: uow.events.for_subject("job", i) for i in range(1, max(job_ids) + 2)},
            "queue events": {i: uow.events.for_subject("ticket", i) for i in tickets},
            "outbox": {i: uow.outbox.get(i) for i in outbox},
            "staff": uow.staff.list(active_only=False),
            "sessions": uow.sessions.list(active_only=False),
            "settings": {k: uow.settings.get(k) for k in keys},
            "printers": uow.printers.list(),
            "tickets": {i: uow.tickets.get(i) for i in tickets},
        }


def _cli(monkeypatch: pytest.MonkeyPatch, lab: Lab, *args: str) -> int:
    monkeypatch.chdir(lab.home.parent)
    for key in ("DATABASE_URL", "PRINTCORE_STORAGE"):
        monkeypatch.delenv(key, raising=False)
    for key, value in lab.env.items():
        monkeypatch.setenv(key, value)
    return main(list(args))


def _url(engine: Engine) -> str:
    return engine.url.render_as_string(hide_password=False)


@pytest.mark.postgres
def test_copy_moves_every_row_and_the_app_serves_them_from_postgresql(
    lab: Lab, pg_empty_engine: Engine, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    source = make_engine(f"sqlite:///{lab.home / 'printcore.db'}")
    try:
        before = _rows(source)
        seen = _through_repositories(source)
    finally:
        source.dispose()
    assert {j["status"] for j in before["jobs"]} == EVERY_STATE
    assert {t["status"] for t in before["tickets"]} >= {"printing", "offered", "queued",
                                                        "cancelled"}
    for name in ("events", "outbox", "staff", "staff_sessions", "settings", "printers"):
        assert before[name], name
    storage = sorted(p.relative_to(lab.home) for p in (lab.home / "storage").rglob("*"))

    assert _cli(monkeypatch, lab, "db", "copy", "--to", _url(pg_empty_engine)) == 0
    out = capsys.readouterr().out
    for name, rows in before.items():
        assert f"  {name} " in out and f" {len(rows)} rows" in out, (name, out)
    assert "storage root is unchanged" in out
    assert pg_empty_engine.url.password is None or str(pg_empty_engine.url.password) not in out

    assert _rows(pg_empty_engine) == before
    assert _through_repositories(pg_empty_engine) == seen
    assert sorted(p.relative_to(lab.home) for p in (lab.home / "storage").rglob("*")) == storage

    # The app on PostgreSQL (same home, same storage) serves the jobs and the next id.
    client, container = _open({**lab.env, "DATABASE_URL": _url(pg_empty_engine)})
    served = Lab(lab.home, lab.env, client, container)
    try:
        assert container.database_kind == "postgresql"
        _login(served, "After the move")
        for job in before["jobs"]:
            shown = served.ok("GET", f"/jobs/{job['id']}")
            assert (shown["status"], shown["student_name"]) == (job["status"],
                                                                 job["student_name"])
        deleted_id = max(j["id"] for j in before["jobs"]) + 1
        assert served.submit("New Student") == deleted_id + 1  # the deleted id is not reused
        ready = client.get("/api/v1/health/ready")
        assert ready.status_code == 200, ready.text  # database named, storage marker matches
        assert ready.json()["status"] == "ok"
        page = client.get(f"/staff/jobs/{before['jobs'][0]['id']}")
        assert page.status_code == 200 and "Una Uploaded" in page.text
    finally:
        _close(client, container)


@pytest.mark.postgres
def test_copy_refuses_a_target_with_rows_and_bad_urls(
    lab: Lab, pg_empty_engine: Engine, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    target = _url(pg_empty_engine)
    assert _cli(monkeypatch, lab, "db", "copy", "--to", target) == 0
    capsys.readouterr()
    copied = _rows(pg_empty_engine)

    # A target with rows: refused, unchanged.
    assert _cli(monkeypatch, lab, "db", "copy", "--to", target) == 1
    err = capsys.readouterr().err
    assert "not empty" in err and "jobs (" in err and "createdb" in err
    assert _rows(pg_empty_engine) == copied

    # URLs that cannot be a target: exit 2, what to use instead.
    for bad, said in (("not a url", "is not a database URL"),
                      (f"sqlite:///{lab.home / 'other.db'}", "is not a PostgreSQL database"),
                      ("postgresql://postgres@127.0.0.1:5432", "is not a PostgreSQL database"),
                      ("postgresql://postgres:hunter2@127.0.0.1:1/nothing",
                       "Cannot reach the database at 127.0.0.1:1 (--to)")):
        assert _cli(monkeypatch, lab, "db", "copy", "--to", bad) == 2, bad
        err = capsys.readouterr().err
        assert said in err, (bad, err)
        assert "hunter2" not in err
    assert not (lab.home / "other.db").exists()

    # The current database itself.
    source = make_engine(f"sqlite:///{lab.home / 'printcore.db'}")
    try:
        with pytest.raises(CopyError, match="must be a PostgreSQL"):
            copy_database(source, source)
        assert "alembic_version" in inspect(source).get_table_names()
    finally:
        source.dispose()
    with pytest.raises(CopyError, match="is the current database"):
        copy_database(pg_empty_engine, pg_empty_engine)
