"""Staff notes and corrections of a request's details over HTTP (issue 12, "Correct and
annotate"), on a real server per database (SQLite, PostgreSQL): ``PATCH
/api/v1/jobs/{id}/notes`` and ``PATCH /api/v1/jobs/{id}``, the job page's plain form
posts, the dashboard card's note line and the history's old → new; and one browser
(Chromium) correcting a typo'd email and adding a note.

Bad inputs tried (each answers with per-field messages and records no event): no login
(401), an unknown job (404), a stale version (409), a missing version on PATCH
/jobs/{id} (422), an unknown field, an email without a valid domain, notes of 2001
characters, notes with NUL, notes that are not text, a missing ``notes``, nothing
changed, a staff name not on the list; on the page: a bad email (422, the form again with
the field marked and the typed values kept), a post without its CSRF token (403).
"""

from __future__ import annotations

import html
import re
import uuid
from collections.abc import Iterator
from pathlib import Path

import attrs
import httpx
import pytest

from _live import PASSWORD, STAFF, LiveServer, login, submit
from _support import FIXTURES, service_missing

MODEL = FIXTURES / "models" / "Moon.stl"
CHROMIUM = Path("/usr/bin/chromium")
#: The right edge (px) of the widest element inside the selector's element.
WIDEST = """(sel) => Math.max(...[document.querySelector(sel),
    ...document.querySelectorAll(sel + ' *')].map(e => e.getBoundingClientRect().right))"""
WIDE = """([sel, width]) => [...document.querySelectorAll(sel + ' *')].filter(
    e => e.getBoundingClientRect().right > width).map(e => e.outerHTML.slice(0, 120))"""


@attrs.frozen
class Lab:
    server: LiveServer
    headers: dict[str, str]
    tag: str


@pytest.fixture(scope="module")
def lab(live_server: LiveServer) -> Lab:
    with live_server.api() as api:
        return Lab(live_server, login(api, "Details desk"), uuid.uuid4().hex[:8])


@pytest.fixture
def api(lab: Lab) -> Iterator[httpx.Client]:
    with lab.server.api() as client:
        client.headers.update(lab.headers)
        yield client


@pytest.fixture(scope="module")
def web(lab: Lab) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=lab.server.url, timeout=60) as client:
        page = client.get("/staff/login").text
        csrf = re.search(r'name="csrf_token" value="([^"]+)"', page)
        assert csrf
        r = client.post("/staff/login?next=/staff", data={
            "csrf_token": csrf.group(1), "workstation": "Details web", "password": PASSWORD})
        assert r.status_code == 303, r.text
        yield client


def new_job(lab: Lab, api: httpx.Client) -> int:
    return submit(api, MODEL, student_name=f"Tess Typo{lab.tag}",
                  email=f"tess.{lab.tag}@exmaple.edu", color="Red")


def job_of(api: httpx.Client, job_id: int) -> dict[str, object]:
    r = api.get(f"/jobs/{job_id}")
    assert r.status_code == 200, r.text
    return dict(r.json())


def csrf_of(page: str) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert match
    return match.group(1)


# --- the API --------------------------------------------------------------------------


def test_api_sets_notes_and_corrects_details(lab: Lab, api: httpx.Client) -> None:
    job_id = new_job(lab, api)
    job = job_of(api, job_id)
    assert (job["staff_notes"], job["staff_notes_by"], job["staff_notes_at"]) == ("", None, None)
    r = api.patch(f"/jobs/{job_id}/notes", json={
        "staff_name": STAFF, "notes": "Call before printing.\nAsked for 20% infill.",
        "version": job["version"]})
    assert r.status_code == 200, r.text
    noted = r.json()
    assert noted["staff_notes"] == "Call before printing.\nAsked for 20% infill."
    assert noted["staff_notes_by"] == STAFF and noted["staff_notes_at"]
    assert noted["version"] == job["version"] + 1  # type: ignore[operator]

    r = api.patch(f"/jobs/{job_id}", json={
        "staff_name": STAFF, "version": noted["version"],
        "email": f"Tess.{lab.tag}@Example.EDU", "color": "Galaxy blue"})
    assert r.status_code == 200, r.text
    fixed = r.json()
    assert fixed["email"] == f"Tess.{lab.tag}@example.edu"  # normalised as on the form
    assert fixed["color"] == "Galaxy blue" and fixed["version"] == noted["version"] + 1
    events = job_of(api, job_id)["events"]
    assert isinstance(events, list)
    edit = events[-1]
    assert edit["kind"] == "edit" and edit["actor"]["name"] == STAFF
    assert edit["details"]["changes"]["email"] == {
        "old": f"tess.{lab.tag}@exmaple.edu", "new": f"Tess.{lab.tag}@example.edu"}
    assert events[-2]["kind"] == "notes"
    assert events[-2]["details"] == {"old": "", "new": noted["staff_notes"]}
    found = api.get("/jobs", params={"q": f"tess.{lab.tag}@example"}).json()
    assert [j["id"] for j in found["jobs"]] == [job_id]


