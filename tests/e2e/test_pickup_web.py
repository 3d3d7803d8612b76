"""Pickup that cannot surprise (issue 12) on a real server per database (SQLite,
PostgreSQL): a job the student confirmed at $10.00 (100 g of filament) weighed at 130 g
($13.00) at pickup.

* API: ``POST /jobs/{id}/payment`` answers 422 on ``override_reason`` (saying $13.00 and
  $10.00) and records nothing; with a reason 200, the job JSON's ``amount_due_cents``,
  the payment's ``quoted_cents``/``override_reason`` and the event's details; "charge the
  quote" charges $10.00; ``GET /pricing/quote`` gives the figures and is in the OpenAPI
  document.
* The plain form post (no JavaScript): refused with the message, every typed value kept.
* Chromium: the pickup form shows the quote and the amount due while the grams are typed,
  reveals the override only above the quote, refuses above-quote without a reason (the
  form comes back, the message tied to the field), and accepts with one.

Bad inputs tried: no reason, a blank one, one that is not text (42), one of 501
characters, one with a newline (422 ``invalid_text``), ``charge_quote`` "yes"; for the
quote API grams "", "abc", "0", "-1", "nan", "inf", "1e6", "1e400", a missing grams, print
method "laser" or missing, quoted_cents "-1", "1.5", "x", and no login (401).
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator

import attrs
import httpx
import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright
from test_browser import CHROMIUM, LAUNCH_ARGS, _log_in

from _live import PASSWORD, STAFF, LiveServer, confirm_token, login, submit, upload_sliced
from _support import FIXTURES, service_missing

MODEL = FIXTURES / "models" / "Moon.stl"
SLICED = FIXTURES / "sliced" / "wormdrive.gcode.3mf"


@attrs.frozen
class Lab:
    server: LiveServer
    headers: dict[str, str]
    tag: str


@pytest.fixture(scope="module")
def lab(live_server: LiveServer) -> Lab:
    with live_server.api() as api:
        return Lab(live_server, login(api, "Pickup desk"), uuid.uuid4().hex[:8])


@pytest.fixture
def api(lab: Lab) -> Iterator[httpx.Client]:
    with lab.server.api() as client:
        client.headers.update(lab.headers)
        yield client


def ok(r: httpx.Response) -> dict[str, object]:
    assert r.status_code == 200, r.text
    data: dict[str, object] = r.json()
    return data


def completed_at_ten_dollars(lab: Lab, api: httpx.Client) -> int:
    """A job approved at 100 g of filament ($10.00), confirmed by the student's link,
    printed and completed, all over HTTP."""
    job_id = submit(api, MODEL, student_name=f"Pat Pickup{lab.tag}",
                    email=f"pat.{lab.tag}@example.edu")
    r = upload_sliced(api, lab.headers, job_id, SLICED)
    assert r.status_code == 201, r.text
    stored = r.json()["file"]["stored_name"]
    job = ok(api.post(f"/jobs/{job_id}/approve", json={
        "staff_name": STAFF, "weight_g": 100, "time_hours": 2, "authoritative_file": stored}))
    assert job["cost_cents"] == 1000 and job["amount_due_cents"] == 1000
    ok(api.post("/confirm", json={"token": confirm_token(lab.server, job_id)}))
    ok(api.post(f"/jobs/{job_id}/mark-printing", json={"staff_name": STAFF}))
    job = ok(api.post(f"/jobs/{job_id}/mark-complete", json={"staff_name": STAFF}))
    assert job["status"] == "completed" and job["amount_due_cents"] == 1000
    return job_id


def kinds(api: httpx.Client, job_id: int) -> list[str]:
    return [e["kind"] for e in ok(api.get(f"/jobs/{job_id}"))["events"]]  # type: ignore[index, union-attr]


PAY = {"staff_name": STAFF, "grams": 130, "txn_no": "TX-130", "picked_up_by": "Pat"}


def test_api_refuses_above_the_quote_without_a_reason(lab: Lab, api: httpx.Client) -> None:
    job_id = completed_at_ten_dollars(lab, api)
    before = kinds(api, job_id)
    for extra in ({}, {"override_reason": ""}, {"override_reason": "   "},
                  {"override_reason": None}):
        r = api.post(f"/jobs/{job_id}/payment", json={**PAY, **extra})
        assert r.status_code == 422, r.text
        fields = r.json()["error"]["fields"]
        assert set(fields) == {"override_reason"}
        assert "$13.00" in fields["override_reason"] and "$10.00" in fields["override_reason"]
    for extra, field in (({"override_reason": 42}, "override_reason"),
                         ({"override_reason": "x" * 501}, "override_reason"),
                         ({"override_reason": "two\nlines"}, "override_reason"),
                         ({"charge_quote": "yes"}, "charge_quote")):
        r = api.post(f"/jobs/{job_id}/payment", json={**PAY, **extra})
        assert r.status_code == 422, (extra, r.text)
        assert field in r.json()["error"].get("fields", {}), r.text
    job = ok(api.get(f"/jobs/{job_id}"))
    assert job["status"] == "completed" and job["payments"] == []
    assert kinds(api, job_id) == before


def test_api_charges_above_the_quote_with_a_reason(lab: Lab, api: httpx.Client) -> None:
    job_id = completed_at_ten_dollars(lab, api)
    job = ok(api.post(f"/jobs/{job_id}/payment",
                      json={**PAY, "override_reason": "Asked for a thicker wall."}))
    assert job["status"] == "paid_picked_up" and job["amount_due_cents"] == 1300
    [paid] = job["payments"]  # type: ignore[misc]
    assert (paid["amount_cents"], paid["quoted_cents"], paid["override_reason"]) == (
        1300, 1000, "Asked for a thicker wall.")
    event = ok(api.get(f"/jobs/{job_id}"))["events"][-1]  # type: ignore[index]
    assert event["kind"] == "pick_up"
    assert {k: event["details"][k] for k in ("amount_cents", "quoted_cents", "weighed_cents",
                                            "policy", "override_reason")} == {
        "amount_cents": 1300, "quoted_cents": 1000, "weighed_cents": 1300,
        "policy": "weighed", "override_reason": "Asked for a thicker wall."}


def test_api_can_charge_the_quote_instead(lab: Lab, api: httpx.Client) -> None:
    job_id = completed_at_ten_dollars(lab, api)
    job = ok(api.post(f"/jobs/{job_id}/payment", json={**PAY, "charge_quote": True}))
    assert job["amount_due_cents"] == 1000
    assert job["payments"][0]["override_reason"] is None  # type: ignore[index]


def test_pricing_quote_api(lab: Lab, api: httpx.Client) -> None:
    data = ok(api.get("/pricing/quote", params={"print_method": "filament", "grams": "12.5"}))
    assert data["cost_cents"] == 300 and data["minimum_applies"] is True
    assert data["material_cents"] == 125 and data["cost"] == "$3.00"
    assert data["cents_per_gram"] == "10" and data["quoted_cents"] is None
    data = ok(api.get("/pricing/quote", params={"print_method": "resin", "grams": "65",
                                                "quoted_cents": "1000"}))
    assert (data["cost_cents"], data["charge_cents"], data["charge"], data["above_quote"]) == (
        1300, 1300, "$13.00", True)
    assert data["policy"] == "weighed"
    for grams in ("", "abc", "0", "-1", "nan", "inf", "1e6", "1e400", None):
        params = {"print_method": "filament"} | ({} if grams is None else {"grams": grams})
        r = api.get("/pricing/quote", params=params)
        assert r.status_code == 422, (grams, r.text)
        assert "grams" in r.json()["error"]["fields"]
    for method in ("laser", None):
        params = {"grams": "10"} | ({} if method is None else {"print_method": method})
        r = api.get("/pricing/quote", params=params)
        assert r.status_code == 422 and "print_method" in r.json()["error"]["fields"]
    for quoted in ("-1", "1.5", "x"):
        r = api.get("/pricing/quote", params={"print_method": "filament", "grams": "10",
                                              "quoted_cents": quoted})
        assert r.status_code == 422 and "quoted_cents" in r.json()["error"]["fields"]
    with lab.server.api() as anonymous:
        r = anonymous.get("/pricing/quote", params={"print_method": "filament", "grams": "1"})
        assert r.status_code == 401
    doc = ok(api.get("/openapi.json"))
    paths = doc["paths"]  # type: ignore[index]
    assert "/pricing/quote" in paths  # type: ignore[operator]
    payment = paths["/jobs/{job_id}/payment"]["post"]  # type: ignore[index]
    body = payment["requestBody"]["content"]["application/json"]["schema"]["properties"]
    assert {"override_reason", "charge_quote"} <= set(body)


@pytest.fixture(scope="module")
def web(lab: Lab) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=lab.server.url, timeout=60) as client:
        page = client.get("/staff/login").text
        csrf = re.search(r'name="csrf_token" value="([^"]+)"', page)
        assert csrf
        r = client.post("/staff/login?next=/staff", data={
            "csrf_token": csrf.group(1), "workstation": "Pickup web", "password": PASSWORD})
        assert r.status_code == 303, r.text
        yield client


def test_plain_form_post_refuses_and_keeps_what_was_typed(
    lab: Lab, api: httpx.Client, web: httpx.Client
) -> None:
    job_id = completed_at_ten_dollars(lab, api)
    page = web.get(f"/staff/jobs/{job_id}").text
    assert "Confirmed quote: <strong>$10.00</strong>" in page
    assert "Amount due for 100 g: <strong>$10.00</strong>" in page
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert csrf
    form = {"csrf_token": csrf.group(1), "staff_name": STAFF, "grams": "130",
            "txn_no": "TX-W1", "picked_up_by": "Pat at the desk"}
    r = web.post(f"/staff/jobs/{job_id}/pick_up", data=form)
    assert r.status_code == 422
    assert "above the confirmed quote of $10.00" in r.text and "$13.00" in r.text
    assert 'aria-describedby="err-override_reason"' in r.text
    for value in ('value="130"', 'value="TX-W1"', 'value="Pat at the desk"'):
        assert value in r.text
    assert "pick_up" not in kinds(api, job_id)
    r = web.post(f"/staff/jobs/{job_id}/pick_up",
                 data={**form, "override_reason": "Reprinted larger on request."})
    assert r.status_code == 303, r.text
    job = ok(api.get(f"/jobs/{job_id}"))
    assert job["amount_due_cents"] == 1300
    assert job["payments"][0]["override_reason"] == "Reprinted larger on request."  # type: ignore[index]


# --- in Chromium -------------------------------------------------------------------------


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


def open_pickup(page: Page, server: LiveServer, job_id: int) -> None:
    page.goto(f"{server.url}/staff/jobs/{job_id}")
    opener = page.locator("details#action-pick_up:not([open]) > summary")
    if opener.count():
        opener.click()


@pytest.mark.parametrize("live_server", ["sqlite"], indirect=True)  # the API covers both
@pytest.mark.parametrize("width", [1280, 390])
def test_pickup_form_shows_the_amount_due_live_and_needs_a_reason_above_the_quote(
    lab: Lab, api: httpx.Client, browser: Browser, width: int
) -> None:
    job_id = completed_at_ten_dollars(lab, api)
    context = browser.new_context(viewport={"width": width, "height": 900})
    try:
        page = context.new_page()
        _log_in(page, lab.server)
        open_pickup(page, lab.server, job_id)
        form = page.locator("#pickup-form")
        due = form.locator("[data-cost-output]")
        override = form.locator("[data-override]")
        expect(form.locator(".pickup-quote")).to_contain_text("Confirmed quote: $10.00")
        expect(due).to_contain_text("Amount due for 100 g: $10.00")
        expect(override).to_be_hidden()  # at the quote: nothing to override

        grams = form.locator('input[name="grams"]')
        grams.fill("")
        grams.press_sequentially("80", delay=30)
        expect(due).to_contain_text("Amount due for 80 g: $8.00")
        expect(override).to_be_hidden()
        grams.fill("")
        grams.press_sequentially("130", delay=30)
        expect(due).to_contain_text("Amount due for 130 g: $13.00")
        expect(due).to_contain_text("above the confirmed quote of $10.00")
        expect(override).to_be_visible()
        expect(form.locator('input[name="override_reason"]')).to_be_enabled()
        wide = page.evaluate("""() => [...document.querySelectorAll('#pickup-form, #pickup-form *')]
            .filter(e => e.getBoundingClientRect().right > document.documentElement.clientWidth + 1)
            .map(e => e.tagName + '.' + e.className + '#' + e.id)""")
        assert wide == [], f"pickup form wider than {width} px: {wide}"

        form.locator('input[name="txn_no"]').fill("TX-B1")
        form.get_by_role("button", name="Record payment").click()
        page.wait_for_load_state()
        open_pickup_again = page.locator("details#action-pick_up:not([open]) > summary")
        if open_pickup_again.count():
            open_pickup_again.click()
        form = page.locator("#pickup-form")
        reason = form.locator('input[name="override_reason"]')
        error = form.locator("#err-override_reason")
        expect(error).to_contain_text("above the confirmed quote of $10.00")
        expect(reason).to_have_attribute("aria-describedby", "err-override_reason")
        expect(form.locator('input[name="grams"]')).to_have_value("130")
        expect(form.locator('input[name="txn_no"]')).to_have_value("TX-B1")
        expect(reason).to_be_visible()
        assert "pick_up" not in kinds(api, job_id)

        reason.fill("Student asked for a larger print.")
        form.get_by_role("button", name="Record payment").click()
        page.wait_for_url(f"{lab.server.url}/staff/jobs/{job_id}")
        expect(page.locator("h1 .status")).to_have_text("Paid & picked up")
        job = ok(api.get(f"/jobs/{job_id}"))
        assert job["amount_due_cents"] == 1300
        assert job["payments"][0]["override_reason"] == "Student asked for a larger print."  # type: ignore[index]
    finally:
        context.close()
