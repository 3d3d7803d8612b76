"""The job page's interactive 3D view (static/viewer.js, vendored three.js 0.187.0).

A real server (SQLite) gets the fixtures over HTTP; Chromium (SwiftShader WebGL, no GPU)
opens each job page, presses "View in 3D" and waits for the view. Checked: the view
draws exactly the triangles the fixture README gives for STL (binary), OBJ and 3MF
(plain and a Bambu Studio project), three.js loads only on demand (no request for it
before the click), and nothing breaks the page's CSP (no console errors).

Bad inputs tried: a download route that answers 404 (the file was removed from storage
after the page was drawn) — the view says it could not show the file, the page keeps
working.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from _live import PASSWORD, LiveServer, submit
from _support import service_missing

CHROMIUM = Path("/usr/bin/chromium")

#: Triangles per fixture, from ../shared/fixtures/README.md.
TRIANGLES = {
    "rear_case.stl": 18_808,
    "fandisk.obj": 5_750,
    "featuretype.3mf": 2_208,
    "Original3DBenchy.3mf": 225_154,
}


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    from playwright.sync_api import sync_playwright

    if not CHROMIUM.exists():
        service_missing(f"Chromium not found at {CHROMIUM}")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True,
            args=["--no-sandbox", "--use-angle=swiftshader", "--enable-unsafe-swiftshader"])
        try:
            yield browser
        finally:
            browser.close()


def _staff_page(browser: object, server: LiveServer) -> object:
    page = browser.new_page(viewport={"width": 1280, "height": 900})  # type: ignore[attr-defined]
    page.goto(server.url + "/staff/login")
    page.fill("input[name=workstation]", "Viewer desk")
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    return page


@pytest.mark.parametrize("live_server", ["sqlite"], indirect=True)
@pytest.mark.parametrize("name", list(TRIANGLES))
def test_view_in_3d_draws_every_triangle_on_demand(
        live_server: LiveServer, fixtures_dir: Path, browser: object, name: str) -> None:
    from playwright.sync_api import expect

    with live_server.api() as api:
        job_id = submit(api, fixtures_dir / "models" / name)
    page = _staff_page(browser, live_server)
    errors: list[str] = []
    three_requests: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("request", lambda r: three_requests.append(r.url) if "/vendor/three-" in r.url
            else None)
    try:
        page.goto(f"{live_server.url}/staff/jobs/{job_id}")
        button = page.get_by_role("button", name="View in 3D")
        expect(button).to_be_visible()
        assert three_requests == [], "three.js must load only when asked for"
        button.click()
        viewer = page.locator("#model-viewer")
        expect(viewer).to_have_attribute("data-viewer-state", "ready", timeout=60_000)
        assert int(viewer.get_attribute("data-viewer-triangles") or 0) == TRIANGLES[name]
        expect(viewer.locator("canvas")).to_be_visible()
        expect(viewer.locator(".viewer-note")).to_contain_text("triangles")
        assert button.get_attribute("aria-expanded") == "true"
        assert three_requests, "three.js was not loaded"
        assert errors == []
        # A second press hides the view again (and a third shows it, without reloading).
        button.click()
        expect(viewer).to_be_hidden()
    finally:
        page.close()


@pytest.mark.parametrize("live_server", ["sqlite"], indirect=True)
def test_a_model_gone_from_storage_says_so(
        live_server: LiveServer, fixtures_dir: Path, browser: object) -> None:
    from playwright.sync_api import expect

    with live_server.api() as api:
        job_id = submit(api, fixtures_dir / "models" / "Moon.stl")
    page = _staff_page(browser, live_server)
    try:
        page.goto(f"{live_server.url}/staff/jobs/{job_id}")
        button = page.get_by_role("button", name="View in 3D")
        # The stored file disappears after the page was drawn: point the button at a
        # name the job does not have (the route answers 404).
        button.evaluate("b => b.dataset.viewerSrc = b.dataset.viewerSrc + '-gone'")
        button.click()
        viewer = page.locator("#model-viewer")
        expect(viewer).to_have_attribute("data-viewer-state", "failed", timeout=30_000)
        expect(viewer).to_contain_text("could not show this file")
        expect(viewer).to_contain_text("404")
        expect(page.locator("#job-head h1")).to_contain_text(f"Job #{job_id}")
    finally:
        page.close()
