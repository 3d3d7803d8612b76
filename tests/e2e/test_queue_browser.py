"""The printers-and-queue page in a real browser (headless Chromium driven by Playwright),
on the embedded default: staff reach it from the nav, cancel and then accept the confirm
before removing a ticket, take a printer out of service and put it back, and cannot send
a form without choosing who they are. Screenshots go to ``$PRINTCORE_SCREENSHOTS`` (else
the test's tmp_path)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Dialog, Page, Playwright, expect, sync_playwright

from _live import PASSWORD, STAFF, LiveServer
from _support import service_missing

CHROMIUM = Path("/usr/bin/chromium")
LAUNCH_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
               "--disable-background-networking", "--disable-component-update",
               "--disable-sync"]
WORKSTATION = "Queue browser desk"

# The database behind the page is covered on both kinds by test_queue_web.py.
pytestmark = pytest.mark.parametrize("live_server", ["sqlite"], indirect=True)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not CHROMIUM.exists():
        service_missing(f"Chromium not found at {CHROMIUM}")
    playwright: Playwright = sync_playwright().start()
    try:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True,
                                              args=LAUNCH_ARGS)
    except Exception as err:
        playwright.stop()
        service_missing(f"Chromium at {CHROMIUM} does not start: {err}")
    yield chromium
    chromium.close()
    playwright.stop()


def _queue(server: LiveServer, *args: str) -> str:
    env = {**os.environ, "PRINTCORE_HOME": str(server.home)}
    env.pop("DATABASE_URL", None)
    done = subprocess.run([sys.executable, "-m", "entrypoints.cli", "queue", *args], env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def _shot(page: Page, folder: Path, name: str) -> None:
    path = folder / f"queue-{name}.png"
    page.screenshot(path=str(path), full_page=True)
    print(f"screenshot: {path}")


def test_staff_work_the_queue_in_the_browser(
    live_server: LiveServer, browser: Browser, tmp_path: Path
) -> None:
    server = live_server
    shots = Path(os.environ.get("PRINTCORE_SCREENSHOTS") or tmp_path / "screenshots")
    shots.mkdir(parents=True, exist_ok=True)
    for member, job, est in (("ann", "bracket", "1h"), ("bob", "gear", "30m"),
                             ("cy", "hook", "2h"), ("dee", "phone stand", "45m")):
        _queue(server, "join", f"qb-{member}", job, est, "--name", member.capitalize())
    dee = re.search(r"#(\d+) Dee", _queue(server, "status"))
    assert dee, "Dee's ticket is not in the queue"
    ticket = dee.group(1)

    context = browser.new_context(viewport={"width": 1280, "height": 900})
    try:
        page = context.new_page()
        page.goto(server.url + "/staff/printers")
        page.wait_for_url(re.compile(r"/staff/login\?next=/staff/printers"))
        page.locator("#workstation").fill(WORKSTATION)
        page.locator("#password").fill(PASSWORD)
        page.get_by_role("button", name="Log in").click()
        page.wait_for_url(server.url + "/staff/printers")
        page.goto(server.url + "/staff")
        page.get_by_role("link", name="Printers", exact=True).click()
        page.wait_for_url(server.url + "/staff/printers")
        expect(page.locator("h1")).to_have_text("Printers and queue")
        expect(page.locator(".lab-state")).to_have_text("Open now")
        for name in ("X1C-1", "X1C-2", "X1C-3"):
            card = page.locator(f'[data-printer="{name}"]')
            expect(card).to_have_attribute("data-status", "offered")
            expect(card.locator(".claim-deadline")).to_contain_text(re.compile(r" C[SD]T "))
        row = page.locator(f'tr[data-ticket="{ticket}"]')
        expect(row.locator(".position")).to_have_text("1")
        _shot(page, shots, "01-printers")

        # Nobody chosen in the header yet: each form asks, and cannot go without a name
        # (the select is required).
        expect(page.locator("#acting-note")).to_contain_text("Choose who you are")
        row.locator("select").select_option("")
        row.get_by_role("button", name="Remove").click()
        expect(page.locator(".flash")).to_have_count(0)
        expect(row).to_be_visible()

        # Remove: the confirm names the ticket; Cancel keeps it, OK removes it.
        messages: list[str] = []

        def dismiss(dialog: Dialog) -> None:
            messages.append(dialog.message)
            dialog.dismiss()

        page.once("dialog", dismiss)
        row.locator("select").select_option(STAFF)
        row.get_by_role("button", name="Remove").click()
        expect(row).to_be_visible()
        assert messages == [f"Remove ticket #{ticket} (Dee: phone stand) from the queue?"]
        page.once("dialog", lambda dialog: dialog.accept())
        row.get_by_role("button", name="Remove").click()
        expect(page.locator(".flash")).to_have_text(
            f"Removed ticket #{ticket} — Dee, “phone stand” — from the queue.")
        expect(page.locator(f'tr[data-ticket="{ticket}"]')).to_have_count(0)
        assert f"#{ticket} Dee" not in _queue(server, "status")

        # Out of service (Bob held it: confirm), then back in service; the staff member
        # picked in the form's fallback dropdown is now the workstation's: no form asks.
        card = page.locator('[data-printer="X1C-2"]')
        expect(page.locator("#whoami")).to_have_value(STAFF)
        expect(page.locator("#acting-note")).to_contain_text(f"recorded as {STAFF}")
        expect(card.locator("select")).to_have_count(0)
        expect(card.locator('input[name="staff_name"]')).to_have_value(STAFF)
        page.once("dialog", lambda dialog: dialog.accept())
        card.get_by_role("button", name="Take out of service").click()
        expect(page.locator(".flash")).to_contain_text("X1C-2 is out of service; Bob is back")
        expect(card).to_have_attribute("data-status", "out_of_service")
        expect(card.locator(".status")).to_have_text("Out of service")
        _shot(page, shots, "02-out-of-service")
        card.get_by_role("button", name="Put back in service").click()
        expect(page.locator(".flash")).to_have_text("X1C-2 is back in service, now offered to Bob.")
        expect(card).to_have_attribute("data-status", "offered")
        assert "X1C-2        offered to Bob, claim by" in _queue(server, "status")
        _shot(page, shots, "03-back")
    finally:
        context.close()
