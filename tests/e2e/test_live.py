"""Live updates: ``GET /staff/events`` (Server-Sent Events) against real servers.

Checked: a committed change arrives on an open stream within 2 s (SQLite and
PostgreSQL); a refused change (a 422 approval, a 409 transition) emits nothing; a stream
that reconnects with ``Last-Event-ID`` gets exactly what it missed, in order; two web
processes on one PostgreSQL database see each other's changes (NOTIFY); no staff session
→ 401; an open job page in Chromium changes its status without a reload when another
workstation acts.

Bad inputs tried: no session; a ``Last-Event-ID`` that is not a number (treated as a new
stream: a ``ready`` event); an approval with a missing weight (422, no event).
"""

from __future__ import annotations

import json
import queue
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import psycopg
import pytest

from _live import PASSWORD, PG_DSN, STAFF, LiveServer, start_server, stop_server, submit
from _support import service_missing

DEADLINE = 2.0


class Stream:
    """An SSE client on a thread: ``events`` gets ``(event, id, data)`` tuples."""

    def __init__(self, server_url: str, headers: dict[str, str] | None = None) -> None:
        self.client = httpx.Client(base_url=server_url, timeout=httpx.Timeout(10, read=60))
        r = self.client.post("/api/v1/auth/login",
                             json={"workstation": "Live desk", "password": PASSWORD})
        assert r.status_code == 200, r.text
        self.events: queue.Queue[tuple[str, str | None, dict]] = queue.Queue()
        self.status: int | None = None
        self._headers = headers or {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            self._read()
        except httpx.HTTPError:
            if not self._stop.is_set():
                raise

    def _read(self) -> None:
        with self.client.stream("GET", "/staff/events", headers=self._headers) as response:
            self.status = response.status_code
            kind, event_id, data = "message", None, ""
            for line in response.iter_lines():
                if self._stop.is_set():
                    return
                if line == "":
                    if data:
                        self.events.put((kind, event_id, json.loads(data)))
                    kind, event_id, data = "message", None, ""
                elif line.startswith("event: "):
                    kind = line[7:]
                elif line.startswith("id: "):
                    event_id = line[4:]
                elif line.startswith("data: "):
                    data += line[6:]

    def next(self, timeout: float = DEADLINE) -> tuple[str, str | None, dict]:
        return self.events.get(timeout=timeout)

    def changes(self, count: int, timeout: float = DEADLINE) -> list[dict]:
        out = []
        deadline = time.monotonic() + timeout
        while len(out) < count:
            kind, _, data = self.events.get(timeout=max(deadline - time.monotonic(), 0.01))
            if kind == "change":
                out.append(data)
        return out

    def quiet(self, seconds: float) -> list[tuple[str, str | None, dict]]:
        got = []
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            try:
                got.append(self.events.get(timeout=0.1))
            except queue.Empty:
                pass
        return got

    def close(self) -> None:
        self._stop.set()
        self.client.close()


def _bearer(server: LiveServer) -> dict[str, str]:
    r = httpx.post(server.url + "/api/v1/auth/login",
                   json={"workstation": "Actor desk", "password": PASSWORD}, timeout=30)
    return {"Authorization": f"Bearer {r.json()['token']}"}


def test_a_committed_change_arrives_and_a_refused_one_does_not(
        live_server: LiveServer, fixtures_dir: Path) -> None:
    stream = Stream(live_server.url)
    try:
        kind, ready_id, _ = stream.next()
        assert (stream.status, kind) == (200, "ready") and ready_id is not None
        with live_server.api() as api:
            started = time.monotonic()
            job_id = submit(api, fixtures_dir / "models" / "Moon.stl")
            [change] = stream.changes(1)
            assert time.monotonic() - started < DEADLINE + 2  # the upload itself takes time
            assert (change["subject"], change["subject_id"], change["kind"]) == (
                "job", job_id, "submit")
            assert int(change["id"]) > int(ready_id)
            headers = _bearer(live_server)
            refused = api.post(f"/jobs/{job_id}/approve", headers=headers,
                               json={"staff_name": STAFF, "time_hours": 1})
            assert refused.status_code == 422
            conflict = api.post(f"/jobs/{job_id}/mark-complete", headers=headers,
                                json={"staff_name": STAFF})
            assert conflict.status_code == 409
            assert [e for e in stream.quiet(1.5) if e[0] == "change"] == []
            done = api.post(f"/jobs/{job_id}/reject", headers=headers,
                            json={"staff_name": STAFF, "custom_reason": "Too thin to print."})
            assert done.status_code == 200, done.text
            [change] = stream.changes(1)
            assert (change["kind"], change["to_status"]) == ("reject", "rejected")
    finally:
        stream.close()


def test_reconnecting_with_last_event_id_gets_exactly_what_was_missed(
        live_server: LiveServer, fixtures_dir: Path) -> None:
    first = Stream(live_server.url)
    _, ready_id, _ = first.next()
    first.close()
    with live_server.api() as api:
        missed = [submit(api, fixtures_dir / "models" / "Moon.stl") for _ in range(3)]
    again = Stream(live_server.url, headers={"Last-Event-ID": str(ready_id)})
    try:
        got = again.changes(3)
        assert [(c["kind"], c["subject_id"]) for c in got] == [("submit", j) for j in missed]
        assert [int(c["id"]) for c in got] == sorted(int(c["id"]) for c in got)
        assert [e for e in again.quiet(1.2) if e[0] == "change"] == []
    finally:
        again.close()
    junk = Stream(live_server.url, headers={"Last-Event-ID": "not-a-number"})
    try:
        assert junk.next()[0] == "ready"
    finally:
        junk.close()


def test_no_staff_session_is_401(live_server: LiveServer) -> None:
    r = httpx.get(live_server.url + "/staff/events", timeout=10)
    assert r.status_code == 401
    assert r.json()["error"]["code"] == "unauthenticated"


@pytest.fixture()
def two_servers_on_one_postgresql(tmp_path: Path) -> Iterator[tuple[LiveServer, LiveServer]]:
    schema = f"pc_live_{uuid.uuid4().hex[:10]}"
    try:
        with psycopg.connect(PG_DSN, connect_timeout=3, autocommit=True) as conn:
            conn.execute(f'CREATE SCHEMA "{schema}"')
    except psycopg.OperationalError as err:
        service_missing(f"PostgreSQL at {PG_DSN}: {err}")
    url = (PG_DSN.replace("postgresql://", "postgresql+psycopg://", 1)
           + f"?options=-csearch_path%3D{schema}")
    storage = tmp_path / "shared-storage"
    env = {"DATABASE_URL": url, "PRINTCORE_STORAGE": str(storage),
           "PRINTCORE_SECRET_KEY": "live-test-" + uuid.uuid4().hex}
    one = start_server(tmp_path / "one", env, "postgresql")
    two = start_server(tmp_path / "two", env, "postgresql")
    try:
        yield one, two
    finally:
        stop_server(one)
        stop_server(two)
        with psycopg.connect(PG_DSN, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


def test_two_web_processes_on_postgresql_see_each_others_changes(
        two_servers_on_one_postgresql: tuple[LiveServer, LiveServer],
        fixtures_dir: Path) -> None:
    one, two = two_servers_on_one_postgresql
    watching = Stream(one.url)
    try:
        assert watching.next()[0] == "ready"
        with two.api() as api:
            job_id = submit(api, fixtures_dir / "models" / "Moon.stl")
            posted = time.monotonic()
        [change] = watching.changes(1)
        waited = time.monotonic() - posted
        assert (change["subject_id"], change["kind"]) == (job_id, "submit")
        assert waited < DEADLINE, f"the other process's change took {waited:.2f} s"
    finally:
        watching.close()


@pytest.mark.parametrize("live_server", ["sqlite"], indirect=True)  # the stream: both kinds
def test_an_open_job_page_changes_without_a_reload(
        live_server: LiveServer, fixtures_dir: Path) -> None:
    """Chromium has job N open; another workstation rejects it over the API; the page's
    status, history and actions change in place (a marker set on the page survives, so
    it was not reloaded) and the footer says when."""
    from playwright.sync_api import expect, sync_playwright

    chromium_path = Path("/usr/bin/chromium")
    if not chromium_path.exists():
        service_missing(f"Chromium not found at {chromium_path}")
    with live_server.api() as api:
        job_id = submit(api, fixtures_dir / "models" / "Moon.stl")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(chromium_path),
                                             headless=True, args=["--no-sandbox"])
        try:
            page = browser.new_page()
            page.goto(live_server.url + "/staff/login")
            page.fill("input[name=password]", PASSWORD)
            page.click("button[type=submit]")
            page.goto(f"{live_server.url}/staff/jobs/{job_id}")
            expect(page.locator("#live-status")).to_contain_text("Live", timeout=5000)
            page.evaluate("window.__notReloaded = true")
            with live_server.api() as api:
                r = api.post(f"/jobs/{job_id}/reject", headers=_bearer(live_server),
                             json={"staff_name": STAFF, "custom_reason": "Walls too thin."})
                assert r.status_code == 200, r.text
            expect(page.locator("#job-head .status")).to_have_text("Rejected", timeout=3000)
            expect(page.locator("#job-history")).to_contain_text("Walls too thin.")
            expect(page.locator("#live-status")).to_contain_text("updated")
            assert page.evaluate("window.__notReloaded === true")
            # The dashboard: a new request's card appears in the Uploaded tab by itself.
            page.goto(f"{live_server.url}/staff?status=uploaded")
            expect(page.locator("#live-status")).to_contain_text("Live", timeout=5000)
            page.evaluate("window.__notReloaded = true")
            with live_server.api() as api:
                new_id = submit(api, fixtures_dir / "models" / "Moon.stl")
            expect(page.locator(f'.job-card[data-job="{new_id}"]')).to_be_visible(timeout=3000)
            assert page.evaluate("window.__notReloaded === true")
        finally:
            browser.close()
