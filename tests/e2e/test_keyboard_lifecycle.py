"""A whole print request's life on the staff pages with the keyboard alone (issue 12).

Chromium on the embedded default. Only keys reach the page: Tab / Shift+Tab move the
focus (``tab_to`` presses Tab until the focused element is the one wanted, and fails if
it never comes: so every step below is reachable from the keyboard), Enter opens an
action's dialog (a ``<details>`` summary) and sends its form, typing fills fields, the
header's "You are:" list is chosen with the arrow keys and its button. The student's
confirmation goes through their emailed link (the student side, over HTTP), and the
sliced file is uploaded over the API (a file picker is the operating system's, not the
page's). Walk: log in → choose the staff member → ``/`` search → open the job from its
card → mark reviewed → approve (weight, time) → [student confirms] → mark printing →
mark complete → record payment (grams, transaction no.) → paid & picked up. Each step
is checked in the job's history, attributed to the name chosen once in the header.

Bad input tried on the way: sending the approval with the weight left empty (the form
comes back with the field marked and focusable, nothing recorded), then correcting it.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect
from test_browser import browser  # noqa: F401 - the Chromium fixture

from _live import PASSWORD, STAFF, LiveServer, confirm_token, login, submit, upload_sliced

pytestmark = pytest.mark.parametrize("live_server", ["sqlite"], indirect=True)

FIXTURES = Path(__file__).resolve().parents[3] / "shared" / "fixtures"


def tab_to(page: Page, selector: str, limit: int = 250, backwards: bool = False) -> None:
    """Press Tab until the element matching ``selector`` has the focus."""
    for _ in range(limit):
        if page.evaluate("s => { const a = document.activeElement; "
                         "return !!a && a.matches(s); }", selector):
            return
        page.keyboard.press("Shift+Tab" if backwards else "Tab")
    raise AssertionError(f"Tab never reached {selector!r}: not reachable from the keyboard")


def kinds(server: LiveServer, job_id: int) -> list[tuple[str, str]]:
    with server.api() as api:
        events = api.get(f"/jobs/{job_id}", headers=login(api)).json()["events"]
    return [(e["kind"], e["actor"]["name"]) for e in events
            if e["kind"] not in ("lock", "unlock")]


def open_action(page: Page, action: str) -> None:
    tab_to(page, f'details[data-lock-action="{action}"] > summary')
    page.keyboard.press("Enter")
    expect(page.locator(f'details[data-lock-action="{action}"]')).to_have_attribute("open", "")


def test_a_whole_lifecycle_from_the_keyboard(
        live_server: LiveServer, browser: Browser) -> None:  # noqa: F811
    with live_server.api() as api:
        job_id = submit(api, FIXTURES / "models" / "HalfDonut_ascii.stl",
                        student_name="Kira Keyboard", email="kira.kb@university.edu")
        r = upload_sliced(api, login(api), job_id, FIXTURES / "sliced" / "wormdrive.gcode.3mf")
        assert r.status_code == 201, r.text
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    try:
        page.goto(live_server.url + "/staff/login")
        tab_to(page, "#workstation")
        page.keyboard.press("Control+A")
        page.keyboard.type("Keyboard desk")
        tab_to(page, "#password")
        page.keyboard.type(PASSWORD)
        page.keyboard.press("Enter")
        page.wait_for_url(live_server.url + "/staff")

        # Who am I: the header's list, by arrow keys, then its button.
        tab_to(page, "#whoami")
        page.keyboard.press("ArrowDown")
        tab_to(page, "#whoami-form button[type=submit]")
        page.keyboard.press("Enter")
        expect(page.locator(".flash")).to_contain_text(f"You are {STAFF}")

        # Find the job: "/" goes to the search box, Enter searches, Tab reaches the card.
        page.keyboard.press("/")
        page.keyboard.type("kira keyboard")
        page.keyboard.press("Enter")
        expect(page.locator("#search-summary")).to_contain_text("1 match")
        tab_to(page, f'.job-card[data-job="{job_id}"]')
        page.keyboard.press("Enter")
        page.wait_for_url(f"{live_server.url}/staff/jobs/{job_id}")

        tab_to(page, "#review-form button[type=submit]")
        page.keyboard.press("Enter")
        expect(page.locator("#job-reviewed")).to_contain_text(STAFF)

        # Approve: first without the weight (refused, field marked), then complete.
        open_action(page, "approve")
        tab_to(page, "#approve-form input[name=weight_g]")
        page.keyboard.press("Control+A")
        page.keyboard.press("Delete")
        tab_to(page, "#approve-form input[name=time_hours]")
        page.keyboard.press("Control+A")
        page.keyboard.type("1")
        tab_to(page, "#approve-form button[type=submit]")
        page.keyboard.press("Enter")
        weight = page.locator("#approve-form input[name=weight_g]")
        expect(weight).to_have_attribute("aria-invalid", "true")
        assert [k for k, _ in kinds(live_server, job_id)] == ["submit", "add_sliced_file",
                                                              "review"]
        tab_to(page, "#approve-form input[name=weight_g]")
        page.keyboard.type("10.48")
        tab_to(page, "#approve-form input[name=time_hours]")
        page.keyboard.press("Control+A")
        page.keyboard.type("1")
        tab_to(page, "#approve-form button[type=submit]")
        page.keyboard.press("Enter")
        expect(page.locator("#job-head .status")).to_have_text("Pending confirmation")

        # The student confirms from the emailed link (their side, over HTTP).
        with live_server.api() as api:
            r = api.post("/confirm", json={"token": confirm_token(live_server, job_id)})
            assert r.status_code == 200, r.text
        page.reload()
        expect(page.locator("#job-head .status")).to_have_text("Ready to print")

        for action, button, state in (("start_print", "Mark printing", "Printing"),
                                      ("complete", "Mark complete and email for pickup",
                                       "Completed")):
            open_action(page, action)
            tab_to(page, f'details[data-lock-action="{action}"] button[type=submit]')
            assert page.evaluate("document.activeElement.textContent.trim()") == button
            page.keyboard.press("Enter")
            expect(page.locator("#job-head .status")).to_have_text(state)

        open_action(page, "pick_up")
        tab_to(page, 'details[data-lock-action="pick_up"] input[name=grams]')
        page.keyboard.press("Control+A")
        page.keyboard.type("10.2")
        tab_to(page, 'details[data-lock-action="pick_up"] input[name=txn_no]')
        page.keyboard.type("TX-KEY-1")
        tab_to(page, 'details[data-lock-action="pick_up"] button[type=submit]')
        page.keyboard.press("Enter")
        expect(page.locator("#job-head .status")).to_have_text("Paid & picked up")

        assert kinds(live_server, job_id) == [
            ("submit", "Kira Keyboard"), ("add_sliced_file", STAFF), ("review", STAFF),
            ("approve", STAFF), ("confirm", "Kira Keyboard"), ("start_print", STAFF),
            ("complete", STAFF), ("pick_up", STAFF)]
    finally:
        page.close()