@pytest.mark.parametrize("path, body, status, field", [
    ("", {"staff_name": STAFF, "email": "a@example.edu"}, 422, "version"),
    ("", {"staff_name": STAFF, "version": "V", "print_method": "resin"}, 422, "print_method"),
    ("", {"staff_name": STAFF, "version": "V", "email": "tess@nowhere"}, 422, "email"),
    ("", {"staff_name": STAFF, "version": "V", "color": "Red"}, 422, "color"),
    ("", {"staff_name": STAFF, "version": "V", "discipline": 7}, 422, "discipline"),
    ("", {"staff_name": "Nobody", "version": "V", "color": "Blue"}, 422, "staff_name"),
    ("", {"staff_name": STAFF, "version": "OLD", "color": "Blue"}, 409, None),
    ("/notes", {"staff_name": STAFF, "notes": "x" * 2001}, 422, "notes"),
    ("/notes", {"staff_name": STAFF, "notes": "a\u0000b"}, 422, "notes"),
    ("/notes", {"staff_name": STAFF, "notes": ["a"]}, 422, "notes"),
    ("/notes", {"staff_name": STAFF}, 422, "notes"),
    ("/notes", {"notes": "hi"}, 422, "staff_name"),
    ("/notes", {"staff_name": STAFF, "notes": "hi", "version": "OLD"}, 409, None),
])
def test_api_refuses_bad_input_and_records_nothing(
    lab: Lab, api: httpx.Client, path: str, body: dict[str, object], status: int,
    field: str | None,
) -> None:
    job_id = new_job(lab, api)
    job = job_of(api, job_id)
    version = job["version"]
    body = {k: (version if v == "V" else version - 1 if v == "OLD" else v)  # type: ignore[operator]
            for k, v in body.items()}
    r = api.patch(f"/jobs/{job_id}{path}", json=body)
    assert r.status_code == status, r.text
    error = r.json()["error"]
    if field:
        assert field in error.get("fields", {}), error
    after = job_of(api, job_id)
    assert after["version"] == version and after["events"] == job["events"]


def test_api_needs_a_login_and_a_job(lab: Lab, api: httpx.Client) -> None:
    with lab.server.api() as anonymous:
        r = anonymous.patch("/jobs/1/notes", json={"staff_name": STAFF, "notes": "x"})
        assert r.status_code == 401
        assert anonymous.patch("/jobs/1", json={"staff_name": STAFF}).status_code == 401
    r = api.patch("/jobs/999999/notes", json={"staff_name": STAFF, "notes": "x"})
    assert r.status_code == 404, r.text
    r = api.patch("/jobs/999999", json={"staff_name": STAFF, "version": 1, "color": "x"})
    assert r.status_code == 404, r.text


# --- the pages --------------------------------------------------------------------------


