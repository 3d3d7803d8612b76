"""One staff member per workstation session (issue 12): the header's "You are:" form
(``POST /staff/whoami``), the forms that then carry that name as a hidden field, and the
setup notices shown once (``/staff/setup``) instead of on every job page.

Over HTTP, in-process on SQLite (the pages and the session, not the database, are under
test here): choosing a name, then actions without a name in the form recorded under it;
an HTTP client's own ``staff_name`` still used as sent; logging out or a new login
forgetting it; a name deactivated after it was chosen refused, never used.

Bad inputs tried on ``/staff/whoami``: a name not on the staff list (422, the form again
with the field marked, the previous choice kept), one of 500 characters (422, shown cut),
one with only spaces (forgets, as the empty choice), a missing and a wrong CSRF token
(403, nothing changed), foreign ``next`` targets (``https://…``, ``//host``, ``/\\host``,
``javascript:``, ``/staffevil``, ``HTTPS:host``, the POST-only logout: all go to ``/staff``; a
newline is refused by the input guard, 422),
and a post without a login (to the login page, nothing kept). Also: the dismiss of the
setup summary without its CSRF token (403).

In Chromium (Playwright): a name is picked once in the header (with the Change button,
and by pointer, which sends the form by itself), then a sliced-file upload, an approval,
a rejection and a review are recorded under it without choosing again.
"""

from __future__ import annotations

import html
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect
from starlette.testclient import TestClient
from test_browser import WORKSTATION, browser  # noqa: F401 - the Chromium fixture

from _live import PASSWORD, STAFF, LiveServer, login, submit
from _support import FIXTURES
from adapters.web.identity import local_staff_path

MODEL = FIXTURES / "models" / "Moon.stl"
SLICED = FIXTURES / "sliced" / "wormdrive.gcode.3mf"
ANA, BEN = "Ana Ramos", "Ben Okafor"
STUDENT = {"student_name": "Jane Doe", "email": "jane.doe@university.edu",
           "discipline": "Mechanical Engineering", "class_number": "ME 101",
           "print_method": "filament", "color": "Red", "preferred_printer": "", "notes": ""}


# --- over HTTP, in-process ------------------------------------------------------------

class Desk:
    """A logged-in workstation on an in-process app: ``client`` (cookies kept), the
    wiring ``container``, and ``csrf`` (the session's token, read from a page)."""

    def __init__(self, container: Any, client: TestClient) -> None:
        self.container = container
        self.client = client
        self.csrf = ""

    def log_in(self) -> None:
        page = self.client.get("/staff/login").text
        token = re.search(r'name="csrf_token" value="([^"]+)"', page)
        assert token
        r = self.client.post("/staff/login?next=/staff", follow_redirects=False, data={
            "csrf_token": token.group(1), "workstation": "Front desk", "password": PASSWORD})
        assert r.status_code == 303, r.text
        self.refresh_csrf()

    def refresh_csrf(self) -> None:
        token = re.search(r'name="printcore-csrf" content="([^"]+)"',
                          self.client.get("/staff").text)
        assert token
        self.csrf = token.group(1)

    def whoami(self, name: str, next_path: str = "/staff", **extra: str) -> httpx.Response:
        data = {"csrf_token": self.csrf, "staff_name": name, "next": next_path, **extra}
        return self.client.post("/staff/whoami", data=data, follow_redirects=False)

    def chosen(self) -> str:
        """The name the header shows as chosen ("" for none)."""
        match = re.search(r'name="printcore-staff" content="([^"]*)"',
                          self.client.get("/staff").text)
        assert match
        return match.group(1)

    def submit(self) -> int:
        with MODEL.open("rb") as handle:
            r = self.client.post("/api/v1/submissions", data=STUDENT,
                                 files={"file": (MODEL.name, handle)})
        assert r.status_code == 201, r.text
        return int(r.json()["id"])

    def actors(self, job_id: int) -> list[tuple[str, str]]:
        return [(e.kind, e.actor.name) for e in self.container.requests.history(job_id)]


