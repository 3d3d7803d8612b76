"""Correcting an approved job's quote before the student confirms (issue 13), on a real
server per database (SQLite, PostgreSQL).

* API ``POST /jobs/{id}/requote``: the figures change (cost from the price list, or given
  in cents), one ``requote`` event with old/new/reason and who, a ``requoted`` email with
  a new link; the old link is refused (API 4xx ``token_used``) and its page says a newer
  quote was sent, with the new cost and the reason; the new link confirms. Documented in
  the OpenAPI document.
* The plain form on the job page (no JavaScript): refused values come back with the
  message beside the field and every typed value kept; accepted, the page says so and the
  history shows the correction.
* Chromium: the "Correct the quote" dialog, filled and sent.

Bad inputs tried: weight 0, "abc", missing; time -1; no reason, a blank one, 501
characters; cost_cents -5, 1.5, "x", true, above the maximum; the same quote as now; a
stale version (409); a requote of an uploaded, a confirmed and an unknown job (409, 409,
404); no login (401); on the form a cost of "4.505", "-1", "abc" dollars.
"""

from __future__ import annotations

import email
import re
import time
import uuid
from collections.abc import Iterator
from email import policy

import attrs
import httpx
import pytest
from _abuse_kit import csrf_of, web_login
from playwright.sync_api import Browser, expect, sync_playwright
from test_browser import CHROMIUM, LAUNCH_ARGS, _log_in

from _live import STAFF, LiveServer, confirm_token, login, submit, upload_sliced
from _support import FIXTURES, service_missing
from printcore.requests.lifecycle import MAX_QUOTE_CENTS

MODEL = FIXTURES / "models" / "Moon.stl"
SLICED = FIXTURES / "sliced" / "wormdrive.gcode.3mf"


@attrs.frozen
class Lab:
    server: LiveServer
    headers: dict[str, str]


@pytest.fixture(scope="module")
def lab(live_server: LiveServer) -> Lab:
    with live_server.api() as api:
        return Lab(live_server, login(api, "Quote desk"))


@pytest.fixture
def api(lab: Lab) -> Iterator[httpx.Client]:
    with lab.server.api() as client:
        client.headers.update(lab.headers)
        yield client


def ok(r: httpx.Response) -> dict[str, object]:
    assert r.status_code == 200, r.text
    data: dict[str, object] = r.json()
    return data


def pending_job(lab: Lab, api: httpx.Client) -> int:
    """Approved at 20 g of filament, 1 h: $3.00 (the minimum charge)."""
    job_id = submit(api, MODEL, student_name=f"Quinn Quote {uuid.uuid4().hex[:6]}")
    r = upload_sliced(api, lab.headers, job_id, SLICED)
    assert r.status_code == 201, r.text
    job = ok(api.post(f"/jobs/{job_id}/approve", json={
        "staff_name": STAFF, "weight_g": 20, "time_hours": 1,
        "authoritative_file": r.json()["file"]["stored_name"]}))
    assert job["cost_cents"] == 300
    return job_id


def requoted_email(server: LiveServer, job_id: int, wait: float = 20.0) -> tuple[str, str]:
    """(plain text, confirmation token) of the newest ``requoted`` email for the job."""
    deadline = time.monotonic() + wait
    while True:
        for path in sorted(server.mail.glob(f"*-job{job_id}-requoted-*.eml"), reverse=True):
            message = email.message_from_bytes(path.read_bytes(), policy=policy.default)
            text = message.get_body(("plain",)).get_content()  # type: ignore[union-attr]
            match = re.search(r"/confirm/(\S+)", text)
            assert match, text
            return text, match.group(1)
        if time.monotonic() > deadline:
            raise AssertionError(f"no requoted email for job {job_id} in {server.mail}")
        time.sleep(0.05)


