"""Attention on the staff pages, in Chromium against a real server (SQLite; the storage
queries behind it run on PostgreSQL too in tests/integration/test_attention_counts.py):

* a new upload over HTTP plays the tone on an open dashboard, but only once someone has
  pressed a key or clicked on the page, never while muted, and not for other changes;
  the mute toggle (aria-pressed, with words) is remembered across a reload;
* cards change colour, mark and words as they age in their state (thresholds of a few
  seconds here), and a change of state starts the clock again; axe finds no critical or
  serious violation with fresh, amber and red cards on the page, and the header with the
  toggle does not scroll sideways at 390 px and 768 px;
* the tabs' NEW counts go down live when a job is marked reviewed;
* an email the SMTP server first defers (450) and then refuses (550) shows on an open
  dashboard and job page without a reload.

Bad inputs tried: a key press that is not a click (counts as interaction), a change that is
not an upload (a rejection: no tone), a mailbox the server refuses.
"""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Iterator

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright
from test_accessibility import BLOCKING, OVERFLOW, describe, run_axe
from test_browser import CHROMIUM, LAUNCH_ARGS

from _live import PASSWORD, STAFF, LiveServer, login, start_server, stop_server, submit
from _smtp import SmtpServer
from _support import FIXTURES, service_missing

MODEL = FIXTURES / "models" / "Moon.stl"
AMBER_HOURS = 0.002  # 7.2 s
RED_HOURS = 0.004  # 14.4 s


@pytest.fixture(scope="module")
def smtp() -> Iterator[SmtpServer]:
    server = SmtpServer()
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def server(smtp: SmtpServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    live = start_server(tmp_path_factory.mktemp("attention"), {
        **smtp.env, "PRINTCORE_OUTBOX_RETRY_SECONDS": "1", "PRINTCORE_OUTBOX_MAX_ATTEMPTS": "50",
        "PRINTCORE_AGE_AMBER_HOURS": str(AMBER_HOURS), "PRINTCORE_AGE_RED_HOURS": str(RED_HOURS),
    }, "sqlite")
    yield live
    stop_server(live)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not CHROMIUM.exists():
        service_missing(f"Chromium not found at {CHROMIUM}")
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True,
                                              args=LAUNCH_ARGS)
        yield chromium
        chromium.close()


def _staff_page(browser: Browser, server: LiveServer, path: str, width: int = 1280) -> Page:
    context = browser.new_context(viewport={"width": width, "height": 900})
    page = context.new_page()
    page.goto(server.url + "/staff/login")
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(re.compile(r".*/staff$"))
    page.goto(server.url + path)
    expect(page.locator("#live-status")).to_contain_text("Live", timeout=5000)
    return page


def _sounds(page: Page) -> int:
    return int(page.evaluate("window.printcoreSounds"))


def _new_card(page: Page, api: httpx.Client, tag: str, **fields: str) -> int:
    job_id = submit(api, MODEL, student_name=f"Attention {tag}", **fields)
    expect(page.locator(f'.job-card[data-job="{job_id}"]')).to_be_visible(timeout=3000)
    return job_id


def test_a_new_upload_sounds_after_interaction_and_not_when_muted(
        browser: Browser, server: LiveServer) -> None:
    page = _staff_page(browser, server, "/staff?status=uploaded")
    toggle, state = page.locator("#sound-toggle"), page.locator("#sound-state")
    try:
        expect(toggle).to_have_attribute("aria-pressed", "true")
        expect(toggle).to_have_text("Sound for new uploads")
        expect(state).to_have_text("on after your first click or key press on this page")
        with server.api() as api:
            _new_card(page, api, "before interaction")
            page.wait_for_timeout(300)
            assert _sounds(page) == 0  # no interaction yet: browsers would refuse anyway

            page.keyboard.press("Shift")
            expect(state).to_have_text("on")
            _new_card(page, api, "after interaction")
            page.wait_for_function("window.printcoreSounds === 1", timeout=3000)
            expect(page.locator("body")).to_have_attribute("data-sounds-played", "1")

            # A change that is not an upload makes no sound.
            page.wait_for_timeout(1600)  # past the 1.5 s that folds uploads into one tone
            rejected = _new_card(page, api, "to reject")
            r = api.post(f"/jobs/{rejected}/reject", headers=login(api),
                         json={"staff_name": STAFF, "custom_reason": "Walls too thin."})
            assert r.status_code == 200, r.text
            page.wait_for_timeout(1000)
            assert _sounds(page) == 2  # the upload of that job sounded; its rejection not

            page.wait_for_timeout(1600)
            toggle.click()
            expect(toggle).to_have_attribute("aria-pressed", "false")
            expect(state).to_have_text("muted")
            _new_card(page, api, "while muted")
            page.wait_for_timeout(500)
            assert _sounds(page) == 2

            page.reload()
            expect(page.locator("#sound-toggle")).to_have_attribute("aria-pressed", "false")
            expect(page.locator("#sound-state")).to_have_text("muted")
            assert page.evaluate("localStorage.getItem('printcore.sound')") == "off"
            expect(page.locator("#live-status")).to_contain_text("Live", timeout=5000)
            page.locator("#sound-toggle").click()  # the click is also the interaction
            expect(page.locator("#sound-toggle")).to_have_attribute("aria-pressed", "true")
            expect(page.locator("#sound-state")).to_have_text("on")
            _new_card(page, api, "unmuted")
            page.wait_for_function("window.printcoreSounds === 1", timeout=3000)
    finally:
        page.context.close()


