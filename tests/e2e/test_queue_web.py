"""The staff printers-and-queue page (``/staff/printers``) against a real server, on SQLite
and on PostgreSQL. Members' tickets are set up with ``printcore queue …`` in separate
processes on the same database; the page, ``GET /api/v1/queue`` and ``queue status`` must
agree, with times in the lab's zone (Asia/Kathmandu, UTC+05:45, so no offset can hide).

The lab is open for a window around the test (access hours computed from now), so the
page says "Open now, until …" and a ticket whose turn falls after closing gets next
week's opening as its ETA; a second, SQLite-only server is closed now.

Staff actions tried, each checked on the page (flash), in ``queue status`` and in the
event log (the staff member and workstation named): remove a queued ticket, release a
claimed printer, take a printer out of service and put it back, release a printing
printer (closes the print: it shows under recent prints).

Bad inputs tried (each answers with its status and a message on the page or in JSON, and
changes nothing: the printers' versions and the queue are the same afterwards): an unknown
printer (404, the message lists the printers) for release, out-of-service and the API; an
unknown ticket (404); release with nothing to release (409); removing a ticket twice and
removing a printing ticket (409); putting back a printer in service and taking out one
already out (409); a stale form (the printer changed since the page was loaded: 409); no
CSRF token and a forged one (403); no staff member chosen and one not on the staff list
(422); a non-integer version in the API (422); not logged in (the page and the forms
redirect to the login page, the API answers 401).
"""

from __future__ import annotations

import html
import json
import os
import re
import subprocess
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import attrs
import httpx
import psycopg
import pytest
import sqlalchemy as sa

from _live import PASSWORD, PG_DSN, STAFF, LiveServer, login, start_server, stop_server
from _support import service_missing

ZONE = "Asia/Kathmandu"
TZ = ZoneInfo(ZONE)
WHEN = "%a %d %b %H:%M %Z"  # how the page and `queue status` show times
WORKSTATION = "Queue desk"
RUNNER = """
import json, sys
from entrypoints.cli import main
for argv in json.loads(sys.argv[1]):
    code = main(argv)
    if code:
        sys.exit(code)
"""


@attrs.define
class Lab:
    """A running server and the environment for ``printcore queue …`` on its database."""

    server: LiveServer
    env: dict[str, str]
    closes: datetime | None = None  # local, when the lab closes (open servers)
    reopens: datetime | None = None  # local, next week's opening

    def q(self, *args: str, code: int = 0) -> str:
        done = subprocess.run([sys.executable, "-m", "entrypoints.cli", "queue", *args],
                              env=self.env, capture_output=True, text=True, timeout=120)
        output = done.stdout + done.stderr
        assert done.returncode == code, f"{args} → {done.returncode}:\n{output}"
        return output

    def script(self, *commands: str) -> str:
        """Several ``printcore queue …`` commands (each a string of words) run one after
        the other through the CLI's ``main`` in one process (one interpreter start-up);
        all must succeed."""
        argv = json.dumps([["queue", *c.split("|")] if "|" in c else ["queue", *c.split()]
                           for c in commands])
        done = subprocess.run([sys.executable, "-c", RUNNER, argv], env=self.env,
                              capture_output=True, text=True, timeout=300)
        output = done.stdout + done.stderr
        assert done.returncode == 0, f"{commands} → {done.returncode}:\n{output}"
        return output

    def status(self) -> dict[str, str]:
        """``queue status`` as {printer name or ticket id: its line}."""
        lines: dict[str, str] = {}
        for line in self.q("status").splitlines():
            line = line.strip()
            if match := re.match(r"#(\d+) ", line):
                lines[match.group(1)] = line
            elif line and not line.endswith(":") and not line.startswith("queue"):
                lines[line.split()[0]] = line
        return lines

    def events(self) -> list[dict[str, Any]]:
        """The queue's events (printers and tickets), oldest first."""
        url = self.env.get("DATABASE_URL") or f"sqlite:///{self.server.home / 'printcore.db'}"
        engine = sa.create_engine(url)
        try:
            with engine.connect() as conn:
                rows = conn.execute(sa.text(
                    "SELECT subject, kind, actor_kind, actor_name, workstation FROM events "
                    "WHERE subject IN ('printer', 'ticket') ORDER BY id")).mappings().all()
        finally:
            engine.dispose()
        return [dict(r) for r in rows]