def test_requote_over_the_api(lab: Lab, api: httpx.Client) -> None:
    job_id = pending_job(lab, api)
    old_token = confirm_token(lab.server, job_id)
    job = ok(api.get(f"/jobs/{job_id}"))
    version = job["version"]
    url = f"/jobs/{job_id}/requote"
    good = {"staff_name": STAFF, "weight_g": 45, "time_hours": 2.2,
            "reason": "Re-sliced: the supports were missing."}

    for bad, field in (({"weight_g": 0}, "weight_g"), ({"weight_g": "abc"}, "weight_g"),
                       ({"weight_g": None}, "weight_g"), ({"time_hours": -1}, "time_hours"),
                       ({"reason": ""}, "reason"), ({"reason": "  "}, "reason"),
                       ({"reason": "x" * 501}, "reason"), ({"cost_cents": -5}, "cost_cents"),
                       ({"cost_cents": 1.5}, "cost_cents"), ({"cost_cents": "x"}, "cost_cents"),
                       ({"cost_cents": True}, "cost_cents"),
                       ({"cost_cents": MAX_QUOTE_CENTS + 1}, "cost_cents"),
                       ({"weight_g": 20, "time_hours": 1}, "weight_g")):  # unchanged
        r = api.post(url, json={**good, **bad})
        assert r.status_code == 422, (bad, r.text)
        assert field in r.json()["error"]["fields"], (bad, r.text)
    r = api.post(url, json={**good, "version": int(version) - 1})  # type: ignore[call-overload]
    assert r.status_code == 409 and r.json()["error"]["code"] == "concurrent_change"
    assert ok(api.get(f"/jobs/{job_id}"))["version"] == version  # nothing changed
    with lab.server.api() as anonymous:
        assert anonymous.post(url, json=good).status_code == 401

    job = ok(api.post(url, json={**good, "version": version}))
    assert (job["status"], job["weight_g"], job["time_hours"], job["cost_cents"]) == (
        "pending", 45.0, 2.5, 450)
    detail = ok(api.get(f"/jobs/{job_id}"))
    event = detail["events"][-1]  # type: ignore[index]
    assert event["kind"] == "requote" and event["actor"]["name"] == STAFF
    assert event["actor"]["workstation"] == "Quote desk"
    assert event["details"]["old"] == {"weight_g": 20.0, "time_hours": 1.0, "cost_cents": 300}
    assert event["details"]["new"] == {"weight_g": 45.0, "time_hours": 2.5, "cost_cents": 450}
    assert event["details"]["reason"] == good["reason"]

    text, new_token = requoted_email(lab.server, job_id)
    assert new_token != old_token
    assert "$4.50" in text and "(was $3.00)" in text and good["reason"] in text  # type: ignore[operator]

    # A cost given by hand, in cents.
    job = ok(api.post(url, json={**good, "cost_cents": 399, "reason": "Agreed at the desk."}))
    assert job["cost_cents"] == 399
    _, newest = requoted_email(lab.server, job_id)
    while newest == new_token:
        time.sleep(0.05)
        _, newest = requoted_email(lab.server, job_id)

    # The old links: refused, and the page says why.
    for stale in (old_token, new_token):
        r = api.post("/confirm", json={"token": stale})
        assert r.status_code in (400, 409, 410) and r.json()["error"]["code"] == "token_used"
        with httpx.Client(base_url=lab.server.url) as student:
            page = student.get(f"/confirm/{stale}")
        assert page.status_code == 400
        assert "A newer quote was sent" in page.text and "$3.99" in page.text
        assert "Agreed at the desk." in page.text
    with httpx.Client(base_url=lab.server.url) as student:
        page = student.get(f"/confirm/{newest}")
        assert page.status_code == 200 and "$3.99" in page.text
    assert ok(api.post("/confirm", json={"token": newest}))["status"] == "ready_to_print"

    # Once confirmed, no more corrections; nor before the approval; nor for no job.
    r = api.post(url, json=good)
    assert r.status_code == 409 and "already confirmed" in r.json()["error"]["message"]
    uploaded = submit(api, MODEL, student_name="Una Uploaded")
    r = api.post(f"/jobs/{uploaded}/requote", json=good)
    assert r.status_code == 409 and "approve it" in r.json()["error"]["message"]
    assert api.post("/jobs/999999/requote", json=good).status_code == 404


