"""The retention page (issue 13) in Chromium on a real SQLite server: preview, the
password asked again (a wrong one refused, nothing removed), apply, the archive listed.

The lab: a job rejected and one paid and picked up, both "40 days ago" (their events
moved back in the database, the only way to age a live server's jobs), and a job
rejected today. Retention at 30 days must take the two old ones only. The database
behind the page is covered on SQLite and PostgreSQL by tests/integration/test_retention.py.

Bad inputs tried: a wrong password, no password (the form's ``required`` bypassed by a
plain post), ``older_than_days`` of ``abc`` and ``0``, ``mode`` ``shred``, a post without
the CSRF token, an archive name that is not listed (``../printcore.db``), no login.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Iterator

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright
from test_browser import CHROMIUM, LAUNCH_ARGS, _log_in

from _live import (
    PASSWORD,
    STAFF,
    LiveServer,
    confirm_token,
    login,
    start_server,
    stop_server,
    submit,
    upload_sliced,
)
from _support import FIXTURES, service_missing

MODEL = FIXTURES / "models" / "HalfDonut_ascii.stl"
SLICED = FIXTURES / "sliced" / "square_ring_plate_1.gcode"
PAGE = "/staff/admin/retention"


def _ok(r: httpx.Response) -> dict[str, object]:
    assert r.status_code == 200, r.text
    data: dict[str, object] = r.json()
    return data


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LiveServer, dict[str, int]]]:
    server = start_server(tmp_path_factory.mktemp("retention-home"), {}, "sqlite")
    ids: dict[str, int] = {}
    with server.api() as api:
        headers = login(api)
        for key in ("old_rejected", "new_rejected"):
            ids[key] = submit(api, MODEL, student_name=f"Rita {key.split('_')[0].title()}")
            _ok(api.post(f"/jobs/{ids[key]}/reject", headers=headers,
                         json={"staff_name": STAFF, "custom_reason": "Too thin to print."}))
        job_id = ids["old_paid"] = submit(api, MODEL, student_name="Pat Paid")
        r = upload_sliced(api, headers, job_id, SLICED)
        assert r.status_code == 201, r.text
        _ok(api.post(f"/jobs/{job_id}/approve", headers=headers, json={
            "staff_name": STAFF, "weight_g": 100, "time_hours": 2,
            "authoritative_file": r.json()["file"]["stored_name"]}))
        _ok(api.post("/confirm", json={"token": confirm_token(server, job_id)}))
        for step in ("mark-printing", "mark-complete"):
            _ok(api.post(f"/jobs/{job_id}/{step}", headers=headers, json={"staff_name": STAFF}))
        _ok(api.post(f"/jobs/{job_id}/payment", headers=headers, json={
            "staff_name": STAFF, "grams": 100, "txn_no": "TX-1", "picked_up_by": "Pat"}))
    db = sqlite3.connect(server.home / "printcore.db")
    with db:
        db.execute("UPDATE events SET at = datetime(at, '-40 days') WHERE subject = 'job' "
                   "AND subject_id IN (?, ?)", (ids["old_rejected"], ids["old_paid"]))
    db.close()
    yield server, ids
    stop_server(server)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not CHROMIUM.exists():
        service_missing(f"Chromium not found at {CHROMIUM}")
    playwright = sync_playwright().start()
    try:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True,
                                              args=LAUNCH_ARGS)
    except Exception as err:
        playwright.stop()
        service_missing(f"Chromium at {CHROMIUM} does not start: {err}")
    yield chromium
    chromium.close()
    playwright.stop()


def _status(server: LiveServer, job_id: int) -> int:
    with server.api() as api:
        return api.get(f"/jobs/{job_id}", headers=login(api)).status_code


def _csrf(page: Page) -> str:
    return str(page.locator('#retention-apply-form input[name="csrf_token"]').input_value())


def test_preview_refuse_then_apply_in_the_browser(lab: tuple[LiveServer, dict[str, int]],
                                                  browser: Browser) -> None:
    server, ids = lab
    old = [ids["old_rejected"], ids["old_paid"]]
    page = browser.new_page()
    page.goto(server.url + PAGE)
    page.wait_for_url(re.compile(r"/staff/login\?next="))  # no login: sent to log in
    _log_in(page, server)
    page.goto(server.url + PAGE)
    expect(page.locator("#no-archives")).to_be_visible()
    page.locator("#older-than-days").fill("30")
    page.get_by_label("Archive (zip first, then remove)").check()
    page.locator("#retention-preview").click()
    page.wait_for_url(re.compile(r"older_than_days=30"))
    rows = page.locator("#retention-jobs tbody tr")
    expect(rows).to_have_count(2)
    assert [int(r) for r in rows.evaluate_all("rs => rs.map(r => r.dataset.job)")] == old
    summary = page.locator("#retention-summary")
    expect(summary.locator('tr[data-status="rejected"] [data-figure="count"]')).to_have_text("1")
    expect(summary.locator('tr[data-status="paid_picked_up"] [data-figure="count"]')
           ).to_have_text("1")
    assert int(page.locator("#retention-plan").get_attribute("data-bytes") or 0) > 0

    # the wrong password: refused with the field's message, nothing removed
    form = page.locator("#retention-apply-form")
    expect(form.locator('input[name="staff_name"]')).to_have_value(STAFF)
    form.locator('input[name="confirm_password"]').fill("not the password")
    form.locator("#retention-apply").click()
    expect(page.locator("#admin-error")).to_contain_text("password was wrong")
    expect(page.locator("#err-confirm_password")).to_contain_text("Wrong password")
    assert [_status(server, i) for i in old] == [200, 200]
    assert not (server.home / "archives").exists() or not list((server.home / "archives").iterdir())

    # bad inputs as plain posts (no browser checks in the way): nothing removed
    cookies = {c["name"]: c["value"] for c in page.context.cookies()}
    token = _csrf(page)
    good = {"older_than_days": "30", "mode": "archive", "staff_name": STAFF,
            "confirm_password": PASSWORD, "csrf_token": token}
    with httpx.Client(base_url=server.url, cookies=cookies, timeout=60) as http:
        for change, status in (({"confirm_password": ""}, 422),
                               ({"older_than_days": "abc"}, 422),
                               ({"older_than_days": "0"}, 422),
                               ({"mode": "shred"}, 422),
                               ({"csrf_token": ""}, 403)):
            r = http.post(PAGE + "/apply", data={**good, **change})
            assert r.status_code == status, (change, r.status_code)
            assert 'role="alert"' in r.text
        assert http.get(PAGE + "/archives/..%2Fprintcore.db").status_code == 404
        assert http.get(PAGE, params={"older_than_days": "abc"}).status_code == 422
    assert [_status(server, i) for i in old] == [200, 200]

    # the right password: archived, listed, the jobs gone, the young one kept
    page.goto(server.url + PAGE + "?older_than_days=30&mode=archive")
    form = page.locator("#retention-apply-form")
    form.locator('input[name="confirm_password"]').fill(PASSWORD)
    form.locator("#retention-apply").click()
    expect(page.locator(".flash")).to_contain_text("Archived 2 job(s)")
    expect(page.locator("#retention-nothing")).to_be_visible()
    archives = list((server.home / "archives").glob("printcore-archive-*.zip"))
    assert len(archives) == 1
    expect(page.locator(f'#retention-archives tr[data-archive="{archives[0].name}"]')
           ).to_be_visible()
    expect(page.locator("#retention-runs tbody tr")).to_have_count(1)
    expect(page.locator("#retention-runs tbody tr").first).to_contain_text(STAFF)
    assert [_status(server, i) for i in old] == [404, 404]
    assert _status(server, ids["new_rejected"]) == 200
    with httpx.Client(base_url=server.url, cookies=cookies, timeout=60) as http:
        r = http.get(f"{PAGE}/archives/{archives[0].name}")
        assert r.status_code == 200 and r.content == archives[0].read_bytes()
    page.close()