def _open_window() -> tuple[str, datetime, datetime]:
    """Access hours open from an hour ago until 70 minutes from now (local, whole
    minutes), the closing time and next week's opening."""
    now = datetime.now(TZ).replace(second=0, microsecond=0)
    opens, closes = now - timedelta(hours=1), now + timedelta(minutes=70)
    spec = f"{opens.strftime('%a').lower()} {opens:%H:%M}-{closes:%H:%M}"
    return spec, closes, opens + timedelta(days=7)


def _start(home: Path, kind: str, access_hours: str) -> tuple[LiveServer, dict[str, str], str | None]:
    home.mkdir(parents=True, exist_ok=True)
    extra = {"PRINTCORE_TIMEZONE": ZONE, "PRINTCORE_ACCESS_HOURS": access_hours}
    schema = None
    if kind == "postgresql":
        schema = f"pc_qweb_{uuid.uuid4().hex[:10]}"
        try:
            with psycopg.connect(PG_DSN, connect_timeout=3, autocommit=True) as conn:
                conn.execute(f'CREATE SCHEMA "{schema}"')
        except psycopg.OperationalError as err:
            service_missing(f"PostgreSQL at {PG_DSN}: {err}")
        extra["DATABASE_URL"] = (PG_DSN.replace("postgresql://", "postgresql+psycopg://", 1)
                                 + f"?options=-csearch_path%3D{schema}")
    env = {**os.environ, "PRINTCORE_HOME": str(home), **extra}
    env.pop("DISCORD_TOKEN", None)
    if kind == "sqlite":
        env.pop("DATABASE_URL", None)
    return start_server(home, extra, kind), env, schema


