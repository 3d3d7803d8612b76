"""Admin overrides on the job page (issue 13), on a real server per database (SQLite,
PostgreSQL).

* In every state the job page (and the job JSON's ``allowed_overrides``) offers exactly
  the overrides the lifecycle machine allows there (force-confirm, mark failed, undo
  completion, undo pickup, delete), plus the quote correction while pending; each asks
  for a reason, delete also for the password.
* Delete (uploaded and pending): the job's folder is gone, its events stay in the
  database (the last one ``delete`` with who and why), and the job page and the API
  answer 404 with a clear message.

Bad inputs tried: a delete with no reason, with a blank reason, without the password, with
a wrong password (web form and API: 422 naming the field, nothing deleted), a delete of a
job that is printing (409), of an unknown job (404), and the same delete twice (404).
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from _abuse_kit import csrf_of, web_login

from _live import PASSWORD, STAFF, LiveServer, login, submit, upload_sliced
from _support import FIXTURES
from adapters.sql import SqlUnitOfWork, make_engine
from printcore.events import Event
from printcore.requests.lifecycle import OVERRIDES, JobLifecycle

MODEL = FIXTURES / "models" / "Moon.stl"
SLICED = FIXTURES / "sliced" / "wormdrive.gcode.3mf"
STATES = ("uploaded", "pending", "rejected", "ready_to_print", "printing", "completed",
          "paid_picked_up")


def _ok(r: httpx.Response) -> dict[str, object]:
    assert r.status_code == 200, r.text
    data: dict[str, object] = r.json()
    return data


@pytest.fixture(scope="module")
def headers(live_server: LiveServer) -> dict[str, str]:
    with live_server.api() as api:
        return login(api, "Override desk")


@pytest.fixture
def api(live_server: LiveServer, headers: dict[str, str]) -> Iterator[httpx.Client]:
    with live_server.api() as client:
        client.headers.update(headers)
        yield client


@pytest.fixture
def web(live_server: LiveServer) -> Iterator[httpx.Client]:
    with web_login(live_server.url, "Override desk") as client:
        yield client


def job_in(api: httpx.Client, headers: dict[str, str], state: str) -> int:
    """A job brought to ``state`` over the API the way staff would."""
    job_id = submit(api, MODEL, student_name=f"Ora Override {uuid.uuid4().hex[:6]}")
    if state == "uploaded":
        return job_id
    if state == "rejected":
        _ok(api.post(f"/jobs/{job_id}/reject", json={"staff_name": STAFF,
                                                     "custom_reason": "Too thin."}))
        return job_id
    r = upload_sliced(api, headers, job_id, SLICED)
    assert r.status_code == 201, r.text
    stored = r.json()["file"]["stored_name"]
    steps: list[tuple[str, dict[str, object]]] = [
        ("approve", {"weight_g": 20, "time_hours": 1, "authoritative_file": stored}),
        ("force-confirm", {"reason": "Agreed at the desk."}),
        ("mark-printing", {}),
        ("mark-complete", {}),
        ("payment", {"grams": 20, "txn_no": "TXN-9", "picked_up_by": "Ora"}),
    ]
    reach = {"pending": 1, "ready_to_print": 2, "printing": 3, "completed": 4,
             "paid_picked_up": 5}[state]
    for path, body in steps[:reach]:
        job = _ok(api.post(f"/jobs/{job_id}/{path}", json={"staff_name": STAFF, **body}))
    assert job["status"] == state
    return job_id


def machine_allows(state: str) -> set[str]:
    """The events leaving ``state``, read from the lifecycle machine itself."""
    (found,) = [s for s in JobLifecycle.states if s.value == state]
    return {str(event.id) for t in found.transitions for event in t.events}


def offered(page: str) -> set[str]:
    """The action dialogs a job page offers (``<details id="action-NAME">``)."""
    return set(re.findall(r'<details class="action" id="action-(\w+)"', page))


def events_of(server: LiveServer, job_id: int) -> list[Event]:
    """The job's events read straight from the server's database."""
    url = server.env.get("DATABASE_URL") or f"sqlite:///{server.home / 'printcore.db'}"
    engine = make_engine(url)
    try:
        with SqlUnitOfWork(engine) as uow:
            return uow.events.for_subject("job", job_id)
    finally:
        engine.dispose()


def folders_of(server: LiveServer, job_id: int) -> list[Path]:
    return [p for p in server.storage.glob(f"*/*_{job_id}") if p.is_dir()]


def test_the_job_page_offers_exactly_the_allowed_overrides(
    live_server: LiveServer, api: httpx.Client, headers: dict[str, str], web: httpx.Client
) -> None:
    """Each state's page against the machine: an override is offered if and only if the
    machine allows it there (requote: if and only if pending); each has a required
    reason, and delete also the password field."""
    for state in STATES:
        job_id = job_in(api, headers, state)
        page = web.get(f"/staff/jobs/{job_id}")
        assert page.status_code == 200, page.text[:500]
        expected = {o for o in OVERRIDES if o in machine_allows(state)}
        if state == "pending":
            expected.add("requote")
        assert offered(page.text) & set(OVERRIDES) == expected, state
        job = _ok(api.get(f"/jobs/{job_id}"))
        assert job["allowed_overrides"] == [o for o in OVERRIDES if o in expected], state
        for name in expected:
            form = re.search(rf'action="/staff/jobs/{job_id}/{name}".*?</form>', page.text,
                             re.DOTALL)
            assert form is not None, (state, name)
            assert re.search(r'<input name="reason"[^>]*required', form.group(0)), (state, name)
            has_password = 'name="confirm_password"' in form.group(0)
            assert has_password == (name == "delete"), (state, name)


@pytest.mark.parametrize("state", ["uploaded", "pending"])
def test_delete_from_the_job_page_removes_files_and_keeps_history(
    live_server: LiveServer, api: httpx.Client, headers: dict[str, str], web: httpx.Client,
    state: str,
) -> None:
    job_id = job_in(api, headers, state)
    assert folders_of(live_server, job_id), "the job has a folder before"
    before = events_of(live_server, job_id)
    page = web.get(f"/staff/jobs/{job_id}").text
    form = {"csrf_token": csrf_of(page), "staff_name": STAFF,
            "version": re.search(r'name="version" value="(\d+)"', page).group(1)}  # type: ignore[union-attr]

    for bad, field, words in (
        ({"reason": "", "confirm_password": PASSWORD}, "reason", "A reason is required"),
        ({"reason": "   ", "confirm_password": PASSWORD}, "reason", "A reason is required"),
        ({"reason": "Duplicate."}, "confirm_password", "needs the staff password again"),
        ({"reason": "Duplicate.", "confirm_password": "wrong"}, "confirm_password",
         "Wrong password"),
    ):
        r = web.post(f"/staff/jobs/{job_id}/delete", data={**form, **bad})
        assert r.status_code == 422, (bad, r.status_code)
        assert words in r.text and f'id="err-{field}"' in r.text, bad
        assert 'value="' + PASSWORD + '"' not in r.text  # the password is not sent back
        if bad["reason"].strip():  # a typed reason is kept
            assert re.search(r'name="reason"[^>]*value="Duplicate\."', r.text), bad
        assert folders_of(live_server, job_id) and events_of(live_server, job_id) == before

    r = web.post(f"/staff/jobs/{job_id}/delete",
                 data={**form, "reason": "Submitted twice.", "confirm_password": PASSWORD})
    assert r.status_code == 303 and r.headers["location"] == "/staff"
    assert f"Job {job_id} deleted; its history is kept." in web.get("/staff").text

    assert folders_of(live_server, job_id) == []
    events = events_of(live_server, job_id)
    assert events[:-1] == before
    last = events[-1]
    assert (last.kind, last.from_status, last.to_status) == ("delete", state, "deleted")
    assert last.actor.name == STAFF and last.actor.workstation == "Override desk"
    assert last.details == {"reason": "Submitted twice."}

    page_after = web.get(f"/staff/jobs/{job_id}")
    assert page_after.status_code == 404 and f"There is no job {job_id}" in page_after.text
    gone = api.get(f"/jobs/{job_id}")
    assert gone.status_code == 404 and str(job_id) in gone.json()["error"]["message"]
    again = web.post(f"/staff/jobs/{job_id}/delete",
                     data={**form, "reason": "Again.", "confirm_password": PASSWORD})
    assert again.status_code == 404


def test_delete_over_the_api_needs_a_reason_and_the_password(
    live_server: LiveServer, api: httpx.Client, headers: dict[str, str]
) -> None:
    job_id = job_in(api, headers, "pending")
    for body, field in (({"reason": "Duplicate."}, "confirm_password"),
                        ({"reason": "Duplicate.", "confirm_password": "nope"}, "confirm_password"),
                        ({"confirm_password": PASSWORD}, "reason"),
                        ({"reason": " ", "confirm_password": PASSWORD}, "reason")):
        r = api.request("DELETE", f"/jobs/{job_id}", json={"staff_name": STAFF, **body})
        assert r.status_code == 422, (body, r.text)
        assert field in r.json()["error"]["fields"], (body, r.text)
    assert _ok(api.get(f"/jobs/{job_id}"))["status"] == "pending"

    printing = job_in(api, headers, "printing")
    r = api.request("DELETE", f"/jobs/{printing}", json={
        "staff_name": STAFF, "reason": "Duplicate.", "confirm_password": PASSWORD})
    assert r.status_code == 409 and folders_of(live_server, printing)
    r = api.request("DELETE", "/jobs/999999", json={
        "staff_name": STAFF, "reason": "Duplicate.", "confirm_password": PASSWORD})
    assert r.status_code == 404

    r = api.request("DELETE", f"/jobs/{job_id}", json={
        "staff_name": STAFF, "reason": "Duplicate.", "confirm_password": PASSWORD})
    assert _ok(r) == {"id": job_id, "status": "deleted"}
    assert folders_of(live_server, job_id) == []
    assert events_of(live_server, job_id)[-1].details == {"reason": "Duplicate."}
    assert api.get(f"/jobs/{job_id}").status_code == 404
