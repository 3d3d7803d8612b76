"""The student's side over HTTP against ``printcore serve`` on the embedded default (no
Redis) with a real SMTP server: the status page's place in the print line as other jobs
are confirmed and printed, the confirmation link's expiry (and what to do once it has
expired), and the reminder email the server sends by itself before a link expires, with
a link that works. ``printcore reminders send`` (for cron) then finds nothing left to do.
"""

from __future__ import annotations

import html
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from sqlalchemy import update

from _live import STAFF, LiveServer, login, start_server, stop_server, submit, upload_sliced
from _smtp import Received, SmtpServer
from adapters.sql import make_engine
from adapters.sql.tables import jobs


@pytest.fixture()
def smtp() -> Iterator[SmtpServer]:
    server = SmtpServer()
    server.start()
    yield server
    server.stop()


@pytest.fixture()
def server(tmp_path: Path, smtp: SmtpServer) -> Iterator[LiveServer]:
    env = {**smtp.env, "PRINTCORE_REMINDER_CHECK_SECONDS": "1",
           "PRINTCORE_LAB_NAME": "Test Fab Lab"}
    live = start_server(tmp_path / "home", env, "sqlite")
    yield live
    stop_server(live)


def _mails(smtp: SmtpServer, job_id: int, kind: str) -> list[Received]:
    return [m for m in smtp.messages()
            if m.message["X-Printcore-Job"] == str(job_id)
            and m.message["X-Printcore-Kind"] == kind]


def _wait_mail(smtp: SmtpServer, job_id: int, kind: str, timeout: float = 20) -> Received:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = _mails(smtp, job_id, kind)
        if found:
            return found[-1]
        time.sleep(0.1)
    raise AssertionError(f"no {kind} email for job {job_id}: "
                         f"{[(m.message['X-Printcore-Job'], m.message['X-Printcore-Kind']) for m in smtp.messages()]}")


def _link(mail: Received, path: str) -> str:
    found = re.search(rf"(http://\S+/{path}/\S+)", mail.text)
    assert found, mail.text
    return found.group(1)


def _page_text(web: httpx.Client, url: str) -> str:
    page = web.get(url)
    assert page.status_code == 200, page.text
    body = re.sub(r"<[^>]+>", " ", page.text)
    return re.sub(r"\s+", " ", html.unescape(body))


def _approve(api: httpx.Client, headers: dict[str, str], job_id: int, sliced: Path) -> None:
    r = upload_sliced(api, headers, job_id, sliced)
    assert r.status_code == 201, r.text
    r = api.post(f"/jobs/{job_id}/approve", headers=headers, json={
        "staff_name": STAFF, "weight_g": 10.48, "time_hours": 0.9,
        "authoritative_file": r.json()["file"]["stored_name"]})
    assert r.status_code == 200, r.text


def _set_expiry(server: LiveServer, job_id: int, expires_at: datetime) -> None:
    """Time passing for one link: its stored expiry moves closer (the signed token keeps
    its own, later expiry, so the link itself still works)."""
    engine = make_engine(f"sqlite:///{server.home / 'printcore.db'}")
    try:
        with engine.begin() as conn:
            conn.execute(update(jobs).where(jobs.c.id == job_id)
                         .values(confirmation_expires_at=expires_at))
    finally:
        engine.dispose()


@pytest.mark.slow
def test_place_in_line_link_expiry_and_the_reminder(
    server: LiveServer, smtp: SmtpServer, fixtures_dir: Path,
) -> None:
    model = fixtures_dir / "models" / "Moon.stl"
    sliced = fixtures_dir / "sliced" / "wormdrive.gcode.3mf"
    with server.api() as api, httpx.Client(timeout=30) as web:
        ids = [submit(api, model, student_name=name, email=f"{name.split()[0].lower()}@u.edu")
               for name in ("Ann Able", "Bob Baker", "Cat Cole", "Dan Dee")]
        a, b, c, d = ids
        status = {i: _link(_wait_mail(smtp, i, "submitted"), "status") for i in ids}
        headers = login(api)
        for job_id in ids:
            _approve(api, headers, job_id, sliced)
        confirm = {i: _link(_wait_mail(smtp, i, "approved"), "confirm") for i in ids}

        # Pending: until when the link works, in the lab's zone, and "in 7 days".
        text = _page_text(web, status[a])
        assert "Your confirmation link works until" in text
        assert "(in 7 days)" in text and ("CST" in text or "CDT" in text)

        # Confirmed: B first, then A, so B is printed first.
        for job_id in (b, a):
            r = api.post("/confirm", json={"token": confirm[job_id].rsplit("/", 1)[1]})
            assert r.status_code == 200, r.text
        assert "Your print is next in line" in _page_text(web, status[b])
        assert "1 confirmed job is waiting to be printed ahead of yours" in _page_text(
            web, status[a])

        # B goes on a printer: A is next; B's page says it is being printed.
        r = api.post(f"/jobs/{b}/mark-printing", headers=headers,
                     json={"staff_name": STAFF, "printer": "X1C-1"})
        assert r.status_code == 200, r.text
        assert "Your print is next in line" in _page_text(web, status[a])
        assert "Your model is being printed now (on X1C-1)" in _page_text(web, status[b])

        # D's link has run out: the page says so and what to do; no reminder for it.
        _set_expiry(server, d, datetime.now(UTC) - timedelta(hours=3))
        text = _page_text(web, status[d])
        assert "Your confirmation link expired" in text and "(3 hours ago)" in text
        assert "Ask the lab to send you a new one" in text

        # C's link now expires in 10 hours: the server reminds the student by itself.
        _set_expiry(server, c, datetime.now(UTC) + timedelta(hours=10))
        reminder = _wait_mail(smtp, c, "confirmation_reminder", timeout=20)
        assert reminder.envelope_to == ["cat@u.edu"]
        assert "Reminder: confirm print request" in str(reminder.message["Subject"])
        assert "$3.00" in reminder.text and "10.48 g" in reminder.text
        link = _link(reminder, "confirm")
        page = web.get(link)
        assert page.status_code == 200 and "Confirm" in page.text, page.text
        time.sleep(2.5)  # two more rounds of the reminder loop: still one email each
        assert len(_mails(smtp, c, "confirmation_reminder")) == 1
        assert _mails(smtp, d, "confirmation_reminder") == []

        r = api.post("/confirm", json={"token": link.rsplit("/", 1)[1]})
        assert r.status_code == 200 and r.json()["status"] == "ready_to_print", r.text
        assert "1 confirmed job is waiting to be printed ahead of yours" in _page_text(
            web, status[c])
        history = api.get(f"/jobs/{c}", headers=headers).json()["events"]
        assert [e["kind"] for e in history].count("confirmation_reminder") == 1
        assert "reminder_nonce" not in api.get(f"/jobs/{c}", headers=headers).json()

    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("PRINTCORE_", "SMTP_", "REDIS_", "DATABASE_"))}
    env.update({"PRINTCORE_HOME": str(server.home), **smtp.env})
    done = subprocess.run([sys.executable, "-m", "entrypoints.cli", "reminders", "send"],
                          env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "No reminders due" in done.stdout
    bad = subprocess.run([sys.executable, "-m", "entrypoints.cli", "reminders", "send"],
                         env={**env, "PRINTCORE_CONFIRMATION_REMINDER_HOURS": "200"},
                         capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2
    assert "PRINTCORE_CONFIRMATION_REMINDER_HOURS=200 is not shorter" in bad.stderr
