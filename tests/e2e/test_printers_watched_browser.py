"""Watched printers (issue 15) on the staff printers page in a real browser (headless
Chromium driven by Playwright), on the embedded default.

The printers' own reports (``QueueService.printer_reported``, what ``adapters.bambu``
hands on) are driven into the server's database from a separate process, as the watcher
in ``printcore bot`` would: X1C-1 prints Ann's claimed job (RUNNING 45 %, layer 120/300,
32 min left), X1C-2 runs a print nobody claimed, and Bob's print on X1C-3 fails with an
error code. Staff read what each printer says, see X1C-1's progress move from 45 % to
55 % without reloading (the live region follows ``reported`` printer events), and release
X1C-2 once the walk-up print is off the bed. Screenshots at desktop (1280x900) and phone
(390x844) widths go to ``$PRINTCORE_SCREENSHOTS`` (else the test's tmp_path); the
desktop page with all three cases is checked by axe-core (as tests/e2e/test_accessibility.py
does for every page) and no width scrolls sideways.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Dialog, Page, Playwright, expect, sync_playwright
from test_accessibility import BLOCKING, describe, run_axe

from _live import PASSWORD, STAFF, LiveServer
from _support import service_missing

CHROMIUM = Path("/usr/bin/chromium")
LAUNCH_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
               "--disable-background-networking", "--disable-component-update",
               "--disable-sync"]
WORKSTATION = "Watched printers desk"
DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 390, "height": 844}

# The database behind the page is covered on both kinds by the unit and SQL tests of
# printer_reported; the page itself is the same on either.
pytestmark = pytest.mark.parametrize("live_server", ["sqlite"], indirect=True)

# Run in a subprocess with PRINTCORE_HOME set: builds the container on the server's data,
# as ``printcore bot`` does, and applies each report of the JSON list in argv[1] in order.
# Each item: {"printer", "kind", "state", "key", and PrinterLiveState fields}; prints the
# outcome of each (``QueueService.printer_reported``'s word) one per line.
REPORTER = """
import json, sys
from datetime import UTC, datetime
from entrypoints.bootstrap import bootstrap
from entrypoints.settings import load_settings
from printcore.queue.printer_status import PrinterLiveState, PrinterReport

container = bootstrap(load_settings())
for item in json.loads(sys.argv[1]):
    now = datetime.now(UTC)
    live = PrinterLiveState(state=item.pop("state"), reported_at=now, **{
        k: item.pop(k) for k in list(item) if k not in ("printer", "kind", "key")})
    print(container.queue.printer_reported(PrinterReport(
        item["printer"], item["kind"], now, live, print_key=item.get("key"))))