def test_page_forms_save_notes_and_corrections(lab: Lab, api: httpx.Client,
                                               web: httpx.Client) -> None:
    job_id = new_job(lab, api)
    page = web.get(f"/staff/jobs/{job_id}").text
    assert 'id="notes-form"' in page and 'id="edit-form"' in page
    version = job_of(api, job_id)["version"]
    r = web.post(f"/staff/jobs/{job_id}/notes", data={
        "csrf_token": csrf_of(page), "staff_name": STAFF, "version": str(version),
        "notes": "Picked up by her lab partner <b>Sam</b>."})
    assert r.status_code == 303, r.text
    page = web.get(f"/staff/jobs/{job_id}").text
    assert "Staff notes saved." in page
    notes = re.search(r'<dd id="job-staff-notes">(.*?)</dd>', page, re.S)
    assert notes and "lab partner &lt;b&gt;Sam&lt;/b&gt;." in notes.group(1)
    assert f"by {STAFF}" in notes.group(1)

    # A bad email: the form again, the field marked, nothing stored, typed values kept.
    version = job_of(api, job_id)["version"]
    form = {"csrf_token": csrf_of(page), "staff_name": STAFF, "version": str(version),
            "student_name": f"Tess Typo{lab.tag}", "email": "tess@@example",
            "discipline": "Physics", "class_number": "PHY 2", "color": "other",
            "color_other": "Sunset orange", "preferred_printer": ""}
    r = web.post(f"/staff/jobs/{job_id}/edit", data=form)
    assert r.status_code == 422, r.text
    assert 'id="edit-details-box" open' in r.text
    assert re.search(r'id="edit-email"[^>]*aria-invalid="true"', r.text)
    assert 'id="err-email"' in r.text and 'value="Sunset orange"' in r.text
    assert 'value="Physics"' in r.text
    assert job_of(api, job_id)["version"] == version

    form["email"] = f"tess.{lab.tag}@example.edu"
    r = web.post(f"/staff/jobs/{job_id}/edit", data=form)
    assert r.status_code == 303, r.text
    job = job_of(api, job_id)
    assert (job["email"], job["color"], job["discipline"]) == (
        f"tess.{lab.tag}@example.edu", "Sunset orange", "Physics")
    page = web.get(f"/staff/jobs/{job_id}").text
    history = html.unescape(page[page.index('id="job-history"'):])
    assert "Details corrected" in history
    assert f"email: “tess.{lab.tag}@exmaple.edu” → “tess.{lab.tag}@example.edu”" in history
    assert "colour: “Red” → “Sunset orange”" in history
    assert "Staff notes changed" in history

    card = web.get("/staff", params={"q": lab.tag}).text
    assert "data-staff-notes" in card and "lab partner" in card

    # Without the CSRF token: refused, nothing changes.
    r = web.post(f"/staff/jobs/{job_id}/notes", data={"staff_name": STAFF, "notes": "x"})
    assert r.status_code == 403
    assert job_of(api, job_id)["version"] == job["version"]


# --- a browser --------------------------------------------------------------------------


@pytest.mark.parametrize("live_server", ["sqlite"], indirect=True)
def test_browser_fixes_an_email_and_adds_a_note(lab: Lab, api: httpx.Client) -> None:
    from playwright.sync_api import expect, sync_playwright

    if not CHROMIUM.exists():
        service_missing(f"Chromium not found at {CHROMIUM}")
    job_id = new_job(lab, api)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), headless=True,
                                     args=["--no-sandbox"])
        try:
            for width in (1280, 390):
                page = browser.new_page(viewport={"width": width, "height": 900})
                page.goto(lab.server.url + f"/staff/jobs/{job_id}")
                if "/staff/login" in page.url:
                    page.locator("#workstation").fill("Browser desk")
                    page.locator("#password").fill(PASSWORD)
                    page.get_by_role("button", name="Log in").click()
                    page.wait_for_url(re.compile(rf"/staff/jobs/{job_id}$"))
                if width == 390:  # the request card and its forms fit a phone
                    page.locator("#edit-details-box > summary").click()
                    page.locator("#staff-notes-box > summary").click()
                    right = page.evaluate(WIDEST, "#job-request")
                    wide = page.evaluate(WIDE, ["#job-request", width])
                    assert right <= width, f"the request card is {right} px wide: {wide}"
                    page.close()
                    continue
                page.locator("#edit-details-box > summary").click()
                form = page.locator("#edit-form")
                who = form.locator('select[name="staff_name"]')
                if who.count():
                    who.select_option(STAFF)
                form.locator("#edit-email").fill(f"tess.{lab.tag}@example.edu")
                form.get_by_role("button", name="Save corrections").click()
                expect(page.locator("#job-email")).to_have_text(f"tess.{lab.tag}@example.edu")
                page.locator("#staff-notes-box > summary").click()
                notes = page.locator("#notes-form")
                who = notes.locator('select[name="staff_name"]')
                if who.count():
                    who.select_option(STAFF)
                notes.locator("#staff-notes").fill("Email typo fixed at the desk.\nResend link.")
                notes.get_by_role("button", name="Save notes").click()
                expect(page.locator("#job-staff-notes")).to_contain_text(
                    "Email typo fixed at the desk.")
                expect(page.locator("#job-staff-notes")).to_contain_text(f"by {STAFF}")
                history = page.locator("#job-history")
                expect(history).to_contain_text("Details corrected")
                expect(history).to_contain_text(f"“tess.{lab.tag}@exmaple.edu” → "
                                                f"“tess.{lab.tag}@example.edu”")
                expect(history).to_contain_text("Staff notes changed")
                page.close()
        finally:
            browser.close()