def test_requote_is_documented(api: httpx.Client) -> None:
    document = ok(api.get("/openapi.json"))
    operation = document["paths"]["/jobs/{job_id}/requote"]["post"]  # type: ignore[index]
    schema = operation["requestBody"]["content"]["application/json"]["schema"]
    assert set(schema["required"]) == {"staff_name", "weight_g", "time_hours", "reason"}
    assert {"200", "409", "422"} <= set(operation["responses"])
    delete = document["paths"]["/jobs/{job_id}"]["delete"]  # type: ignore[index]
    body = delete["requestBody"]["content"]["application/json"]["schema"]
    assert set(body["required"]) == {"reason", "confirm_password"}


def test_requote_from_the_job_page_form(lab: Lab, api: httpx.Client) -> None:
    job_id = pending_job(lab, api)
    with web_login(lab.server.url, "Quote desk") as web:
        page = web.get(f"/staff/jobs/{job_id}").text
        assert 'id="requote-form"' in page
        form = {"csrf_token": csrf_of(page), "staff_name": STAFF, "weight_g": "30",
                "time_hours": "1.5", "cost": "", "reason": "Less infill."}
        for bad, field in (({"reason": ""}, "reason"), ({"weight_g": "0"}, "weight_g"),
                           ({"cost": "4.505"}, "cost"), ({"cost": "-1"}, "cost"),
                           ({"cost": "abc"}, "cost")):
            r = web.post(f"/staff/jobs/{job_id}/requote", data={**form, **bad})
            assert r.status_code == 422, (bad, r.status_code)
            assert f'id="err-{field}"' in r.text, bad
            assert '<details class="action" id="action-requote" data-lock-action="requote" open' \
                in r.text  # the dialog comes back open
            typed = {**form, **bad}
            for name in ("weight_g", "time_hours", "cost", "reason"):
                assert f'name="{name}"' in r.text
                if typed[name]:
                    assert re.search(rf'name="{name}"[^>]*value="{re.escape(typed[name])}"',
                                     r.text), (bad, name)
        assert ok(api.get(f"/jobs/{job_id}"))["cost_cents"] == 300  # nothing changed

        r = web.post(f"/staff/jobs/{job_id}/requote", data={**form, "cost": "$3.25"})
        assert r.status_code == 303
        page = web.get(f"/staff/jobs/{job_id}").text
        assert "Quote corrected: the student was emailed the new quote" in page
        assert "Quote corrected (a new confirmation link was emailed)" in page
        assert "quote: 20.0 g, 1.0 h, $3.00 → 30.0 g, 1.5 h, $3.25" in page
    job = ok(api.get(f"/jobs/{job_id}"))
    assert (job["weight_g"], job["time_hours"], job["cost_cents"]) == (30.0, 1.5, 325)


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


@pytest.mark.parametrize("live_server", ["sqlite"], indirect=True)  # the API covers both
def test_requote_in_the_browser(lab: Lab, api: httpx.Client, browser: Browser) -> None:
    job_id = pending_job(lab, api)
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    try:
        page = context.new_page()
        _log_in(page, lab.server)
        page.goto(f"{lab.server.url}/staff/jobs/{job_id}")
        page.locator("details#action-requote > summary").click()
        form = page.locator("#requote-form")
        expect(form).to_contain_text("Now: 20.0 g, 1.0 h, $3.00")
        form.locator('input[name="weight_g"]').fill("50")
        form.get_by_role("button", name="Correct the quote and email the student").click()
        # The reason is required: the browser keeps the form, nothing is sent.
        expect(page).to_have_url(f"{lab.server.url}/staff/jobs/{job_id}")
        assert ok(api.get(f"/jobs/{job_id}"))["cost_cents"] == 300
        form.locator('input[name="reason"]').fill("Printed at 50 % infill as asked.")
        form.get_by_role("button", name="Correct the quote and email the student").click()
        expect(page.locator(".flash")).to_contain_text("Quote corrected")
        expect(page.locator("#job-history")).to_contain_text("$3.00 → 50.0 g, 1.0 h, $5.00")
    finally:
        context.close()
    assert ok(api.get(f"/jobs/{job_id}"))["cost_cents"] == 500
