"""Approving with the slicer's saves (issue 12) on a real server per database: a real
sliced file dropped into the job's folder on the storage (as the slicer saves it after
the ``print3d://`` link opened the model) is listed by ``GET
/api/v1/jobs/{id}/sliced-candidates`` and the approval form, adopted by ``POST
.../sliced-candidates/adopt`` or by approving with it (plain form posts), and in a
browser: "Rescan for newer saves" finds it, preselected, and the job is approved with it.

Bad inputs tried (each answers 4xx with the field named and records no event): names
``../etc/passwd.gcode``, ``a/b.gcode``, ``..``, a missing name and one that is not text,
a file no longer in the folder, a symlink out of the folder, an empty file, a ".gcode.3mf"
that is not a zip, the student's own model, a stale version, no login.
"""

from __future__ import annotations

import os
import re
import shutil
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import expect, sync_playwright
from test_browser import CHROMIUM, LAUNCH_ARGS, _log_in

from _live import PASSWORD, STAFF, LiveServer, login, submit
from _support import FIXTURES, service_missing
from printcore.requests.naming import job_basename

MODEL = FIXTURES / "models" / "Moon.stl"
WORMDRIVE = FIXTURES / "sliced" / "wormdrive.gcode.3mf"
RING = FIXTURES / "sliced" / "square_ring_plate_1.gcode"
OLD = time.time() - 600


def drop(server: LiveServer, job_id: int, student: str, source: Path | bytes, name: str,
         at: float = OLD) -> Path:
    """Put a file into the job's folder as a slicer would (mtime ``at``, settled)."""
    folder = server.storage / "Uploaded" / job_basename(student, "filament", "Red", job_id)
    assert folder.is_dir(), folder
    target = folder / name
    if isinstance(source, bytes):
        target.write_bytes(source)
    else:
        shutil.copyfile(source, target)
    os.utime(target, (at, at))
    return target


@pytest.fixture(scope="module")
def headers(live_server: LiveServer) -> dict[str, str]:
    with live_server.api() as api:
        return login(api, "Saves desk")


@pytest.fixture
def api(live_server: LiveServer, headers: dict[str, str]) -> Iterator[httpx.Client]:
    with live_server.api() as client:
        client.headers.update(headers)
        yield client


@pytest.fixture(scope="module")
def web(live_server: LiveServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=live_server.url, timeout=60) as client:
        page = client.get("/staff/login").text
        csrf = re.search(r'name="csrf_token" value="([^"]+)"', page)
        assert csrf
        r = client.post("/staff/login?next=/staff", data={
            "csrf_token": csrf.group(1), "workstation": "Saves web", "password": PASSWORD})
        assert r.status_code == 303, r.text
        yield client


def new_job(api: httpx.Client) -> tuple[int, str]:
    student = f"Sam Saves{uuid.uuid4().hex[:6]}"
    return submit(api, MODEL, student_name=student), student


def kinds(api: httpx.Client, job_id: int) -> list[str]:
    return [e["kind"] for e in api.get(f"/jobs/{job_id}").json()["events"]]


