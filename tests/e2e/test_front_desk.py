"""Two staff browsers at one front desk (issue 12), on SQLite and on PostgreSQL.

Two Chromium contexts log in as two workstations and each picks who they are once, in
the header. A student submits over HTTP. Checked: both dashboards show the new card with
its NEW badge within 2 s and without a reload (a marker set on each page survives); the
first marks it reviewed from its job page, attributed to the name chosen in its header,
and the second's badge disappears by itself; the header search finds the job by student
name, email, ``#id``, bare id and original file name, and says how many match.

Bad inputs tried: a search for text no job has (0 matches, "No job matches").
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from _live import PASSWORD, LiveServer, login, submit
from _support import service_missing

CHROMIUM = Path("/usr/bin/chromium")
DEADLINE_MS = 2000
DESKS = (("Front desk", "Ada Lovelace"), ("Back office", "Grace Hopper"))


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    from playwright.sync_api import sync_playwright

    if not CHROMIUM.exists():
        service_missing(f"Chromium not found at {CHROMIUM}")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True,
                                             args=["--no-sandbox"])
        try:
            yield browser
        finally:
            browser.close()


def _desk(browser: object, server: LiveServer, workstation: str, staff: str) -> object:
    """A fresh browser context logged in as ``workstation`` with ``staff`` chosen in the
    header (the one place a staff member says who they are)."""
    from playwright.sync_api import expect

    context = browser.new_context(viewport={"width": 1280, "height": 900})  # type: ignore[attr-defined]
    page = context.new_page()
    page.goto(server.url + "/staff/login")
    page.fill("input[name=workstation]", workstation)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.select_option("#whoami", staff)
    page.locator("#whoami-form button[type=submit]").click()
    expect(page.locator("#whoami")).to_have_value(staff)
    return page


def test_two_dashboards_see_a_new_request_and_its_review_live(
        live_server: LiveServer, fixtures_dir: Path, browser: object) -> None:
    from playwright.sync_api import expect

    live_server.printcore("staff", "add", DESKS[1][1])
    front = _desk(browser, live_server, *DESKS[0])
    back = _desk(browser, live_server, *DESKS[1])
    try:
        for page in (front, back):
            page.goto(live_server.url + "/staff?status=uploaded")
            expect(page.locator("#live-status")).to_contain_text("Live", timeout=5000)
            page.evaluate("window.__notReloaded = true")
        with live_server.api() as api:
            job_id = submit(api, fixtures_dir / "models" / "fandisk.obj",
                            student_name="Zoë Front-Desk", email="zoe.fd@university.edu")
        for page in (front, back):
            card = page.locator(f'.job-card[data-job="{job_id}"]')
            expect(card).to_be_visible(timeout=DEADLINE_MS)
            expect(card.locator(".badge-new")).to_be_visible(timeout=DEADLINE_MS)
            assert page.evaluate("window.__notReloaded === true")

        # The front desk opens the job and marks it reviewed: no "who are you?" asked.
        front.goto(f"{live_server.url}/staff/jobs/{job_id}")
        review = front.locator("#review-form")
        assert review.locator("select[name=staff_name]").count() == 0
        review.get_by_role("button", name="Mark reviewed").click()
        expect(front.locator("#job-reviewed")).to_contain_text(DESKS[0][1])
        back_card = back.locator(f'.job-card[data-job="{job_id}"]')
        expect(back_card.locator(".badge-new")).to_have_count(0, timeout=DEADLINE_MS)
        assert back.evaluate("window.__notReloaded === true")
        with live_server.api() as api:
            job = api.get(f"/jobs/{job_id}", headers=login(api)).json()
        reviews = [e for e in job["events"] if e["kind"] == "review"]
        assert [e["actor"]["name"] for e in reviews] == [DESKS[0][1]]
        assert reviews[0]["actor"].get("workstation") == DESKS[0][0]

        # The header search finds it by name, email, #id, id and file name.
        for query in ("zoë front", "zoe.fd@university", f"#{job_id}", str(job_id),
                      "fandisk"):
            back.fill("#nav-q", query)
            back.press("#nav-q", "Enter")
            expect(back.locator("#search-summary")).to_be_visible()
            expect(back.locator(f'.job-card[data-job="{job_id}"]')).to_be_visible()
            expect(back.locator(f'.job-card[data-job="{job_id}"] [data-state]')).to_have_text(
                "Uploaded")
        back.fill("#nav-q", "no such student anywhere")
        back.press("#nav-q", "Enter")
        expect(back.locator("#search-summary")).to_contain_text("0 matches")
        expect(back.locator(".empty")).to_contain_text("No job matches")
    finally:
        front.context.close()
        back.context.close()
