"""Soft locks over HTTP (issue 12, "Soft locks"), on a real server per database: the
``POST``/``DELETE /api/v1/jobs/{id}/lock`` API with two workstations' bearer tokens, the
job JSON's ``lock``, the plain form routes, and two Chromium staff browsers: a lock taken
in one shows live in the other, which takes over deliberately, and the first is told it
lost the lock.

Bad inputs tried (each answers 4xx with per-field messages and records no lock event):
no login (401), a cookie call without the CSRF header (403), an unknown job and a
huge id (404), a missing, a non-text and an unknown staff name, an unknown action, a
``take_over`` that is not a boolean, a body that is not JSON, a ``workstation`` other than
the login's (422), releasing someone else's lock (409 with the holder).
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from _live import PASSWORD, STAFF, LiveServer, login, submit
from _support import FIXTURES, service_missing

MODEL = FIXTURES / "models" / "Moon.stl"


@pytest.fixture(scope="module")
def desks(live_server: LiveServer) -> tuple[dict[str, str], dict[str, str]]:
    with live_server.api() as api:
        return login(api, "Front desk"), login(api, "Back office")


@pytest.fixture
def api(live_server: LiveServer) -> Iterator[httpx.Client]:
    with live_server.api() as client:
        yield client


def lock_kinds(api: httpx.Client, headers: dict[str, str], job_id: int) -> list[str]:
    r = api.get(f"/jobs/{job_id}", headers=headers)
    assert r.status_code == 200, r.text
    return [e["kind"] for e in r.json()["events"] if "lock" in e["kind"]]


def test_take_heartbeat_take_over_and_release(
        live_server: LiveServer, api: httpx.Client,
        desks: tuple[dict[str, str], dict[str, str]]) -> None:
    front, back = desks
    job_id = submit(api, MODEL)
    assert api.get(f"/jobs/{job_id}", headers=front).json()["lock"] is None

    before = datetime.now(UTC).replace(microsecond=0)
    r = api.post(f"/jobs/{job_id}/lock", headers=front,
                 json={"staff_name": STAFF, "action": "approve"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["outcome"] == "taken"
    lock = body["lock"]
    assert (lock["staff_name"], lock["workstation"], lock["action"], lock["doing"]) == (
        STAFF, "Front desk", "approve", "approving")
    assert lock["message"].startswith(f"{STAFF} at Front desk is approving this job (until ")
    assert datetime.fromisoformat(lock["expires_at"]) > before
    assert 100 <= lock["expires_in_seconds"] <= 120
    # The job JSON shows it, in the detail and in lists.
    assert api.get(f"/jobs/{job_id}", headers=back).json()["lock"]["workstation"] == "Front desk"
    listed = api.get("/jobs", headers=back, params={"status": "uploaded", "limit": 1000}).json()
    assert [j["lock"]["workstation"] for j in listed["jobs"] if j["id"] == job_id] == [
        "Front desk"]

    # The heartbeat: the same desk again, no event.
    r = api.post(f"/jobs/{job_id}/lock", headers=front,
                 json={"staff_name": STAFF, "action": "approve"})
    assert r.status_code == 200 and r.json()["outcome"] == "refreshed"
    assert lock_kinds(api, front, job_id) == ["lock"]

    # The other desk is told who holds it.
    r = api.post(f"/jobs/{job_id}/lock", headers=back, json={"staff_name": STAFF,
                                                             "action": "reject"})
    assert r.status_code == 409, r.text
    assert r.json()["error"]["code"] == "lock_held"
    assert r.json()["lock"]["workstation"] == "Front desk"
    assert "Front desk is approving this job" in r.json()["error"]["message"]
    r = api.request("DELETE", f"/jobs/{job_id}/lock", headers=back, json={"staff_name": STAFF})
    assert r.status_code == 409 and r.json()["lock"]["workstation"] == "Front desk"

    # ... and takes over deliberately; the front desk's heartbeat now fails.
    r = api.post(f"/jobs/{job_id}/lock", headers=back,
                 json={"staff_name": STAFF, "action": "reject", "take_over": True})
    assert r.status_code == 200 and r.json()["outcome"] == "taken_over", r.text
    r = api.post(f"/jobs/{job_id}/lock", headers=front,
                 json={"staff_name": STAFF, "action": "approve"})
    assert r.status_code == 409 and r.json()["lock"]["workstation"] == "Back office"

    # The holder releases (name as a query parameter, no body); again is a no-op.
    r = api.delete(f"/jobs/{job_id}/lock", headers=back, params={"staff_name": STAFF})
    assert r.status_code == 200, r.text
    assert r.json()["lock"] is None and r.json()["released"]["workstation"] == "Back office"
    r = api.delete(f"/jobs/{job_id}/lock", headers=back, params={"staff_name": STAFF})
    assert r.status_code == 200 and r.json()["released"] is None
    assert api.get(f"/jobs/{job_id}", headers=front).json()["lock"] is None
    assert lock_kinds(api, front, job_id) == ["lock", "lock_taken_over", "unlock"]


@pytest.mark.parametrize(("body", "field"), [
    ({}, "staff_name"),
    ({"staff_name": "   "}, "staff_name"),
    ({"staff_name": 42}, "staff_name"),
    ({"staff_name": "Nobody Here"}, "staff_name"),
    ({"staff_name": "x" * 81}, "staff_name"),
    ({"staff_name": STAFF, "action": "steal"}, "action"),
    ({"staff_name": STAFF, "action": 7}, "action"),
    ({"staff_name": STAFF, "take_over": "yes"}, "take_over"),
    ({"staff_name": STAFF, "workstation": "Back office"}, "workstation"),
])
def test_bad_bodies_are_422_with_the_field(
        api: httpx.Client, desks: tuple[dict[str, str], dict[str, str]],
        body: dict[str, object], field: str) -> None:
    front, _ = desks
    job_id = submit(api, MODEL)
    r = api.post(f"/jobs/{job_id}/lock", headers=front, json=body)
    assert r.status_code == 422, r.text
    assert field in r.json()["error"]["fields"]
    assert lock_kinds(api, front, job_id) == []
    assert api.get(f"/jobs/{job_id}", headers=front).json()["lock"] is None


def test_other_bad_requests(live_server: LiveServer, api: httpx.Client,
                            desks: tuple[dict[str, str], dict[str, str]]) -> None:
    front, _ = desks
    job_id = submit(api, MODEL)
    good = {"staff_name": STAFF}
    assert api.post(f"/jobs/{job_id}/lock", json=good).status_code == 401
    assert api.post("/jobs/999999/lock", headers=front, json=good).status_code == 404
    assert api.post("/jobs/99999999999999999999/lock", headers=front,
                    json=good).status_code == 404
    assert api.delete("/jobs/999999/lock", headers=front,
                      params=good).status_code == 404
    r = api.post(f"/jobs/{job_id}/lock", headers={**front, "Content-Type": "application/json"},
                 content=b"{not json")
    assert r.status_code == 422
    r = api.post(f"/jobs/{job_id}/lock", headers=front, json=["staff_name"])
    assert r.status_code == 422
    # A cookie session calling without the CSRF header.
    with httpx.Client(base_url=live_server.url, timeout=60) as web:
        r = web.post("/api/v1/auth/login", json={"workstation": "Cookie desk",
                                                 "password": PASSWORD})
        assert r.status_code == 200
        r = web.post(f"/api/v1/jobs/{job_id}/lock", json=good)
        assert r.status_code == 403, r.text
        csrf = web.post("/api/v1/auth/login", json={"workstation": "Cookie desk",
                                                    "password": PASSWORD}).json()["csrf_token"]
        r = web.post(f"/api/v1/jobs/{job_id}/lock", json=good, headers={"X-CSRF-Token": csrf})
        assert r.status_code == 200 and r.json()["lock"]["workstation"] == "Cookie desk"
    assert lock_kinds(api, front, job_id) == ["lock"]


def test_plain_form_take_over_without_javascript(
        live_server: LiveServer, api: httpx.Client,
        desks: tuple[dict[str, str], dict[str, str]]) -> None:
    front, _ = desks
    job_id = submit(api, MODEL)
    assert api.post(f"/jobs/{job_id}/lock", headers=front,
                    json={"staff_name": STAFF, "action": "approve"}).status_code == 200
    with httpx.Client(base_url=live_server.url, timeout=60) as web:
        page = web.get("/staff/login").text
        csrf = re.search(r'name="csrf_token" value="([^"]+)"', page)
        assert csrf
        r = web.post("/staff/login", data={"csrf_token": csrf.group(1),
                                           "workstation": "Forms desk", "password": PASSWORD})
        assert r.status_code == 303
        page = web.get(f"/staff/jobs/{job_id}").text
        csrf = re.search(r'name="csrf_token" value="([^"]+)"', page)  # the login's own
        assert csrf
        banner = re.search(r'<div id="job-lock".*?</div>\s*</div>', page, re.S)
        assert banner and f"{STAFF} at Front desk is approving this job" in banner.group(0)
        assert 'name="take_over" value="1"' in banner.group(0)
        # Without a name, and without the CSRF token: refused, the lock stays.
        r = web.post(f"/staff/jobs/{job_id}/lock",
                     data={"csrf_token": csrf.group(1), "action": "approve", "take_over": "1"})
        assert r.status_code == 303
        assert "staff_name is required" in web.get(f"/staff/jobs/{job_id}").text  # the flash
        r = web.post(f"/staff/jobs/{job_id}/lock", data={"action": "approve",
                                                         "staff_name": STAFF})
        assert r.status_code == 303
        assert api.get(f"/jobs/{job_id}", headers=front).json()["lock"][
            "workstation"] == "Front desk"
        r = web.post(f"/staff/jobs/{job_id}/lock", data={
            "csrf_token": csrf.group(1), "action": "approve", "take_over": "1",
            "staff_name": STAFF})
        assert r.status_code == 303 and r.headers["location"].endswith("#action-approve")
        page = web.get(f"/staff/jobs/{job_id}").text
        assert "You took over this job&#39;s lock" in page or "You took over" in page
        assert re.search(r'<details class="action" id="action-approve"[^>]* open>', page)
        assert api.get(f"/jobs/{job_id}", headers=front).json()["lock"][
            "workstation"] == "Forms desk"
        r = web.post(f"/staff/jobs/{job_id}/unlock",
                     data={"csrf_token": csrf.group(1), "staff_name": STAFF})
        assert r.status_code == 303
    assert api.get(f"/jobs/{job_id}", headers=front).json()["lock"] is None
    r = httpx.post(f"{live_server.url}/staff/jobs/999999/lock", data={}, timeout=30)
    assert r.status_code == 303  # not logged in: to the login page
    assert lock_kinds(api, front, job_id) == ["lock", "lock_taken_over", "unlock"]


@pytest.mark.parametrize("live_server", ["sqlite"], indirect=True)
def test_two_browsers_see_each_others_lock_live(live_server: LiveServer) -> None:
    from playwright.sync_api import expect, sync_playwright

    chromium = Path("/usr/bin/chromium")
    if not chromium.exists():
        service_missing(f"Chromium not found at {chromium}")
    with live_server.api() as api:
        job_id = submit(api, MODEL, student_name=f"Lena Lock{uuid.uuid4().hex[:6]}")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(chromium), headless=True,
                                             args=["--no-sandbox"])
        try:
            pages = []
            for desk in ("Front desk", "Back office"):
                context = browser.new_context(viewport={"width": 1200, "height": 900})
                page = context.new_page()
                page.on("dialog", lambda dialog: dialog.accept())
                page.goto(live_server.url + "/staff/login")
                page.fill("input[name=workstation]", desk)
                page.fill("input[name=password]", PASSWORD)
                page.click("form[action^='/staff/login'] button[type=submit]")
                page.goto(f"{live_server.url}/staff/jobs/{job_id}")
                page.select_option("#whoami", STAFF)
                if page.locator("#whoami-form button[type=submit]").is_visible():
                    page.click("#whoami-form button[type=submit]")
                page.wait_for_url(re.compile(rf"/staff/jobs/{job_id}"))
                expect(page.locator("#live-status")).to_contain_text("Live", timeout=5000)
                pages.append(page)
            front, back = pages
            back.evaluate("window.__notReloaded = true")

            front.click("#action-approve > summary")
            expect(front.locator("#action-approve .lock-note")).to_contain_text(
                "You hold this job's lock", timeout=3000)
            expect(back.locator("#job-lock")).to_contain_text(
                f"{STAFF} at Front desk is approving this job", timeout=3000)
            assert back.evaluate("window.__notReloaded === true")  # arrived live

            back.click("#job-lock button.take-over")  # confirms, then a plain post
            expect(back.locator("#action-approve")).to_have_attribute("open", "", timeout=3000)
            expect(back.locator(".flash")).to_contain_text("You took over")
            expect(front.locator("#action-approve .lock-note")).to_contain_text(
                f"You lost the lock: {STAFF} at Back office is approving this job",
                timeout=3000)
            expect(front.locator("#job-lock")).to_contain_text(
                f"{STAFF} at Back office is approving this job", timeout=3000)

            # Closing the dialog gives the lock back: the front desk's banner goes.
            back.click("#action-approve > summary")
            expect(front.locator("#job-lock .lock-banner")).to_have_count(0, timeout=3000)
        finally:
            browser.close()
    with live_server.api() as api:
        headers = login(api, "Check desk")
        assert api.get(f"/jobs/{job_id}", headers=headers).json()["lock"] is None
        assert lock_kinds(api, headers, job_id) == ["lock", "lock_taken_over", "unlock"]