def test_api_lists_ranks_and_adopts_saves(live_server: LiveServer, api: httpx.Client,
                                          tmp_path: Path) -> None:
    job_id, student = new_job(api)
    drop(live_server, job_id, student, RING, "ring.gcode", OLD + 60)
    drop(live_server, job_id, student, WORMDRIVE, "wormdrive.gcode.3mf")
    drop(live_server, job_id, student, b"", "empty.gcode")
    drop(live_server, job_id, student, b"not a zip at all", "fake.gcode.3mf")
    outside = tmp_path / "outside.gcode"
    outside.write_text("; secret")
    link = drop(live_server, job_id, student, b"x", "link.gcode")
    link.unlink()
    link.symlink_to(outside)

    r = api.get(f"/jobs/{job_id}/sliced-candidates")
    assert r.status_code == 200, r.text
    body = r.json()
    # .gcode.3mf before .gcode (though older); fake and wormdrive share an mtime: by name.
    assert [c["name"] for c in body["candidates"]] == [
        "fake.gcode.3mf", "wormdrive.gcode.3mf", "ring.gcode"]
    assert body["recommended"] == "saved:fake.gcode.3mf"
    assert all(c["source"] == "slicer save" and not c["known"] for c in body["candidates"])
    assert {s["name"]: s["reason"] for s in body["skipped"]} == {
        "empty.gcode": "empty", "link.gcode": "a link, not a file the slicer saved"}

    events = kinds(api, job_id)
    version = api.get(f"/jobs/{job_id}").json()["version"]
    bad: list[tuple[dict[str, object], int]] = [
        ({"staff_name": STAFF, "name": "../etc/passwd.gcode"}, 422),
        ({"staff_name": STAFF, "name": "a/b.gcode"}, 422),
        ({"staff_name": STAFF, "name": ".."}, 422),
        ({"staff_name": STAFF}, 422),
        ({"staff_name": STAFF, "name": 7}, 422),
        ({"staff_name": STAFF, "name": "gone.gcode"}, 422),
        ({"staff_name": STAFF, "name": "link.gcode"}, 415),
        ({"staff_name": STAFF, "name": "empty.gcode"}, 415),
        ({"staff_name": STAFF, "name": "fake.gcode.3mf"}, 415),
        ({"staff_name": STAFF, "name": "JaneDoe.stl"}, 422),
        ({"staff_name": STAFF, "name": "wormdrive.gcode.3mf", "version": version + 5}, 409),
    ]
    for payload, status in bad:
        r = api.post(f"/jobs/{job_id}/sliced-candidates/adopt", json=payload)
        assert r.status_code == status, (payload, r.text)
        if status == 422:
            assert "name" in r.json()["error"]["fields"], r.text
    assert kinds(api, job_id) == events  # nothing recorded
    assert outside.read_text() == "; secret"
    with live_server.api() as anonymous:
        assert anonymous.get(f"/jobs/{job_id}/sliced-candidates").status_code == 401

    r = api.post(f"/jobs/{job_id}/sliced-candidates/adopt",
                 json={"staff_name": STAFF, "name": "saved:wormdrive.gcode.3mf",
                       "version": version})
    assert r.status_code == 201, r.text
    adopted = r.json()
    assert adopted["estimate"]["seconds"] == 3256 and adopted["estimate"]["grams"] == 10.48
    assert adopted["prefill"] == {"weight_g": 10.48, "time_hours": 1.0, "cost_cents": 300}
    stored = adopted["file"]["stored_name"]
    assert stored.endswith("_sliced.gcode.3mf")
    detail = api.get(f"/jobs/{job_id}").json()
    last = detail["events"][-1]
    assert last["kind"] == "add_sliced_file" and last["details"]["source"] == "slicer save"
    assert last["actor"]["name"] == STAFF
    names = [c["name"] for c in api.get(f"/jobs/{job_id}/sliced-candidates").json()[
        "candidates"]]
    assert stored in names and "wormdrive.gcode.3mf" not in names


def test_form_approves_with_a_save_after_showing_its_estimate(
        live_server: LiveServer, api: httpx.Client, web: httpx.Client) -> None:
    job_id, student = new_job(api)
    drop(live_server, job_id, student, WORMDRIVE, "plate_1.gcode.3mf")
    page = web.get(f"/staff/jobs/{job_id}").text
    assert re.search(r'value="saved:plate_1.gcode.3mf"\s+checked', page), page
    assert "data-cost-input" in page and "data-cost-output" in page
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)  # type: ignore[union-attr]
    version = re.search(r'name="version" value="(\d+)"', page).group(1)  # type: ignore[union-attr]
    form = {"csrf_token": csrf, "staff_name": STAFF, "version": version,
            "weight_g": "", "time_hours": ""}

    # A bad choice: the form again, the field marked, nothing recorded.
    events = kinds(api, job_id)
    for choice in ("saved:../../etc/passwd.gcode", "saved:gone.gcode.3mf"):
        r = web.post(f"/staff/jobs/{job_id}/approve",
                     data={**form, "authoritative_file": choice})
        assert r.status_code == 422, r.text
        assert 'id="err-authoritative_file"' in r.text
    assert kinds(api, job_id) == events

    # Approving with the save adopts it, then shows its estimate to check.
    r = web.post(f"/staff/jobs/{job_id}/approve",
                 data={**form, "authoritative_file": "saved:plate_1.gcode.3mf"})
    assert r.status_code == 303, r.text
    page = web.get(r.headers["location"]).text
    assert "taken from the slicer&#39;s saves" in page or "taken from the slicer's saves" in page
    assert 'name="weight_g"' in page and 'value="10.48"' in page and 'value="1.0"' in page
    stored = re.search(r'value="([^"]+_sliced\.gcode\.3mf)"\s+checked', page)
    assert stored, page
    version = re.search(r'name="version" value="(\d+)"', page).group(1)  # type: ignore[union-attr]
    r = web.post(f"/staff/jobs/{job_id}/approve", data={
        **form, "version": version, "authoritative_file": stored.group(1),
        "weight_g": "10.48", "time_hours": "1.0"})
    assert r.status_code == 303, r.text
    job = api.get(f"/jobs/{job_id}").json()
    assert job["status"] == "pending" and job["authoritative_file"] == stored.group(1)
    assert job["cost_cents"] == 300
    assert kinds(api, job_id)[-2:] == ["add_sliced_file", "approve"]