def _drop(schema: str | None) -> None:
    if schema is not None:
        with psycopg.connect(PG_DSN, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


@pytest.fixture(params=["sqlite", "postgresql"])
def lab(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Lab]:
    spec, closes, reopens = _open_window()
    server, env, schema = _start(tmp_path / "home", request.param, spec)
    try:
        yield Lab(server, env, closes, reopens)
    finally:
        stop_server(server)
        _drop(schema)


@pytest.fixture
def closed_lab(tmp_path: Path) -> Iterator[Lab]:
    """SQLite, open only on the day after tomorrow (lab zone), 09:00-17:00."""
    day = datetime.now(TZ) + timedelta(days=2)
    server, env, schema = _start(tmp_path / "home", "sqlite",
                                 f"{day.strftime('%a').lower()} 09:00-17:00")
    try:
        yield Lab(server, env, reopens=day.replace(hour=9, minute=0, second=0, microsecond=0))
    finally:
        stop_server(server)
        _drop(schema)


# --- talking to the pages ----------------------------------------------------------------


@contextmanager
def staff_client(server: LiveServer) -> Iterator[httpx.Client]:
    """A browser-like client logged in through the HTML login form (session cookie)."""
    with httpx.Client(base_url=server.url, timeout=60) as web:
        csrf = _csrf(web.get("/staff/login").text)
        r = web.post("/staff/login?next=/staff/printers",
                     data={"csrf_token": csrf, "workstation": WORKSTATION, "password": PASSWORD})
        assert r.status_code == 303 and r.headers["location"] == "/staff/printers", r.text
        yield web


def _csrf(page: str) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert match, page
    return match.group(1)


def _text(fragment: str) -> str:
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", fragment)).split())


def printers_on(page: str) -> dict[str, tuple[str, str, int]]:
    """{printer: (status, its card's text, the version in its forms)}."""
    found = {}
    for name, status, body in re.findall(
            r'<section class="card printer"[^>]*data-printer="([^"]+)" data-status="([^"]+)">'
            r"(.*?)</section>", page, re.S):
        version = re.search(r'name="version" value="(\d+)"', body)
        found[name] = (status, _text(body), int(version.group(1)) if version else -1)
    return found


def queue_on(page: str) -> list[dict[str, str]]:
    """The queue table's rows in order: ticket, status, position, member, eta (text)."""
    rows = []
    table = page.split("<h2>Queue</h2>", 1)[1].split("</section>", 1)[0]
    for ticket, status, body in re.findall(
            r'<tr data-ticket="(\d+)" data-status="([^"]+)">(.*?)</tr>', table, re.S):
        cells = [_text(c) for c in re.findall(r"<td[^>]*>(.*?)</td>", body, re.S)]
        rows.append({"ticket": ticket, "status": status, "position": cells[0],
                     "member": cells[2], "job": cells[3], "estimate": cells[4],
                     "eta": cells[6].split(" (")[0]})
    return rows


def history_on(page: str) -> list[str]:
    part = page.split("<h2>Recent prints</h2>", 1)[1].split("</section>", 1)[0]
    return [_text(row) for row in re.findall(r"<tr data-ticket=[^>]*>(.*?)</tr>", part, re.S)]


def flash_on(page: str) -> str:
    match = re.search(r'<p class="flash"[^>]*>(.*?)</p>', page, re.S)
    return _text(match.group(1)) if match else ""


def error_on(page: str) -> str:
    match = re.search(r'<p class="error" role="alert"[^>]*>(.*?)</p>', page, re.S)
    return _text(match.group(1)) if match else ""


def act(web: httpx.Client, path: str, **fields: str | None) -> httpx.Response:
    """POST a printers-page form as the page would (token, staff member), ``None`` drops
    a field; answers the response (not followed)."""
    data: dict[str, str | None] = {"csrf_token": _csrf(web.get("/staff/printers").text),
                                   "staff_name": STAFF, **fields}
    return web.post(path, data={k: v for k, v in data.items() if v is not None})


def act_ok(web: httpx.Client, path: str, **fields: str | None) -> str:
    """A form that must succeed: the redirect back and its flash; answers the new page."""
    r = act(web, path, **fields)
    assert r.status_code == 303 and r.headers["location"] == "/staff/printers", (
        r.status_code, error_on(r.text))
    return web.get("/staff/printers").text


def local(iso: str | None) -> str:
    assert iso is not None
    return datetime.fromisoformat(iso).astimezone(TZ).strftime(WHEN)


def _eta_of(line: str) -> str:
    return line.rsplit(", ETA ", 1)[1]


# --- the tests ------------------------------------------------------------------------------


def _set_up_queue(lab: Lab) -> None:
    """Ann prints on X1C-1 (1h), Bob on X1C-2 (30m), Cy holds X1C-3; Dee (45m), Eve (20m)
    and Frank (3h) wait, Frank's turn falling after closing time."""
    lab.script(
        "join ann bracket 1h --name Ann", "join bob gear 30m --name Bob",
        "join cy hook 2h --name Cy",
        "claim ann X1C-1", "start ann", "claim bob X1C-2", "start bob", "claim cy X1C-3",
        "join|dee|phone stand|45m|--name|Dee", "join eve clip 20m --name Eve",
        "join|frank|helmet <v2> & 'visor'|3h|--name|Frank")


def test_page_shows_printers_and_the_queue_with_etas_in_the_lab_zone(lab: Lab) -> None:
    _set_up_queue(lab)
    with staff_client(lab.server) as web:
        dashboard = web.get("/staff").text
        assert 'href="/staff/printers"' in dashboard  # the staff nav links to the page
        r = web.get("/staff/printers")
        assert r.status_code == 200
        page = r.text
        with lab.server.api() as api:
            data = api.get("/queue", headers=login(api)).json()
    status = lab.status()
    assert lab.closes is not None and lab.reopens is not None

    # Access hours and whether the lab is open, in the lab's zone.
    hours = _text(page.split('<section class="card lab-hours"', 1)[1].split("</section>")[0])
    assert data["access_hours"]["spec"] in hours and ZONE in hours
    assert f"Open now , until {lab.closes.strftime(WHEN)}" in hours
    assert data["access_hours"]["open_now"] is True
    assert local(data["access_hours"]["next_change"]) == lab.closes.strftime(WHEN)

    # Printers: state, label, holder / print, deadlines.
    printers = printers_on(page)
    assert {n: p[0] for n, p in printers.items()} == {
        "X1C-1": "printing", "X1C-2": "printing", "X1C-3": "claimed"}
    api_printers = {p["name"]: p for p in data["printers"]}
    for name, (state, text, version) in printers.items():
        assert state in status[name]
        assert api_printers[name]["status"] == state and api_printers[name]["version"] == version
        assert api_printers[name]["label"] in text
    ann = printers["X1C-1"][1]
    assert "Printing Ann · #1 “bracket” (1h)" in ann
    predicted = local(api_printers["X1C-1"]["predicted_end"])
    assert f"predicted end {predicted}" in ann and f"predicted end {predicted}" in status["X1C-1"]
    assert f"started {local(api_printers['X1C-1']['started_at'])}" in ann
    cy = printers["X1C-3"][1]
    assert "Claimed by Cy · #3 “hook” (2h)" in cy
    assert f"Start by {local(api_printers['X1C-3']['start_deadline'])}" in cy
    assert "+0545" in cy  # shown in the lab's zone, not UTC or the server's

    # The queue in FIFO order, positions and ETAs as `queue status` and the API say.
    rows = queue_on(page)
    assert [r["member"].split(" (")[0] for r in rows] == ["Ann", "Bob", "Cy", "Dee", "Eve",
                                                          "Frank"]
    assert [r["position"] for r in rows] == ["—", "—", "—", "1", "2", "3"]
    assert [r["status"] for r in rows] == ["printing", "printing", "claimed", "queued",
                                           "queued", "queued"]
    assert rows[5]["job"] == "helmet <v2> & 'visor'" and rows[3]["estimate"] == "45m"
    assert "helmet <v2>" not in page  # escaped, never markup
    api_queue = {str(t["id"]): t for t in data["queue"]}
    for row in rows[3:]:
        ticket = api_queue[row["ticket"]]
        assert row["eta"] == local(ticket["eta"]) == _eta_of(status[row["ticket"]])
        assert f"position {row['position']}" in status[row["ticket"]]
    bob_end = datetime.fromisoformat(api_printers["X1C-2"]["predicted_end"])
    assert rows[3]["eta"] == bob_end.astimezone(TZ).strftime(WHEN)  # Dee follows Bob
    # Frank's turn comes after closing time: his ETA is next week's opening.
    assert rows[5]["eta"] == lab.reopens.strftime(WHEN)
    assert rows[0]["eta"].startswith("started ")
    assert history_on(page) == []
    assert "No closed prints yet." in page


def test_staff_actions_change_the_queue(lab: Lab) -> None:
    _set_up_queue(lab)
    with staff_client(lab.server) as web:
        # Remove a queued ticket (Dee): gone from the page and `queue status`.
        page = act_ok(web, "/staff/queue/4/remove")
        assert flash_on(page) == "Removed ticket #4 — Dee, “phone stand” — from the queue."
        assert "4" not in {r["ticket"] for r in queue_on(page)}
        assert "4" not in lab.status()
        assert [r["position"] for r in queue_on(page)][3:] == ["1", "2"]  # Eve, Frank
        assert "No closed prints yet." in page

        # Release a claimed printer: Cy goes back to the head and is offered it again.
        page = act_ok(web, "/staff/printers/X1C-3/release")
        assert flash_on(page) == ("Released X1C-3: Cy is back at the head of the queue; "
                                  "X1C-3 is now offered to Cy.")
        assert printers_on(page)["X1C-3"][0] == "offered"
        assert "offered to Cy, claim by" in lab.status()["X1C-3"]
        assert "Offered to Cy" in printers_on(page)["X1C-3"][1]
        assert "Claim by" in printers_on(page)["X1C-3"][1]

        # Out of service: Cy back to the queue head, nothing offered on it.
        page = act_ok(web, "/staff/printers/X1C-3/out-of-service")
        assert flash_on(page) == ("X1C-3 is out of service; Cy is back at the head of the "
                                  "queue. Nothing will be offered on it until it is back.")
        assert printers_on(page)["X1C-3"][0] == "out_of_service"
        assert "out of service" in lab.status()["X1C-3"]
        assert "queued; position 1" in lab.status()["3"]
        assert 'action="/staff/printers/X1C-3/back-in-service"' in page

        # Back in service: offered to the head of the queue (Cy) at once.
        page = act_ok(web, "/staff/printers/X1C-3/back-in-service")
        assert flash_on(page) == "X1C-3 is back in service, now offered to Cy."
        assert "offered to Cy, claim by" in lab.status()["X1C-3"]

        # Release a printing printer: Ann's print is closed as finished and shows in the
        # history; the printer goes to the next member (Eve).
        page = act_ok(web, "/staff/printers/X1C-1/release")
        assert flash_on(page) == ("Closed Ann's print on X1C-1 as finished; X1C-1 is now "
                                  "offered to Eve.")
        assert printers_on(page)["X1C-1"][0] == "offered"
        history = history_on(page)
        assert len(history) == 1 and history[0].startswith("#1 Ann bracket X1C-1")
        assert "finished" in history[0] and "1h →" in history[0]
        assert "#1 Ann (ann): 'bracket'" in lab.q("history")
        assert "offered to Eve, claim by" in lab.status()["X1C-1"]
        assert flash_on(web.get("/staff/printers").text) == ""  # shown once

    # The event log names the staff member and the workstation for each action.
    by_staff = [e for e in lab.events() if e["actor_kind"] == "staff"]
    assert [e["kind"] for e in by_staff if e["subject"] == "printer"] == [
        "release", "take_out", "put_back", "release"]
    assert {"cancel", "close"} <= {e["kind"] for e in by_staff if e["subject"] == "ticket"}
    assert {(e["actor_name"], e["workstation"]) for e in by_staff} == {(STAFF, WORKSTATION)}


def _snapshot(lab: Lab) -> tuple[Any, ...]:
    """What a refused action must leave alone: each printer's state and version, and each
    open ticket's place."""
    with lab.server.api() as api:
        data = api.get("/queue", headers=login(api)).json()
    return (
        sorted((p["name"], p["status"], p["version"], p["holder"]) for p in data["printers"]),
        [(t["id"], t["status"], t["position"], t["version"]) for t in data["queue"]],
        [t["id"] for t in data["history"]],
    )


def test_bad_input_is_refused_with_a_message_and_changes_nothing(lab: Lab) -> None:
    lab.script("join ann bracket 1h --name Ann",  # offered X1C-1
               "join bob gear 30m --name Bob", "claim bob X1C-2", "start bob",  # printing
               "join cy hook 2h --name Cy",  # offered X1C-3
               "join dee stand 45m --name Dee")  # queued
    with staff_client(lab.server) as web:
        act_ok(web, "/staff/queue/4/remove")  # Dee's ticket is gone
        act_ok(web, "/staff/printers/X1C-3/out-of-service")  # Cy back in the queue
        before = _snapshot(lab)
        page = web.get("/staff/printers").text
        stale_version = printers_on(page)["X1C-1"][2] - 1

        refused = [
            ("/staff/printers/X1C-9/release", {}, 404, "There is no printer called 'X1C-9'; "
             "printers: X1C-1, X1C-2, X1C-3."),
            ("/staff/printers/nope/out-of-service", {}, 404, "no printer called 'nope'"),
            ("/staff/queue/999/remove", {}, 404, "There is no ticket #999."),
            ("/staff/printers/X1C-3/release", {}, 409, "nothing to release"),
            ("/staff/queue/4/remove", {}, 409, "Ticket #4 is already cancelled"),
            ("/staff/queue/2/remove", {}, 409, "release its printer to close the print"),
            ("/staff/printers/X1C-1/back-in-service", {}, 409, "X1C-1 is already in service."),
            ("/staff/printers/X1C-3/out-of-service", {}, 409, "already out of service"),
            ("/staff/printers/X1C-1/release", {"version": str(stale_version)}, 409,
             "X1C-1 changed since you loaded the page"),
            ("/staff/printers/X1C-1/release", {"csrf_token": None}, 403,
             "did not come from this site; reload the page"),
            ("/staff/queue/3/remove", {"csrf_token": "forged"}, 403, "reload the page"),
            ("/staff/printers/X1C-1/out-of-service", {"staff_name": "Mallory"}, 422,
             "'Mallory' is not on the active staff list"),
        ]
        for path, fields, code, message in refused:
            r = act(web, path, **fields)
            assert r.status_code == code, (path, fields, r.status_code, error_on(r.text))
            error = error_on(r.text)
            assert message in error and error.endswith("Nothing was changed."), (path, error)
            assert "<h1>Printers and queue</h1>" in r.text  # the page again, current state
        # A form without a name uses the one chosen for this workstation (act_ok's, kept
        # from its form); with that forgotten in the header too, it is refused.
        r = web.post("/staff/whoami", data={"csrf_token": _csrf(page), "staff_name": "",
                                            "next": "/staff/printers"})
        assert r.status_code == 303, r.text
        r = act(web, "/staff/printers/X1C-1/release", staff_name=None)
        assert r.status_code == 422, error_on(r.text)
        assert "Choose your name from the staff list." in error_on(r.text)
        assert _snapshot(lab) == before

    # JSON API: the same refusals in the error shape.
    with lab.server.api() as api:
        headers = login(api)
        r = api.post("/printers/X1C-9/release", headers=headers, json={"staff_name": STAFF})
        assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"
        r = api.post("/printers/X1C-3/release", headers=headers, json={"staff_name": STAFF})
        assert r.status_code == 409 and "nothing to release" in r.json()["error"]["message"]
        r = api.request("DELETE", "/queue/tickets/999", headers=headers,
                        params={"staff_name": STAFF})
        assert r.status_code == 404
        r = api.post("/printers/X1C-1/release", headers=headers,
                     json={"staff_name": STAFF, "version": "x"})
        assert r.status_code == 422 and r.json()["error"]["fields"] == {"version": "Whole number."}
        r = api.post("/printers/X1C-1/release", headers=headers, json={"staff_name": "Mallory"})
        assert r.status_code == 422
        # A cookie session without the X-CSRF-Token header is refused too.
        cookie = api.post("/auth/login", json={"password": PASSWORD}).status_code
        assert cookie == 200
        r = api.post("/printers/X1C-1/release", json={"staff_name": STAFF})
        assert r.status_code == 403
    assert _snapshot(lab) == before

    # Not logged in: the page and its forms send to the login page, the API answers 401.
    with httpx.Client(base_url=lab.server.url, timeout=30) as anonymous:
        r = anonymous.get("/staff/printers")
        assert r.status_code == 303
        assert r.headers["location"] == "/staff/login?next=/staff/printers"
        for path in ("/staff/printers/X1C-1/release", "/staff/queue/3/remove"):
            r = anonymous.post(path, data={"staff_name": STAFF, "csrf_token": "x"})
            assert r.status_code == 303 and r.headers["location"].startswith("/staff/login")
        r = anonymous.get("/api/v1/queue")
        assert r.status_code == 401 and r.json()["error"]["code"] == "unauthenticated"
        r = anonymous.post("/api/v1/printers/X1C-1/release", json={"staff_name": STAFF})
        assert r.status_code == 401
    assert _snapshot(lab) == before


def test_closed_lab_says_when_it_opens_and_defers_offers(closed_lab: Lab) -> None:
    lab = closed_lab
    lab.script("join ann bracket 1h --name Ann", "join bob gear 30m --name Bob")
    assert lab.reopens is not None
    opens = lab.reopens.strftime(WHEN)
    with staff_client(lab.server) as web:
        page = web.get("/staff/printers").text
    hours = _text(page.split('<section class="card lab-hours"', 1)[1].split("</section>")[0])
    assert f"Closed now ; opens {opens}" in hours
    assert "No offer is made and no window runs until then." in hours
    printers = printers_on(page)
    assert {p[0] for p in printers.values()} == {"idle"}
    assert all("until the lab opens" in p[1] for p in printers.values())
    rows = queue_on(page)
    assert [(r["member"].split(" (")[0], r["position"], r["status"]) for r in rows] == [
        ("Ann", "1", "queued"), ("Bob", "2", "queued")]
    assert [r["eta"] for r in rows] == [opens, opens]  # two printers free at the opening
    status = lab.status()
    assert [_eta_of(status["1"]), _eta_of(status["2"])] == [opens, opens]