"""


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


def _env(server: LiveServer) -> dict[str, str]:
    env = {**os.environ, "PRINTCORE_HOME": str(server.home)}
    env.pop("DATABASE_URL", None)
    return env


def _queue(server: LiveServer, *args: str) -> str:
    done = subprocess.run([sys.executable, "-m", "entrypoints.cli", "queue", *args],
                          env=_env(server), capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def _report(server: LiveServer, *reports: dict[str, Any]) -> list[str]:
    """Apply ``reports`` as the watcher would; returns printer_reported's outcomes."""
    done = subprocess.run([sys.executable, "-c", REPORTER, json.dumps(list(reports))],
                          env=_env(server), capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout.split()


def _shot(page: Page, folder: Path, name: str) -> Path:
    path = folder / f"watched-{name}.png"
    page.screenshot(path=str(path), full_page=True)
    print(f"screenshot: {path}")
    return path


def _no_sideways_scroll(page: Page) -> None:
    """Nothing on the page is wider than the viewport (a phone must not scroll sideways)."""
    widths = page.evaluate(
        "() => [document.documentElement.scrollWidth, document.documentElement.clientWidth]")
    assert widths[0] <= widths[1], f"page is {widths[0]}px wide in a {widths[1]}px viewport"
    for card in page.locator("section.printer").all():
        box = card.bounding_box()
        assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= widths[1], (
            f"{card.get_attribute('data-printer')} sticks out: {box}")


def _log_in(page: Page, server: LiveServer) -> None:
    page.goto(server.url + "/staff/printers")
    page.wait_for_url(re.compile(r"/staff/login\?next=/staff/printers"))
    page.locator("#workstation").fill(WORKSTATION)
    page.locator("#password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(server.url + "/staff/printers")


def _phone(browser: Browser, server: LiveServer, shots: Path, name: str) -> None:
    """The page at phone width: no sideways scroll, a readable progress bar on X1C-1."""
    phone = browser.new_context(viewport=PHONE, is_mobile=True, has_touch=True,
                                device_scale_factor=2)
    try:
        page = phone.new_page()
        _log_in(page, server)
        live = page.locator('[data-printer="X1C-1"] .live')
        expect(live).to_contain_text("printing, ")
        # As wide as the text column and tall enough to read, not a sliver.
        bar = live.locator("progress").bounding_box()
        assert bar is not None and bar["width"] >= 150 and bar["height"] >= 10, bar
        _no_sideways_scroll(page)
        _shot(page, shots, name)
    finally:
        phone.close()


def test_staff_see_what_watched_printers_say(
    live_server: LiveServer, browser: Browser, tmp_path: Path
) -> None:
    server = live_server
    shots = Path(os.environ.get("PRINTCORE_SCREENSHOTS") or tmp_path / "screenshots")
    shots.mkdir(parents=True, exist_ok=True)

    # A walk-up print starts on X1C-2 while it is free: nobody holds it.
    assert _report(server, {"printer": "X1C-2", "kind": "started", "state": "RUNNING",
                            "key": "walk-up-77", "percent": 3, "layer": 4,
                            "total_layers": 410, "remaining_minutes": 185,
                            "file": "someones_vase.gcode.3mf"}) == ["unclaimed"]
    # Ann and Bob join; X1C-2 is not offered while the walk-up print runs.
    _queue(server, "join", "wp-ann", "bracket", "1h", "--name", "Ann")
    _queue(server, "join", "wp-bob", "gear", "30m", "--name", "Bob")
    status = _queue(server, "status")
    assert re.search(r"X1C-1 +offered to Ann", status), status
    assert re.search(r"X1C-3 +offered to Bob", status), status
    _queue(server, "claim", "wp-ann", "X1C-1")
    _queue(server, "claim", "wp-bob", "X1C-3")
    assert _report(
        server,
        {"printer": "X1C-1", "kind": "started", "state": "RUNNING", "key": "ann-1",
         "percent": 45, "layer": 120, "total_layers": 300, "remaining_minutes": 32,
         "file": "Ann_bracket_PLA_0.2mm.gcode.3mf"},
        {"printer": "X1C-3", "kind": "started", "state": "RUNNING", "key": "bob-1",
         "percent": 0, "layer": 0, "total_layers": 150, "remaining_minutes": 30,
         "file": "gear.gcode.3mf"},
        {"printer": "X1C-3", "kind": "failed", "state": "FAILED", "key": "bob-1",
         "percent": 12, "layer": 18, "total_layers": 150, "remaining_minutes": 26,
         "file": "gear.gcode.3mf", "error_code": "0300-4000"},
    ) == ["started", "started", "closed"]

    context = browser.new_context(viewport=DESKTOP)
    try:
        page = context.new_page()
        _log_in(page, server)
        expect(page.locator("h1")).to_have_text("Printers and queue")

        ann = page.locator('[data-printer="X1C-1"]')
        expect(ann).to_have_attribute("data-status", "printing")
        live = ann.locator(".live")
        expect(live).to_have_attribute("data-live-state", "RUNNING")
        expect(live).to_contain_text("printing, 45 %, layer 120/300, 32m left")
        expect(live).to_contain_text("Ann_bracket_PLA_0.2mm.gcode.3mf")
        expect(live).to_contain_text(re.compile(r"as of \w{3} \d\d \w{3} \d\d:\d\d"))
        expect(live.locator("progress")).to_have_attribute("value", "45")
        expect(ann.locator(".print")).to_contain_text("Ann")
        expect(ann.locator(".print")).to_contain_text("bracket")

        walkup = page.locator('[data-printer="X1C-2"]')
        expect(walkup.locator(".live")).to_contain_text("printing, 3 %, layer 4/410, 3h 5m left")
        expect(walkup.locator(".unclaimed")).to_contain_text(
            "A print nobody claimed has run since")
        expect(walkup.locator(".unclaimed")).to_contain_text(
            "nothing is offered on X1C-2 until it ends")
        expect(walkup.get_by_role("button", name="Release")).to_be_visible()
        expect(walkup.locator(".holder")).to_have_count(0)
        # The queue has it as idle (nobody holds it), but it is busy: the card says so
        # and does not also call it free.
        expect(walkup).to_have_attribute("data-status", "idle")
        expect(walkup.locator("h3 .status")).to_have_text("Busy, not claimed")
        expect(walkup.locator("dl")).not_to_contain_text("waiting for the next member")

        failed = page.locator('[data-printer="X1C-3"]')
        expect(failed.locator(".live")).to_have_attribute("data-live-state", "FAILED")
        expect(failed.locator(".live")).to_contain_text("failed")
        expect(failed.locator(".live")).to_contain_text("Error 0300-4000")
        # A failed print shows no progress bar and no "left": it is not running.
        expect(failed.locator(".live progress")).to_have_count(0)
        expect(failed.locator(".live")).not_to_contain_text("left")
        expect(page.locator("table.history")).to_contain_text("gear")
        expect(page.locator("table.history")).to_contain_text("failed")

        _shot(page, shots, "01-desktop")
        _no_sideways_scroll(page)
        blocking = [v for v in run_axe(page) if v["impact"] in BLOCKING]
        assert not blocking, f"critical/serious axe violations\n{describe(blocking)}"
        _phone(browser, server, shots, "02-phone")

        # A new report arrives while the page is open: the live region changes without a
        # reload (the marker set on this window survives), 45 % → 55 %.
        page.evaluate("() => { window.__notReloaded = true; }")
        assert _report(server, {"printer": "X1C-1", "kind": "progress", "state": "RUNNING",
                                "key": "ann-1", "percent": 55, "layer": 165,
                                "total_layers": 300, "remaining_minutes": 26,
                                "file": "Ann_bracket_PLA_0.2mm.gcode.3mf"}) == ["moved"]
        expect(live).to_contain_text("printing, 55 %, layer 165/300, 26m left", timeout=20_000)
        expect(live.locator("progress")).to_have_attribute("value", "55")
        assert page.evaluate("() => window.__notReloaded === true"), "the page was reloaded"
        expect(page.locator("#live-status")).to_contain_text("Live · updated")

        # The walk-up print is off the bed: staff release X1C-2 (confirm, then who they
        # are), and it is free for the queue again.
        messages: list[str] = []

        def accept(dialog: Dialog) -> None:
            messages.append(dialog.message)
            dialog.accept()

        page.once("dialog", accept)
        walkup.locator("select").select_option(STAFF)
        walkup.get_by_role("button", name="Release").click()
        expect(page.locator(".flash")).to_be_visible()
        assert messages == ["Free X1C-2 for the queue? Do this only when the print nobody "
                            "claimed is off the bed."]
        expect(page.locator(".flash")).to_contain_text("X1C-2 is now idle.")
        expect(walkup.locator(".unclaimed")).to_have_count(0)
        expect(walkup).to_have_attribute("data-status", "idle")
        expect(walkup.get_by_role("button", name="Release")).to_have_count(0)
        expect(walkup.locator("h3 .status")).to_have_text("Idle")
        expect(walkup.locator("dl")).to_contain_text("waiting for the next member")
        _shot(page, shots, "03-released")
        # Free for the queue again: the next two members are offered X1C-2 and X1C-3
        # (X1C-3 was freed by the failed print).
        _queue(server, "join", "wp-cy", "hook", "20m", "--name", "Cy")
        _queue(server, "join", "wp-dee", "clip", "15m", "--name", "Dee")
        status = _queue(server, "status")
        assert re.search(r"X1C-2 +offered to (Cy|Dee)", status), status
        assert re.search(r"X1C-3 +offered to (Cy|Dee)", status), status
        expect(walkup).to_have_attribute("data-status", "offered", timeout=20_000)
    finally:
        context.close()

    _phone(browser, server, shots, "04-phone-released")
