"""Marking jobs reviewed over HTTP (issue 12, "Attention: NEW, reviewed"), on a real
server per database (SQLite, PostgreSQL): ``POST``/``DELETE /api/v1/jobs/{id}/review``
with a bearer token and the job JSON's ``reviewed_at``/``reviewed_by``; the NEW badge on
the dashboard's cards and the job page's heading; the job page's plain form post.

Bad inputs tried: no login (401, API and page), an unknown job id (404), marking twice
and undoing a review that is not there (409 ``invalid_transition``, nothing changes), a
stale ``version`` (409 ``concurrent_change``), a staff name not on the list, a missing
one and one that is not text (422), a form post without its CSRF token (403) and with an
unknown staff name (422, the page again with the error); none of them records an event.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime

import attrs
import httpx
import pytest

from _live import PASSWORD, STAFF, LiveServer, login, submit
from _support import FIXTURES

MODEL = FIXTURES / "models" / "Moon.stl"


@attrs.frozen
class Lab:
    server: LiveServer
    headers: dict[str, str]
    tag: str  # unique per server: keeps these jobs apart from other tests' jobs


@pytest.fixture(scope="module")
def lab(live_server: LiveServer) -> Lab:
    with live_server.api() as api:
        return Lab(live_server, login(api, "Review desk"), uuid.uuid4().hex[:8])


@pytest.fixture
def api(lab: Lab) -> Iterator[httpx.Client]:
    with lab.server.api() as client:
        client.headers.update(lab.headers)
        yield client


@pytest.fixture(scope="module")
def web(lab: Lab) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=lab.server.url, timeout=60) as client:
        page = client.get("/staff/login").text
        csrf = re.search(r'name="csrf_token" value="([^"]+)"', page)
        assert csrf
        r = client.post("/staff/login?next=/staff", data={
            "csrf_token": csrf.group(1), "workstation": "Review web", "password": PASSWORD})
        assert r.status_code == 303, r.text
        yield client


def new_job(lab: Lab, api: httpx.Client) -> int:
    return submit(api, MODEL, student_name=f"Rita Review{lab.tag}",
                  email=f"rita.{lab.tag}@example.edu")


def kinds(api: httpx.Client, job_id: int) -> list[str]:
    r = api.get(f"/jobs/{job_id}")
    assert r.status_code == 200, r.text
    return [e["kind"] for e in r.json()["events"]]


def card(web: httpx.Client, lab: Lab, job_id: int) -> str:
    """The dashboard card of the job (found by a search for this module's tag)."""
    page = web.get("/staff", params={"q": lab.tag}).text
    match = re.search(rf'<a class="card job-card[^"]*" href="/staff/jobs/{job_id}" '
                      rf'data-job="{job_id}"[^>]*>(.*?)</a>', page, re.S)
    assert match, f"no card for job {job_id}"
    return match.group(1)


def heading(page: str) -> str:
    match = re.search(r'<div id="job-head" data-live-region>(.*?)</div>', page, re.S)
    assert match
    return match.group(1)


# --- the API --------------------------------------------------------------------------


def test_api_marks_reviewed_and_undoes_it(lab: Lab, api: httpx.Client) -> None:
    job_id = new_job(lab, api)
    job = api.get(f"/jobs/{job_id}").json()
    assert (job["reviewed_at"], job["reviewed_by"]) == (None, None)
    before = datetime.now(UTC)
    r = api.post(f"/jobs/{job_id}/review",
                 json={"staff_name": f"  {STAFF} ", "version": job["version"]})
    assert r.status_code == 200, r.text
    reviewed = r.json()
    assert reviewed["id"] == job_id and reviewed["reviewed_by"] == STAFF
    assert datetime.fromisoformat(reviewed["reviewed_at"]) >= before.replace(microsecond=0)
    assert reviewed["version"] == job["version"] + 1
    assert (reviewed["status"], reviewed["allowed_actions"]) == (
        job["status"], job["allowed_actions"])
    assert "confirmation_nonce" not in reviewed
    assert api.get(f"/jobs/{job_id}").json()["reviewed_by"] == STAFF

    # DELETE with the name as a query parameter (no body), as DELETE clients do.
    r = api.delete(f"/jobs/{job_id}/review", params={"staff_name": STAFF})
    assert r.status_code == 200, r.text
    undone = r.json()
    assert (undone["reviewed_at"], undone["reviewed_by"]) == (None, None)
    assert undone["version"] == reviewed["version"] + 1
    # ... and with a JSON body.
    assert api.post(f"/jobs/{job_id}/review", json={"staff_name": STAFF}).status_code == 200
    r = api.request("DELETE", f"/jobs/{job_id}/review", json={"staff_name": STAFF})
    assert r.status_code == 200, r.text
    detail = api.get(f"/jobs/{job_id}").json()
    events = [e for e in detail["events"] if e["kind"] in ("review", "unreview")]
    assert [e["kind"] for e in events] == ["review", "unreview", "review", "unreview"]
    assert all(e["actor"]["name"] == STAFF and e["actor"]["kind"] == "staff"
               and e["actor"]["workstation"] == "Review desk" for e in events)
    assert all(e["from_status"] is None and e["to_status"] is None for e in events)
    assert events[1]["details"] == {"was_reviewed_by": STAFF}


def test_api_refuses_twice_and_undoing_what_is_not_there(lab: Lab, api: httpx.Client) -> None:
    job_id = new_job(lab, api)
    r = api.delete(f"/jobs/{job_id}/review", params={"staff_name": STAFF})
    assert r.status_code == 409, r.text
    assert r.json()["error"]["code"] == "invalid_transition"
    assert api.post(f"/jobs/{job_id}/review", json={"staff_name": STAFF}).status_code == 200
    r = api.post(f"/jobs/{job_id}/review", json={"staff_name": STAFF})
    assert r.status_code == 409, r.text
    error = r.json()["error"]
    assert error["code"] == "invalid_transition" and error["state"] == "uploaded"
    assert f"already marked reviewed by {STAFF} at " in error["message"]
    assert kinds(api, job_id) == ["submit", "review"]


def test_api_refuses_a_stale_version(lab: Lab, api: httpx.Client) -> None:
    job_id = new_job(lab, api)
    version = api.get(f"/jobs/{job_id}").json()["version"]
    r = api.post(f"/jobs/{job_id}/review", json={"staff_name": STAFF, "version": version - 1})
    assert r.status_code == 409, r.text
    assert r.json()["error"]["code"] == "concurrent_change"
    assert kinds(api, job_id) == ["submit"]


@pytest.mark.parametrize(("body", "field"), [
    ({"staff_name": "Not On The List"}, "staff_name"),
    ({}, "staff_name"),
    ({"staff_name": "   "}, "staff_name"),
    ({"staff_name": 12}, "staff_name"),
    ({"staff_name": "x" * 81}, "staff_name"),
    ({"staff_name": STAFF, "version": "3"}, "version"),
    ({"staff_name": STAFF, "version": True}, "version"),
])
def test_api_refuses_bad_bodies(lab: Lab, api: httpx.Client, body: dict[str, object],
                                field: str) -> None:
    job_id = new_job(lab, api)
    for method in ("POST", "DELETE"):
        r = api.request(method, f"/jobs/{job_id}/review", json=body)
        assert r.status_code == 422, (method, r.text)
        assert field in r.json()["error"]["fields"]
    assert kinds(api, job_id) == ["submit"]


def test_api_needs_a_login_and_a_known_job(lab: Lab, api: httpx.Client) -> None:
    job_id = new_job(lab, api)
    with lab.server.api() as anonymous:
        r = anonymous.post(f"/jobs/{job_id}/review", json={"staff_name": STAFF})
        assert r.status_code == 401, r.text
        r = anonymous.delete(f"/jobs/{job_id}/review", params={"staff_name": STAFF})
        assert r.status_code == 401, r.text
        # Not even a bad body is looked at without a login.
        assert anonymous.post(f"/jobs/{job_id}/review", content=b"[").status_code == 401
    for method in ("POST", "DELETE"):
        r = api.request(method, "/jobs/99999999/review", json={"staff_name": STAFF})
        assert r.status_code == 404, r.text
        assert r.json()["error"]["code"] == "not_found"
    assert api.post("/jobs/abc/review", json={"staff_name": STAFF}).status_code == 404
    assert kinds(api, job_id) == ["submit"]


def test_api_openapi_documents_both_operations(api: httpx.Client) -> None:
    document = api.get("/openapi.json").json()
    operations = document["paths"]["/jobs/{job_id}/review"]
    assert set(operations) == {"post", "delete"}
    job = document["components"]["schemas"]["Job"]
    assert {"reviewed_at", "reviewed_by"} <= set(job["required"])


# --- the staff pages ------------------------------------------------------------------


def test_dashboard_shows_new_until_reviewed(lab: Lab, api: httpx.Client,
                                            web: httpx.Client) -> None:
    job_id = new_job(lab, api)
    shown = card(web, lab, job_id)
    assert '<span class="badge-new"' in shown and ">NEW</span>" in shown
    tab = web.get("/staff", params={"status": "uploaded"}).text
    assert f'data-job="{job_id}"' in tab
    assert api.post(f"/jobs/{job_id}/review", json={"staff_name": STAFF}).status_code == 200
    shown = card(web, lab, job_id)
    assert "badge-new" not in shown and "NEW" not in shown
    assert api.delete(f"/jobs/{job_id}/review", params={"staff_name": STAFF}).status_code == 200
    assert ">NEW</span>" in card(web, lab, job_id)


def _form(page: str, job_id: int, event: str) -> dict[str, str]:
    match = re.search(rf'<form method="post" action="/staff/jobs/{job_id}/{event}" '
                      r'class="form" id="review-form">(.*?)</form>', page, re.S)
    assert match, f"no {event} form"
    form = match.group(1)
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', form)
    version = re.search(r'name="version" value="(\d+)"', form)
    assert csrf and version
    return {"csrf_token": csrf.group(1), "version": version.group(1), "staff_name": STAFF}


def test_job_page_form_marks_reviewed_and_undoes_it(lab: Lab, api: httpx.Client,
                                                    web: httpx.Client) -> None:
    job_id = new_job(lab, api)
    page = web.get(f"/staff/jobs/{job_id}").text
    assert ">NEW</span>" in heading(page)
    assert "Mark reviewed</button>" in page
    body = page.split("<body", 1)[1]
    assert "<script" not in body and " style=" not in body  # the CSP forbids inline ones

    r = web.post(f"/staff/jobs/{job_id}/review", data=_form(page, job_id, "review"))
    assert r.status_code == 303, r.text
    assert r.headers["location"] == f"/staff/jobs/{job_id}"
    page = web.get(f"/staff/jobs/{job_id}").text
    assert "Marked reviewed: the job no longer shows as NEW." in page  # the flash
    assert "NEW" not in heading(page)
    assert f"Marked reviewed by {STAFF}" in page and "Not reviewed</button>" in page
    assert re.search(rf"<strong>Marked reviewed</strong>\s*by {STAFF} @ Review web", page)
    assert api.get(f"/jobs/{job_id}").json()["reviewed_by"] == STAFF

    r = web.post(f"/staff/jobs/{job_id}/unreview", data=_form(page, job_id, "unreview"))
    assert r.status_code == 303, r.text
    page = web.get(f"/staff/jobs/{job_id}").text
    assert "Review undone: the job shows as NEW again." in page
    assert ">NEW</span>" in heading(page)
    assert "<strong>Review undone</strong>" in page and f"had been reviewed by: {STAFF}" in page
    assert kinds(api, job_id) == ["submit", "review", "unreview"]


def test_job_page_form_refusals(lab: Lab, api: httpx.Client, web: httpx.Client) -> None:
    job_id = new_job(lab, api)
    page = web.get(f"/staff/jobs/{job_id}").text
    good = _form(page, job_id, "review")

    r = web.post(f"/staff/jobs/{job_id}/review", data={**good, "csrf_token": "forged"})
    assert r.status_code == 403, r.text
    r = web.post(f"/staff/jobs/{job_id}/review", data={**good, "staff_name": "Mallory"})
    assert r.status_code == 422
    assert 'data-code="validation_error"' in r.text and ">NEW</span>" in heading(r.text)
    r = web.post(f"/staff/jobs/{job_id}/unreview", data=good)
    assert r.status_code == 409 and 'data-code="invalid_transition"' in r.text
    r = web.post(f"/staff/jobs/{job_id}/review",
                 data={**good, "version": str(int(good["version"]) + 5)})
    assert r.status_code == 409 and 'data-code="concurrent_change"' in r.text
    assert kinds(api, job_id) == ["submit"]

    assert web.post(f"/staff/jobs/{job_id}/review", data=good).status_code == 303
    r = web.post(f"/staff/jobs/{job_id}/review", data=good)  # the same form again: stale
    assert r.status_code == 409 and 'data-code="concurrent_change"' in r.text
    r = web.post(f"/staff/jobs/{job_id}/review", data={**good, "version": ""})
    assert r.status_code == 409 and "already marked reviewed by" in r.text

    with httpx.Client(base_url=lab.server.url, timeout=60) as anonymous:
        r = anonymous.post(f"/staff/jobs/{job_id}/unreview", data=good)
        assert r.status_code == 303 and r.headers["location"].startswith("/staff/login")
    assert kinds(api, job_id) == ["submit", "review"]
