"""The staff pages from the keyboard alone, in Chromium (Playwright), on the embedded
default (issue 12, "Keyboard"): the skip link is the first thing Tab reaches and moves to
the content; ``/`` focuses the search box; ``j``/``k`` move between the dashboard's job
cards and Enter opens one; ``r`` marks the focused card's job reviewed (recorded under
the name chosen in the header) and, on a job page, that job; ``?`` and the header's
"Keyboard shortcuts (?)" button open the help dialog, Escape closes it; the favicon is
served as SVG.

Inputs that must not trigger a shortcut, tried: ``r``, ``j`` and ``/`` typed into the
search box, ``j`` with Alt and Ctrl held, ``r`` while the help dialog is open; ``r`` on a
card already reviewed (says so, records nothing), and ``r`` before anybody is chosen at
the workstation (asks for a name, records nothing).
"""

from __future__ import annotations

import re

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect
from test_browser import browser  # noqa: F401 - the Chromium fixture
from test_identity import MODEL, choose_in_header, log_in_browser

from _live import STAFF, LiveServer, login, submit

pytestmark = pytest.mark.parametrize("live_server", ["sqlite"], indirect=True)


def _staff_events(server: LiveServer, headers: dict[str, str], job_id: int) -> list[tuple[str, str]]:
    with server.api() as api:
        events = api.get(f"/jobs/{job_id}", headers=headers).json()["events"]
    return [(e["kind"], e["actor"]["name"]) for e in events if e["actor"]["kind"] == "staff"]


def _focused_card(page: Page) -> str | None:
    return page.evaluate(
        "() => document.activeElement && document.activeElement.getAttribute('data-job')")


def test_a_keyboard_only_walk(live_server: LiveServer, browser: Browser) -> None:  # noqa: F811
    server = live_server
    with server.api() as api:
        jobs = [submit(api, MODEL, student_name=f"Kim Keys {n}") for n in range(3)]
        headers = login(api, "Keyboard checker")
    r = httpx.get(server.url + "/static/favicon.svg")
    assert r.status_code == 200 and r.headers["content-type"].startswith("image/svg+xml")
    assert b"<svg" in r.content

    context = browser.new_context(viewport={"width": 1280, "height": 900})
    try:
        page = context.new_page()
        log_in_browser(page, server)
        assert page.locator('link[rel="icon"]').get_attribute("href") == "/static/favicon.svg"

        # The skip link: first on Tab, visible when focused, and it moves to the content.
        skip = page.locator("a.skip-link")
        page.keyboard.press("Tab")
        expect(skip).to_be_focused()
        expect(skip).to_have_text("Skip to content")
        box = skip.bounding_box()
        assert box is not None and box["y"] >= 0, box
        page.keyboard.press("Enter")
        assert page.evaluate("() => document.activeElement.id") == "content"

        # r before anybody is chosen: asks for a name, records nothing.
        page.keyboard.press("j")
        assert _focused_card(page) == str(jobs[0])
        page.keyboard.press("r")
        expect(page.locator("#shortcut-status")).to_contain_text("Choose who you are first")
        expect(page.locator("#whoami")).to_be_focused()
        assert _staff_events(server, headers, jobs[0]) == []
        choose_in_header(page, STAFF)

        # / focuses the search box; what is typed there is text, not shortcuts.
        page.keyboard.press("/")
        expect(page.locator("#search-q")).to_be_focused()
        page.keyboard.type("rj/k")
        expect(page.locator("#search-q")).to_have_value("rj/k")
        page.locator("#search-q").fill("")
        page.keyboard.press("Escape")
        page.locator("#content").focus()

        # j / k between the cards (oldest first); modifiers do nothing.
        page.keyboard.press("j")
        assert _focused_card(page) == str(jobs[0])
        page.keyboard.press("j")
        assert _focused_card(page) == str(jobs[1])
        page.keyboard.press("Alt+j")
        page.keyboard.press("Control+j")
        assert _focused_card(page) == str(jobs[1])
        page.keyboard.press("k")
        assert _focused_card(page) == str(jobs[0])
        page.keyboard.press("j")
        page.keyboard.press("j")
        page.keyboard.press("j")  # stays on the last card
        assert _focused_card(page) == str(jobs[2])
        page.keyboard.press("k")
        assert _focused_card(page) == str(jobs[1])

        # r on the focused card: reviewed under the chosen name, the badge goes.
        card = page.locator(f'.job-card[data-job="{jobs[1]}"]')
        expect(card.locator(".badge-new")).to_have_count(1)
        page.keyboard.press("r")
        expect(page.locator("#shortcut-status")).to_contain_text(
            f"Job #{jobs[1]} marked reviewed by {STAFF}")
        expect(card.locator(".badge-new")).to_have_count(0)
        assert _staff_events(server, headers, jobs[1]) == [("review", STAFF)]
        # the live update redraws the cards and gives the focus back to the same card
        page.wait_for_timeout(1500)
        assert _focused_card(page) == str(jobs[1])
        page.keyboard.press("r")
        expect(page.locator("#shortcut-status")).to_contain_text("already reviewed")
        assert _staff_events(server, headers, jobs[1]) == [("review", STAFF)]

        # ? opens the help; shortcuts are off while it is open; Escape closes it.
        page.keyboard.press("?")
        dialog = page.locator("#shortcuts-help")
        expect(dialog).to_be_visible()
        expect(dialog).to_contain_text("Mark the job reviewed")
        page.keyboard.press("r")
        page.keyboard.press("Escape")
        expect(dialog).to_be_hidden()
        opener = page.get_by_role("button", name="Keyboard shortcuts (?)")
        opener.focus()
        page.keyboard.press("Enter")
        expect(dialog).to_be_visible()
        page.keyboard.press("Escape")
        expect(dialog).to_be_hidden()

        # Enter opens the focused card; r on the job page marks that job reviewed.
        page.locator("#content").focus()
        page.keyboard.press("j")
        assert _focused_card(page) == str(jobs[0])
        page.keyboard.press("Enter")
        page.wait_for_url(f"{server.url}/staff/jobs/{jobs[0]}")
        expect(page.locator("#job-new")).to_be_visible()
        page.keyboard.press("r")
        expect(page.locator(".flash")).to_contain_text("Marked reviewed")
        expect(page.locator("#job-new")).to_have_count(0)
        page.keyboard.press("r")
        expect(page.locator("#shortcut-status")).to_contain_text("already reviewed")
        assert _staff_events(server, headers, jobs[0]) == [("review", STAFF)]
        assert _staff_events(server, headers, jobs[2]) == []
        assert re.search(r"/staff/jobs/\d+$", page.url)
    finally:
        context.close()