@pytest.fixture()
def desk(tmp_path: Path) -> Iterator[Desk]:
    from entrypoints.bootstrap import bootstrap
    from entrypoints.settings import load_settings
    from entrypoints.web import app_from_container

    env = {"PRINTCORE_HOME": str(tmp_path / "home"),
           "PRINTCORE_SECRET_KEY": "identity-test-secret-key",
           "PRINTCORE_STAFF_PASSWORD": PASSWORD}
    container = bootstrap(load_settings(env, env_file=None))
    container.staff.add(ANA)
    container.staff.add(BEN)
    app = app_from_container(container, isolated_inspection=False)
    client = TestClient(app, base_url="http://127.0.0.1")
    desk = Desk(container, client)
    try:
        desk.log_in()
        yield desk
    finally:
        client.close()
        app.state.ctx.inspector.close()
        container.close()


def _review_form(page: str) -> str:
    match = re.search(r'<form [^>]*id="review-form".*?</form>', page, re.S)
    assert match, "no review form on the job page"
    return match.group(0)


def test_a_name_chosen_once_is_on_every_form_and_records_the_actions(desk: Desk) -> None:
    job_id = desk.submit()
    assert desk.chosen() == ""
    page = desk.client.get(f"/staff/jobs/{job_id}").text
    assert 'id="whoami"' in page and ">Choose</button>" in page
    # nobody chosen yet: the form asks, with the dropdown as the fallback
    assert 'select name="staff_name" required' in _review_form(page)

    r = desk.whoami(ANA, f"/staff/jobs/{job_id}")
    assert r.status_code == 303 and r.headers["location"] == f"/staff/jobs/{job_id}"
    page = desk.client.get(f"/staff/jobs/{job_id}").text
    assert f"You are {ANA}" in page  # the flash
    form = _review_form(page)
    assert f'<input type="hidden" name="staff_name" value="{ANA}">' in form
    assert f"as <strong>{ANA}</strong>" in form
    assert "<select" not in form
    assert f'<option value="{ANA}" selected>' in page and ">Change</button>" in page

    # a form post without a name (what the page's own forms would send if it were
    # stripped) is recorded under the chosen name
    r = desk.client.post(f"/staff/jobs/{job_id}/review", data={"csrf_token": desk.csrf},
                         follow_redirects=False)
    assert r.status_code == 303, r.text
    assert desk.actors(job_id)[-1] == ("review", ANA)

    # an HTTP client's own staff_name is used as sent, and does not change the choice
    r = desk.client.post(f"/staff/jobs/{job_id}/unreview",
                         data={"csrf_token": desk.csrf, "staff_name": BEN},
                         follow_redirects=False)
    assert r.status_code == 303, r.text
    assert desk.actors(job_id)[-1] == ("unreview", BEN)
    assert desk.chosen() == ANA

    # changing is one post; spaces around the name do not matter
    assert desk.whoami(f"  {BEN} ").status_code == 303
    assert desk.chosen() == BEN


def test_bad_names_and_tokens_are_refused_and_keep_the_choice(desk: Desk) -> None:
    assert desk.whoami(ANA).status_code == 303
    for name, shown in (("Zed Nobody", "'Zed Nobody'"), ("x" * 500, "'" + "x" * 80 + "…'"),
                        ("<script>", "'<script>'")):
        r = desk.whoami(name)
        assert r.status_code == 422, name
        assert f"{shown} is not on the active staff list" in html.unescape(r.text)
        assert "<script>" not in r.text  # shown escaped
        assert f"You are still {ANA}." in r.text
        assert 'aria-invalid="true" aria-describedby="err-staff_name"' in r.text
        assert 'id="err-staff_name">Choose your name from the staff list.' in r.text
        assert desk.chosen() == ANA
    for token in ("", "not-the-token"):
        r = desk.client.post("/staff/whoami", follow_redirects=False,
                             data={"csrf_token": token, "staff_name": BEN, "next": "/staff"})
        assert r.status_code == 403
        assert "did not come from this site" in r.text
        assert desk.chosen() == ANA
    # only spaces: the empty choice, which forgets the name (and says so)
    r = desk.whoami("   ")
    assert r.status_code == 303
    assert "Nobody is chosen on this workstation" in desk.client.get("/staff").text
    assert desk.chosen() == ""