def _card(page: Page, job_id: int) -> dict[str, str]:
    card = page.locator(f'.job-card[data-job="{job_id}"]')
    return {
        "level": card.get_attribute("data-age") or "",
        "words": card.locator("[data-age-words]").inner_text(),
        "cue": " ".join(card.locator(".age-cue").all_inner_texts()),
        "background": card.evaluate("el => getComputedStyle(el).backgroundColor"),
    }


def _wait_until(moment: float) -> None:
    time.sleep(max(moment - time.monotonic(), 0))


def test_cards_change_colour_and_words_with_age_in_their_state(
        browser: Browser, server: LiveServer) -> None:
    page = _staff_page(browser, server, "/staff?status=uploaded")
    try:
        with server.api() as api:
            headers = login(api)
            started = time.monotonic()
            old = _new_card(page, api, f"old {uuid.uuid4().hex[:6]}")
            card = _card(page, old)
            assert card["level"] == "fresh" and card["cue"] == ""
            assert card["words"] == "in Uploaded for under a minute"
            assert card["background"] == "rgb(255, 255, 255)"

            _wait_until(started + AMBER_HOURS * 3600 + 0.5)
            middle = _new_card(page, api, "middle")
            page.reload()
            card = _card(page, old)
            assert card["level"] == "amber" and card["cue"] == "▲ waiting", card
            assert card["words"] == "in Uploaded for under a minute, waiting long"
            assert card["background"] == "rgb(255, 248, 225)"

            _wait_until(started + RED_HOURS * 3600 + 0.5)
            fresh = _new_card(page, api, "fresh")
            page.reload()
            levels = {j: _card(page, j) for j in (old, middle, fresh)}
            assert [levels[j]["level"] for j in (old, middle, fresh)] == [
                "red", "amber", "fresh"], levels
            assert levels[old]["cue"] == "■ overdue"
            assert levels[old]["words"].endswith(", overdue")
            violations = [v for v in run_axe(page) if v["impact"] in BLOCKING]
            assert not violations, describe(violations)

            # The tabs count the jobs nobody reviewed, and follow a review live.
            tab = page.locator('.tab[data-status="uploaded"]')
            before = int(tab.locator(".count-new").get_attribute("data-new") or 0)
            assert re.fullmatch(rf"Uploaded \d+ · {before} new", tab.inner_text().strip())
            r = api.post(f"/jobs/{old}/review", headers=headers, json={"staff_name": STAFF})
            assert r.status_code == 200, r.text
            expect(tab.locator(".count-new")).to_have_attribute("data-new", str(before - 1),
                                                                timeout=3000)

            # A new state starts the clock again; a rejected job is never coloured.
            r = api.post(f"/jobs/{old}/reject", headers=headers,
                         json={"staff_name": STAFF, "custom_reason": "Walls too thin."})
            assert r.status_code == 200, r.text
            expect(page.locator(f'.job-card[data-job="{old}"]')).to_have_count(0, timeout=3000)
            page.goto(server.url + "/staff?status=rejected")
            card = _card(page, old)
            assert (card["level"], card["cue"], card["words"]) == (
                "none", "", "in Rejected for under a minute")
    finally:
        page.context.close()


@pytest.mark.parametrize("width", [390, 768])
def test_the_header_with_the_toggle_does_not_scroll_sideways(
        browser: Browser, server: LiveServer, width: int) -> None:
    page = _staff_page(browser, server, "/staff?status=uploaded", width=width)
    try:
        expect(page.locator("#sound-toggle")).to_be_visible()
        found = page.evaluate(OVERFLOW)
        assert found["scrollWidth"] <= found["innerWidth"], found
        assert not found["sticking"], found
    finally:
        page.context.close()


def test_a_failed_email_shows_live_on_the_dashboard_and_the_job_page(
        browser: Browser, server: LiveServer, smtp: SmtpServer) -> None:
    address = f"busy.{uuid.uuid4().hex[:6]}@university.edu"
    smtp.refuse[address] = "450 4.2.1 Mailbox busy, try again later"
    dashboard = _staff_page(browser, server, "/staff?status=uploaded")
    try:
        with server.api() as api:
            job_id = _new_card(dashboard, api, "failed email", email=address)
        alert = dashboard.locator(f'#failed-mail [data-failed-job="{job_id}"]')
        expect(alert).to_have_count(0)
        job_page = dashboard.context.new_page()
        job_page.goto(f"{server.url}/staff/jobs/{job_id}")
        expect(job_page.locator("#live-status")).to_contain_text("Live", timeout=5000)
        expect(job_page.locator("#messages tr.message-failed")).to_have_count(0)
        for page in (dashboard, job_page):
            page.evaluate("window.__notReloaded = true")

        smtp.refuse[address] = "550 5.1.1 User unknown"  # the next retry fails for good
        expect(alert).to_be_visible(timeout=20_000)
        expect(dashboard.locator("#failed-mail")).to_contain_text(
            "Emails that could not be delivered")
        expect(job_page.locator("#messages tr.message-failed")).to_have_count(1, timeout=5000)
        expect(job_page.locator("#messages")).to_contain_text("User unknown")
        expect(job_page.locator("#job-history")).to_contain_text("Email could not be delivered")
        for page in (dashboard, job_page):
            assert page.evaluate("window.__notReloaded === true")
    finally:
        smtp.refuse.pop(address, None)
        dashboard.context.close()


def test_the_sound_script_is_only_on_staff_pages(server: LiveServer) -> None:
    student_page = httpx.get(server.url + "/", timeout=30).text
    assert "attention.js" not in student_page
    assert httpx.get(server.url + "/static/attention.js", timeout=30).status_code == 200
