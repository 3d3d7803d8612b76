"""Messages on the staff pages, against a real server that delivers by itself (no Redis)
to a real SMTP server: the job page lists each email with its delivery state, the
dashboard flags a job whose email failed permanently, staff send it again, and staff
resend a confirmation link (the old link stops working).

Bad inputs tried: a mailbox the server refuses (550), retrying without choosing a staff
name, retrying a message of another job, resending the link of a job that is not
pending, a forged CSRF token.
"""

from __future__ import annotations

import html
import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from _live import (
    PASSWORD,
    STAFF,
    LiveServer,
    login,
    start_server,
    stop_server,
    submit,
    upload_sliced,
)
from _smtp import SmtpServer

STUDENT = "jane.doe@university.edu"


@pytest.fixture(scope="module")
def smtp() -> Iterator[SmtpServer]:
    server = SmtpServer()
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def server(smtp: SmtpServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    live = start_server(tmp_path_factory.mktemp("messages"),
                        {**smtp.env, "PRINTCORE_OUTBOX_RETRY_SECONDS": "1",
                         "PRINTCORE_LAB_ADDRESS": "Engineering Hall 104"}, "sqlite")
    yield live
    stop_server(live)


@contextmanager
def staff_web(server: LiveServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=60) as web:
        r = web.post("/staff/login?next=/staff",
                     data={"csrf_token": _csrf(web.get("/staff/login").text),
                           "workstation": "Front desk", "password": PASSWORD})
        assert r.status_code == 303, r.text
        yield web


def _csrf(page: str) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert match, page
    return match.group(1)


def _rows(page: str) -> dict[int, str]:
    """Message id → the visible text of its row on the job page."""
    out = {}
    for m in re.finditer(r'<tr class="message message-(\w+)" data-message="(\d+)">(.*?)</tr>',
                         page, re.S):
        text = " ".join(html.unescape(re.sub(r"<[^>]+>", " ", m.group(3))).split())
        out[int(m.group(2))] = f"{m.group(1)}: {text}"
    return out


def _wait_rows(web: httpx.Client, job_id: int, pattern: str, timeout: float = 20) -> dict[int, str]:
    deadline = time.monotonic() + timeout
    while True:
        page = web.get(f"/staff/jobs/{job_id}")
        assert page.status_code == 200, page.text[-3000:]
        rows = _rows(page.text)
        if any(re.search(pattern, r) for r in rows.values()):
            return rows
        if time.monotonic() > deadline:
            raise AssertionError(f"no message row matching {pattern!r}: {rows}")
        time.sleep(0.1)


def test_a_refused_email_is_flagged_shown_and_sent_again(
    server: LiveServer, smtp: SmtpServer, fixtures_dir: Path,
) -> None:
    address = "no.such.student@university.edu"
    smtp.refuse[address] = "550 5.1.1 <no.such.student@university.edu>: User unknown"
    before = len(smtp.messages())
    with server.api() as api:
        job_id = submit(api, fixtures_dir / "models" / "rear_case.stl", email=address)
    with staff_web(server) as web:
        rows = _wait_rows(web, job_id, r"^failed")
        [(message_id, text)] = rows.items()
        assert "submitted" in text and address in text
        assert "The SMTP server refused the recipient: 550 5.1.1" in text and "User unknown" in text
        dashboard = web.get("/staff").text
        assert f'data-failed-job="{job_id}"' in dashboard
        assert "Emails that could not be delivered" in dashboard

        page = web.get(f"/staff/jobs/{job_id}").text
        retry = f"/staff/jobs/{job_id}/messages/{message_id}/retry"
        r = web.post(retry, data={"csrf_token": "forged", "staff_name": STAFF})
        assert r.status_code == 403 and "reload the page" in r.text
        r = web.post(retry, data={"csrf_token": _csrf(page), "staff_name": ""})
        assert r.status_code == 422 and "Choose your name" in r.text
        r = web.post(f"/staff/jobs/{job_id + 1000}/messages/{message_id}/retry",
                     data={"csrf_token": _csrf(page), "staff_name": STAFF})
        assert r.status_code == 404
        assert _rows(web.get(f"/staff/jobs/{job_id}").text)[message_id].startswith("failed")

        del smtp.refuse[address]  # the student fixed their mailbox (or staff fixed a typo)
        r = web.post(retry, data={"csrf_token": _csrf(page), "staff_name": STAFF})
        assert r.status_code == 303
        rows = _wait_rows(web, job_id, r"^sent")
        assert rows[message_id].startswith("sent")
        page = web.get(f"/staff/jobs/{job_id}").text
        assert "Email sent again" in page and f'data-failed-job="{job_id}"' not in web.get("/staff").text
    got = [m for m in smtp.messages()[before:] if m.envelope_to == [address]]
    assert len(got) == 1 and got[0].message["X-Printcore-Kind"] == "submitted"


def _approval_token(smtp: SmtpServer, job_id: int, count: int) -> str:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        approvals = [m for m in smtp.messages()
                     if m.message["X-Printcore-Job"] == str(job_id)
                     and m.message["X-Printcore-Kind"] == "approved"]
        if len(approvals) >= count:
            match = re.search(r"/confirm/(\S+)", approvals[count - 1].text)
            assert match
            return match.group(1)
        time.sleep(0.05)
    raise AssertionError(f"fewer than {count} approval emails for job {job_id}")


def test_staff_resend_the_confirmation_link_and_the_old_one_stops_working(
    server: LiveServer, smtp: SmtpServer, fixtures_dir: Path,
) -> None:
    with server.api() as api:
        job_id = submit(api, fixtures_dir / "models" / "rear_case.stl")
        headers = login(api)
        r = upload_sliced(api, headers, job_id, fixtures_dir / "sliced" / "wormdrive.gcode.3mf")
        assert r.status_code == 201, r.text
        r = api.post(f"/jobs/{job_id}/approve", headers=headers, json={
            "staff_name": STAFF, "weight_g": 10.48, "time_hours": 1,
            "authoritative_file": r.json()["file"]["stored_name"]})
        assert r.status_code == 200, r.text
        old = _approval_token(smtp, job_id, 1)
        with staff_web(server) as web:
            page = web.get(f"/staff/jobs/{job_id}").text
            assert "Resend confirmation link" in page
            r = web.post(f"/staff/jobs/{job_id}/resend_confirmation",
                         data={"csrf_token": _csrf(page), "staff_name": STAFF})
            assert r.status_code == 303
            new = _approval_token(smtp, job_id, 2)
            assert new != old
            page = web.get(f"/staff/jobs/{job_id}").text
            assert "Confirmation link resent" in page and "A new confirmation link was emailed" in page
            assert len([r for r in _rows(page).values() if "approved" in r]) == 2
        r = api.post("/confirm", json={"token": old})
        assert r.status_code == 400 and "token_used" in r.text and "already used" in r.text
        r = api.post("/confirm", json={"token": new})
        assert r.status_code == 200 and r.json()["status"] == "ready_to_print"
        with staff_web(server) as web:
            page = web.get(f"/staff/jobs/{job_id}").text
            assert "Resend confirmation link" not in page
            r = web.post(f"/staff/jobs/{job_id}/resend_confirmation",
                         data={"csrf_token": _csrf(page), "staff_name": STAFF})
            assert r.status_code == 409 and "Only a job waiting" in html.unescape(r.text)


def test_the_api_lists_and_retries_a_job_s_messages(
    server: LiveServer, smtp: SmtpServer, fixtures_dir: Path,
) -> None:
    address = "gone.student@university.edu"
    smtp.refuse[address] = "550 5.1.1 mailbox unavailable"
    with server.api() as api:
        job_id = submit(api, fixtures_dir / "models" / "rear_case.stl", email=address)
        assert api.get(f"/jobs/{job_id}/messages").status_code == 401
        headers = login(api)
        deadline = time.monotonic() + 20
        while True:
            r = api.get(f"/jobs/{job_id}/messages", headers=headers)
            assert r.status_code == 200, r.text
            [message] = r.json()["messages"]
            if message["status"] == "failed" or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        assert (message["kind"], message["recipient"], message["status"]) == (
            "submitted", address, "failed")
        assert message["last_error"] == ("The SMTP server refused the recipient: 550 5.1.1 "
                                         "mailbox unavailable")
        assert api.get("/jobs/99999/messages", headers=headers).status_code == 404
        r = api.post(f"/messages/{message['id']}/retry", headers=headers,
                     json={"staff_name": "Nobody Here"})
        assert r.status_code == 422 and "staff list" in r.text
        r = api.post("/messages/99999/retry", headers=headers, json={"staff_name": STAFF})
        assert r.status_code == 404
        r = api.post(f"/jobs/{job_id}/resend-confirmation", headers=headers,
                     json={"staff_name": STAFF})
        assert r.status_code == 409 and "Only a job waiting" in r.text
        del smtp.refuse[address]
        r = api.post(f"/messages/{message['id']}/retry", headers=headers,
                     json={"staff_name": STAFF})
        assert r.status_code == 200 and r.json()["status"] == "pending"
        deadline = time.monotonic() + 20
        while api.get(f"/jobs/{job_id}/messages", headers=headers).json()["messages"][0][
                "status"] != "sent":
            assert time.monotonic() < deadline, "the retried message was not sent"
            time.sleep(0.1)
        r = api.post(f"/messages/{message['id']}/retry", headers=headers,
                     json={"staff_name": STAFF})
        assert r.status_code == 422 and "already delivered" in r.text


def test_a_failed_email_sent_again_goes_to_the_corrected_address(
    server: LiveServer, smtp: SmtpServer, fixtures_dir: Path,
) -> None:
    """The student typo'd their address; the mail server refuses it; staff correct the
    email on the job (PATCH /api/v1/jobs/{id}) and send the message again from the job
    page: it goes to the corrected address, and the history says so (both addresses)."""
    typo = "jane.doe@univeristy.edu"
    fixed = "jane.doe.fixed@university.edu"
    smtp.refuse[typo] = "550 5.1.1 <jane.doe@univeristy.edu>: domain not found"
    with server.api() as api:
        job_id = submit(api, fixtures_dir / "models" / "rear_case.stl", email=typo)
        headers = login(api)
        with staff_web(server) as web:
            [(message_id, _)] = _wait_rows(web, job_id, r"^failed").items()
            version = api.get(f"/jobs/{job_id}", headers=headers).json()["version"]
            r = api.patch(f"/jobs/{job_id}", headers=headers,
                          json={"staff_name": STAFF, "version": version, "email": fixed})
            assert r.status_code == 200, r.text
            page = web.get(f"/staff/jobs/{job_id}").text
            r = web.post(f"/staff/jobs/{job_id}/messages/{message_id}/retry",
                         data={"csrf_token": _csrf(page), "staff_name": STAFF})
            assert r.status_code == 303
            rows = _wait_rows(web, job_id, r"^sent")
            assert fixed in rows[message_id]
        events = api.get(f"/jobs/{job_id}", headers=headers).json()["events"]
        [retried] = [e for e in events if e["kind"] == "message_retried"]
        assert retried["details"]["previous_recipient"] == typo
        assert retried["details"]["recipient"] == fixed
    got = [m for m in smtp.messages() if m.message["X-Printcore-Job"] == str(job_id)]
    assert [m.envelope_to for m in got] == [[fixed]]
    assert got[0].message["To"] == fixed or fixed in str(got[0].message["To"])