@pytest.mark.parametrize("target", [
    "https://evil.example/staff", "//evil.example/staff", "/\\evil.example", "javascript:alert(1)",
    "/staffevil", "HTTPS:evil.example", "/staff/logout", "", "staff",
])
def test_a_foreign_next_goes_to_the_dashboard(desk: Desk, target: str) -> None:
    r = desk.whoami(ANA, target)
    assert r.status_code == 303
    assert r.headers["location"] == "/staff"
    assert desk.chosen() == ANA


def test_a_next_with_a_newline_is_refused_by_the_input_guard(desk: Desk) -> None:
    r = desk.whoami(ANA, "/staff\r\nLocation: https://evil.example/")
    assert r.status_code == 422
    assert "location" not in r.headers
    assert desk.chosen() == ""


def test_local_staff_paths_are_kept() -> None:
    for target in ("/staff", "/staff/jobs/12", "/staff?status=pending&q=ana", "/staff/printers"):
        assert local_staff_path(target) == target
    assert local_staff_path("http://127.0.0.1/staff") == "/staff"


def test_logging_out_or_a_new_login_forgets_the_name(desk: Desk) -> None:
    assert desk.whoami(ANA).status_code == 303
    r = desk.client.post("/staff/logout", data={"csrf_token": desk.csrf}, follow_redirects=False)
    assert r.status_code == 303
    # not logged in: the post goes to the login page and keeps nothing
    r = desk.client.post("/staff/whoami", data={"csrf_token": desk.csrf, "staff_name": ANA},
                         follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"].startswith("/staff/login")
    desk.log_in()
    assert desk.chosen() == ""


def test_a_name_removed_from_the_staff_list_is_refused_not_used(desk: Desk) -> None:
    job_id = desk.submit()
    assert desk.whoami(ANA).status_code == 303
    desk.container.staff.deactivate(ANA)
    page = desk.client.get(f"/staff/jobs/{job_id}").text
    assert f"{ANA} is no longer on the staff list" in _review_form(page)
    assert f'value="{ANA}"' not in page  # neither hidden nor offered
    r = desk.client.post(f"/staff/jobs/{job_id}/review", data={"csrf_token": desk.csrf})
    assert r.status_code == 422
    assert "not on the active staff list" in r.text
    assert desk.actors(job_id) == [("submit", STUDENT["student_name"])]


def test_setup_hints_are_said_once_under_setup(desk: Desk) -> None:
    job_id = desk.submit()
    job_page = desk.client.get(f"/staff/jobs/{job_id}").text
    assert "PRINTCORE_OPENER_SECRET" not in job_page
    assert re.search(r'Slicer links are off \(<a href="/staff/setup#slicer-links">Setup</a>\)',
                     job_page)
    setup = desk.client.get("/staff/setup").text
    assert 'id="slicer-links"' in setup and "PRINTCORE_OPENER_SECRET" in setup
    assert re.search(r'href="/staff/setup" id="setup-link">Setup <span class="count">\d',
                     job_page)
    dashboard = desk.client.get("/staff").text
    assert 'id="setup-summary"' in dashboard
    r = desk.client.post("/staff/setup/dismiss", data={"csrf_token": ""})
    assert r.status_code == 403
    assert 'id="setup-summary"' in desk.client.get("/staff").text
    r = desk.client.post("/staff/setup/dismiss", data={"csrf_token": desk.csrf},
                         follow_redirects=False)
    assert r.status_code == 303
    assert 'id="setup-summary"' not in desk.client.get("/staff").text
    assert 'id="slicer-links"' in desk.client.get("/staff/setup").text  # still listed


# --- in Chromium ------------------------------------------------------------------------


def _add_staff(server: LiveServer, name: str) -> None:
    env = {**os.environ, "PRINTCORE_HOME": str(server.home)}
    env.pop("DATABASE_URL", None)
    done = subprocess.run([sys.executable, "-m", "entrypoints.cli", "staff", "add", name],
                          env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr


def log_in_browser(page: Page, server: LiveServer) -> None:
    page.goto(server.url + "/staff")
    page.wait_for_url(re.compile(r"/staff/login\?next="))
    page.locator("#workstation").fill(WORKSTATION)
    page.locator("#password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(server.url + "/staff")


def choose_in_header(page: Page, name: str) -> None:
    """Pick ``name`` in the header's "You are:" form with its button (as from the
    keyboard: selecting alone does not send it)."""
    url = page.url
    page.locator("#whoami").select_option(name)
    expect(page.locator("#whoami-form button")).to_have_text(re.compile("Choose|Change"))
    assert page.url == url
    page.locator("#whoami-form button").click()
    expect(page.locator(".flash")).to_contain_text(f"You are {name}")


@pytest.mark.parametrize("live_server", ["sqlite"], indirect=True)
def test_pick_once_in_the_header_then_every_action_is_yours(
    live_server: LiveServer, browser: Browser,  # noqa: F811 - the imported fixture
) -> None:
    server = live_server
    _add_staff(server, BEN)
    with server.api() as api:
        approve_id = submit(api, MODEL)
        reject_id = submit(api, MODEL)
        bearer = login(api, "Checker")
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    try:
        page = context.new_page()
        log_in_browser(page, server)
        expect(page.locator("#whoami")).to_have_value("")
        choose_in_header(page, STAFF)
        expect(page.locator("#whoami")).to_have_value(STAFF)
        # changing with the pointer sends the form by itself, back to the same page
        page.goto(f"{server.url}/staff/jobs/{approve_id}")
        page.locator("#whoami").dispatch_event("pointerdown")
        page.locator("#whoami").select_option(BEN)
        page.wait_for_url(f"{server.url}/staff/jobs/{approve_id}")
        expect(page.locator(".flash")).to_contain_text(f"You are {BEN}")
        expect(page.locator("#whoami")).to_have_value(BEN)

        # no form on the job page asks again
        expect(page.locator('#job-actions select[name="staff_name"]')).to_have_count(0)
        upload = page.locator(f'form[action="/staff/jobs/{approve_id}/files"]')
        expect(upload.locator(".as-staff")).to_have_text(f"as {BEN} · change")
        upload.locator('input[type="file"]').set_input_files(str(SLICED))
        upload.get_by_role("button", name="Upload sliced file").click()
        expect(page.locator(".flash")).to_contain_text("Sliced file added.")
        page.locator("#review-form button").click()
        expect(page.locator(".flash")).to_contain_text("Marked reviewed")
        page.locator("#action-approve > summary").click()
        page.locator("#approve-form").get_by_role(
            "button", name="Approve and email the student").click()
        expect(page.locator("h1 .status")).to_have_text("Pending confirmation")

        page.goto(f"{server.url}/staff/jobs/{reject_id}")
        page.locator("#action-reject > summary").click()
        reject = page.locator(f'form[action="/staff/jobs/{reject_id}/reject"]')
        expect(reject.locator('select[name="staff_name"]')).to_have_count(0)
        reject.locator('input[name="custom_reason"]').fill("Walls too thin to print.")
        reject.get_by_role("button", name="Reject and email the student").click()
        expect(page.locator("h1 .status")).to_have_text("Rejected")
    finally:
        context.close()
    with server.api() as api:
        for job_id, wanted in ((approve_id, ["add_sliced_file", "review", "approve"]),
                               (reject_id, ["reject"])):
            events = api.get(f"/jobs/{job_id}", headers=bearer).json()["events"]
            staff_events = [(e["kind"], e["actor"]["name"]) for e in events
                            if e["actor"]["kind"] == "staff"]
            # every staff event (the soft locks the dialogs take too) is Ben's
            assert {name for _, name in staff_events} == {BEN}, staff_events
            assert [k for k, _ in staff_events if k in wanted] == wanted, staff_events
