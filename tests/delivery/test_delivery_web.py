"""Delivery seen from the running app: ``printcore serve`` as a subprocess, with a
``printcore worker`` on Redis (a permanent 550 shown to staff and retried from the
command line) or with no Redis at all (the embedded default delivering by itself)."""

from __future__ import annotations

import html
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from _delivery import RedisDb, WorkerProcess, open_container, rows, settings_env, wait_until

from _live import STAFF, LiveServer, login, start_server, stop_server, submit, upload_sliced
from _smtp import Received, SmtpServer

SETTING_PREFIXES = ("PRINTCORE_", "SMTP_", "REDIS_", "DATABASE_")
UNKNOWN = "550 5.1.1 <ghost@university.edu>: Recipient address rejected: User unknown"


@pytest.fixture()
def servers() -> Iterator[list[LiveServer]]:
    started: list[LiveServer] = []
    yield started
    for server in started:
        stop_server(server)


def serve(servers: list[LiveServer], home: Path, env: dict[str, str]) -> LiveServer:
    extra = {k: v for k, v in env.items() if k.startswith(SETTING_PREFIXES)}
    server = start_server(home, extra, "sqlite")
    servers.append(server)
    return server


def printcore(env: dict[str, str], *args: str) -> str:
    done = subprocess.run([sys.executable, "-m", "entrypoints.cli", *args], env=env,
                          cwd=env["PRINTCORE_HOME"], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


@contextmanager
def staff_session(server: LiveServer) -> Iterator[httpx.Client]:
    """A browser-less staff session: the login form, with its CSRF token."""
    with httpx.Client(base_url=server.url, timeout=30) as web:
        page = web.get("/staff/login")
        csrf = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
        assert csrf, page.text
        r = web.post("/staff/login", data={"csrf_token": csrf.group(1),
                                           "workstation": "Desk 1",
                                           "password": "correct horse battery"})
        assert r.status_code == 303, r.text
        yield web


def test_a_550_is_shown_to_staff_and_retried_from_the_command_line(
    home: Path, smtp: SmtpServer, redis_db: RedisDb, database: str,
    workers: list[WorkerProcess], servers: list[LiveServer], fixtures_dir: Path,
) -> None:
    """The SMTP server answers the student's address with ``550 5.1.1 ... User unknown``.
    The worker marks the row failed with that text after one attempt (no retry); the job
    page shows it in the messages table, the dashboard flags the job, and
    ``printcore outbox list --status failed`` lists it. The mailbox is fixed;
    ``printcore outbox retry ID`` puts it back on the queue, the worker sends it once, and
    the job's history records the retry with the previous error.

    Bad inputs tried: ``outbox list --status bogus`` (argparse refuses, exit 2),
    ``outbox retry`` of an unknown id and of an already-sent row (refused, nothing sent).
    """
    smtp.refuse["ghost@university.edu"] = UNKNOWN
    env = settings_env(home, smtp, redis_db.url, database)
    server = serve(servers, home, env)
    env["PRINTCORE_BASE_URL"] = server.url  # the worker renders the links
    worker = WorkerProcess(env)
    workers.append(worker)
    worker.start()
    with server.api() as api:
        job_id = submit(api, fixtures_dir / "models" / "Moon.stl", email="ghost@university.edu")
    with open_container(env) as container:
        row = wait_until(lambda: rows(container, status="failed"), 20, what="a failed row")[0]
        assert row.subject_id == job_id and row.kind == "submitted"
        assert row.attempts == 1
        assert row.last_error == f"The SMTP server refused the recipient: {UNKNOWN}"
        assert smtp.messages() == []

        with staff_session(server) as web:
            page = web.get(f"/staff/jobs/{job_id}")
            assert page.status_code == 200
            line = re.search(rf'<tr class="message message-failed" data-message="{row.id}">'
                             r".*?</tr>", page.text, re.S)
            assert line, page.text
            assert html.escape(UNKNOWN, quote=False) in line.group(0) or \
                html.escape(UNKNOWN) in line.group(0)
            dashboard = web.get("/staff")
            assert f'data-failed-job="{job_id}"' in dashboard.text

        listed = printcore(env, "outbox", "list", "--status", "failed")
        assert re.search(rf"^\s*{row.id}\s+failed", listed, re.M), listed
        assert UNKNOWN in listed
        bad = subprocess.run([sys.executable, "-m", "entrypoints.cli", "outbox", "list",
                              "--status", "bogus"], env=env, capture_output=True, text=True,
                             timeout=60)
        assert bad.returncode == 2 and "invalid choice" in bad.stderr
        missing = subprocess.run([sys.executable, "-m", "entrypoints.cli", "outbox", "retry",
                                  "99999"], env=env, capture_output=True, text=True,
                                 timeout=60)
        assert missing.returncode != 0 and "99999" in missing.stdout + missing.stderr

        smtp.refuse.clear()
        out = printcore(env, "outbox", "retry", str(row.id), "--staff", STAFF)
        assert "will be sent again now" in out
        got = smtp.wait_for(1, timeout=20)
        assert got[0].envelope_to == ["ghost@university.edu"]
        wait_until(lambda: container.outbox.get(row.id).status == "sent", 10,
                   what="the row marked sent")
        again = subprocess.run([sys.executable, "-m", "entrypoints.cli", "outbox", "retry",
                                str(row.id)], env=env, capture_output=True, text=True,
                               timeout=60)
        assert again.returncode != 0 and "already delivered" in again.stdout + again.stderr
        time.sleep(1.5)
        assert len(smtp.messages()) == 1
        retried = [e for e in container.requests.history(job_id) if e.kind == "message_retried"]
        assert len(retried) == 1 and retried[0].details["previous_error"] == row.last_error
        assert retried[0].actor.name == STAFF
        with staff_session(server) as web:
            page = web.get(f"/staff/jobs/{job_id}").text
            assert f'<tr class="message message-sent" data-message="{row.id}">' in page
            assert f'data-failed-job="{job_id}"' not in web.get("/staff").text


# --- the embedded default -----------------------------------------------------------------

SUBJECTS = {
    "submitted": "[Test Fab Lab] We received your print request #{id}",
    "approved": "[Test Fab Lab] Please confirm print request #{id}: $3.00",
    "confirmed": "[Test Fab Lab] Print request #{id} confirmed",
    "completed": "[Test Fab Lab] Print request #{id} is ready for pickup",
    "payment_receipt": "[Test Fab Lab] Receipt for print #{id}",
    "rejected": "[Test Fab Lab] Print request #{id} could not be accepted",
}


def _kind(r: Received) -> str:
    return str(r.message["X-Printcore-Kind"])


def _links(r: Received, base: str) -> set[str]:
    """Links to the app in the text body; the HTML body must carry the same ones."""
    in_text = set(re.findall(re.escape(base) + r"/[^\s\"<>]+", r.text))
    in_html = {html.unescape(u) for u in re.findall(r'href="([^"]+)"', r.html)}
    assert in_text and in_text <= in_html, (in_text, in_html)
    return in_text


def test_embedded_default_delivers_every_message_type_by_smtp(
    home: Path, smtp: SmtpServer, database: str, servers: list[LiveServer],
    fixtures_dir: Path,
) -> None:
    """No REDIS_URL, PRINTCORE_MAIL_BACKEND=smtp: the web process itself delivers. Two
    jobs over HTTP produce every message type (submitted, approved, confirmed, completed,
    payment_receipt; submitted, rejected). Each arrives once, to the student (envelope and
    To), with the expected subject, a text and an HTML body, and links that work against
    the running app: every status link answers 200 and names the job; the confirmation
    link opens the confirm page (200), and its form confirms the job.

    Bad inputs tried: a student name with HTML (``<b>`` and ``&``) is escaped in the HTML
    body and verbatim in the text; a custom rejection reason carrying
    ``\\r\\nBcc: evil@example.com`` stays in the body (no Bcc header, one envelope
    recipient); the confirmation link used twice shows "already confirmed", changing
    nothing.
    """
    env = settings_env(home, smtp, None, database, PRINTCORE_LAB_ADDRESS="Room 101, Eng. Hall",
                       PRINTCORE_PICKUP_HOURS="Mon-Fri 10:00-16:00")
    server = serve(servers, home, env)
    base = server.url
    name = "Zoë <b>O'Hara</b> & Co"
    with server.api() as api:
        headers = login(api)
        job = submit(api, fixtures_dir / "models" / "Moon.stl", student_name=name)
        r = upload_sliced(api, headers, job, fixtures_dir / "sliced" / "square_ring_plate_1.gcode")
        assert r.status_code == 201, r.text
        stored = r.json()["file"]["stored_name"]
        r = api.post(f"/jobs/{job}/approve", headers=headers,
                     json={"staff_name": STAFF, "weight_g": 10, "time_hours": 1,
                           "authoritative_file": stored})
        assert r.status_code == 200, r.text
        approved = wait_until(lambda: [m for m in smtp.messages() if _kind(m) == "approved"],
                              20, what="the approval email")[0]
        confirm_links = [u for u in _links(approved, base) if "/confirm/" in u]
        assert len(confirm_links) == 1
        with httpx.Client(timeout=30) as web:
            page = web.get(confirm_links[0])
            assert page.status_code == 200 and "$3.00" in page.text
            csrf = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
            assert csrf
            done = web.post(confirm_links[0], data={"csrf_token": csrf.group(1)})
            assert done.status_code == 303
            assert web.get(confirm_links[0]).status_code == 200  # "already confirmed"
        assert api.get(f"/jobs/{job}", headers=headers).json()["status"] == "ready_to_print"
        for path, body in (("mark-printing", {"printer": "X1C-1"}), ("mark-complete", {}),
                           ("payment", {"grams": 10, "txn_no": "TX-9",
                                        "picked_up_by": "Zoë"})):
            r = api.post(f"/jobs/{job}/{path}", headers=headers, json={"staff_name": STAFF,
                                                                       **body})
            assert r.status_code == 200, (path, r.text)

        other = submit(api, fixtures_dir / "models" / "Moon.stl", email="rex@university.edu",
                       student_name="Rex Roe")
        r = api.post(f"/jobs/{other}/reject", headers=headers,
                     json={"staff_name": STAFF, "reasons": ["Walls or details are too thin "
                                                            "to print."],
                           "custom_reason": "Scale it up.\r\nBcc: evil@example.com"})
        assert r.status_code == 200, r.text

    got = smtp.wait_for(7, timeout=30)
    time.sleep(1.5)
    assert len(smtp.messages()) == 7
    expected = {(job, k) for k in ("submitted", "approved", "confirmed", "completed",
                                   "payment_receipt")} | {(other, "submitted"),
                                                          (other, "rejected")}
    assert {(int(r.message["X-Printcore-Job"]), _kind(r)) for r in got} == expected
    assert len({r.message["Message-ID"] for r in got}) == 7
    with httpx.Client(timeout=30) as web:
        for r in got:
            job_id = int(r.message["X-Printcore-Job"])
            student = "jane.doe@university.edu" if job_id == job else "rex@university.edu"
            assert r.envelope_to == [student] and r.message["To"] == student
            assert r.message["Subject"] == SUBJECTS[_kind(r)].format(id=job_id)
            assert r.message["From"] == "Fab Lab <fablab@university.edu>"
            assert r.message["Bcc"] is None
            assert r.text.strip() and r.html.strip()
            assert "Room 101, Eng. Hall" in r.text and "Mon-Fri 10:00-16:00" in r.text
            assert "Room 101, Eng. Hall" in r.html
            status_links = [u for u in _links(r, base) if "/status/" in u]
            assert len(status_links) == 1, r.text
            page = web.get(status_links[0])
            assert page.status_code == 200 and f"#{job_id}" in page.text
            if job_id == job:
                assert name in r.text
                assert "&lt;b&gt;O" in r.html and "<b>O" not in r.html
                assert name in html.unescape(r.html)
    by_kind = {(int(r.message["X-Printcore-Job"]), _kind(r)): r for r in got}
    rejected = by_kind[(other, "rejected")]
    assert "Walls or details are too thin to print." in rejected.text
    assert "Bcc: evil@example.com" in rejected.text  # body text, not a header
    assert "$3.00" in by_kind[(job, "payment_receipt")].text
    assert "TX-9" in by_kind[(job, "payment_receipt")].text
    assert "$3.00" in by_kind[(job, "approved")].text