def test_form_adopts_and_approves_in_one_post_when_the_figures_agree(
        live_server: LiveServer, api: httpx.Client, web: httpx.Client) -> None:
    job_id, student = new_job(api)
    drop(live_server, job_id, student, WORMDRIVE, "plate_1.gcode.3mf")
    page = web.get(f"/staff/jobs/{job_id}").text
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)  # type: ignore[union-attr]
    version = re.search(r'name="version" value="(\d+)"', page).group(1)  # type: ignore[union-attr]
    r = web.post(f"/staff/jobs/{job_id}/approve", data={
        "csrf_token": csrf, "staff_name": STAFF, "version": version,
        "authoritative_file": "saved:plate_1.gcode.3mf", "weight_g": "10.48",
        "time_hours": "1"})
    assert r.status_code == 303, r.text
    job = api.get(f"/jobs/{job_id}").json()
    assert job["status"] == "pending" and job["authoritative_file"].endswith("_sliced.gcode.3mf")


# --- in a browser -------------------------------------------------------------------


@pytest.mark.parametrize("live_server", ["sqlite"], indirect=True)
def test_browser_rescan_finds_the_save_and_approves_with_it(
        live_server: LiveServer, api: httpx.Client) -> None:
    job_id, student = new_job(api)
    with _chromium() as chromium:
        page = chromium.new_page(viewport={"width": 390, "height": 844})
        _log_in(page, live_server)
        page.goto(f"{live_server.url}/staff/jobs/{job_id}")
        page.locator("#action-approve > summary").click()  # the approval dialog
        form = page.locator("#approve-form")
        expect(form.locator(".candidate")).to_have_count(0)
        drop(live_server, job_id, student, WORMDRIVE, "wormdrive.gcode.3mf")
        form.get_by_role("button", name="Rescan for newer saves").click()
        page.wait_for_url(re.compile(rf"/staff/jobs/{job_id}\?rescan=1"))
        radio = page.get_by_role("radio", name=re.compile("wormdrive.gcode.3mf"))
        expect(radio).to_be_checked()
        # The dialog itself never scrolls sideways at phone width (long file names wrap).
        wide = page.evaluate("""() => [...document.querySelectorAll('#approve-form, #approve-form *')]
            .filter(e => e.getBoundingClientRect().right > 390)
            .map(e => e.tagName + '.' + e.className + ' ' + Math.round(e.getBoundingClientRect().right))""")
        assert wide == []
        select = form.locator('select[name="staff_name"]')
        if select.count():
            select.select_option(STAFF)
        form.get_by_role("button", name="Approve and email the student").click()
        page.wait_for_url(re.compile(rf"/staff/jobs/{job_id}\?file="))
        expect(page.locator('input[name="weight_g"]')).to_have_value("10.48")
        expect(page.locator('input[name="time_hours"]')).to_have_value("1.0")
        expect(page.get_by_role("radio", name=re.compile(r"_sliced\.gcode\.3mf"))).to_be_checked()
        form = page.locator("#approve-form")
        select = form.locator('select[name="staff_name"]')
        if select.count():
            select.select_option(STAFF)
        form.get_by_role("button", name="Approve and email the student").click()
        expect(page.locator("h1 .status")).to_have_text("Pending confirmation")


class _chromium:
    """Debian's Chromium under Playwright (fails under CI=true when missing)."""

    def __enter__(self):  # type: ignore[no-untyped-def]
        if not CHROMIUM.exists():
            service_missing(f"Chromium not found at {CHROMIUM}")
        self._pw = sync_playwright().start()
        try:
            self._browser = self._pw.chromium.launch(
                executable_path=str(CHROMIUM), headless=True, args=LAUNCH_ARGS)
        except Exception as err:
            self._pw.stop()
            service_missing(f"Chromium at {CHROMIUM} does not start: {err}")
        return self._browser

    def __exit__(self, *exc: object) -> None:
        self._browser.close()
        self._pw.stop()
