"""``GET /api/v1/admin/audit``, ``POST /api/v1/admin/audit/repair`` and the admin page
``/staff/admin/audit`` (:mod:`adapters.web.audit_api`) on the wired app (Starlette
TestClient), on SQLite and PostgreSQL, with real folders.

Bad input tried (each answers its status and changes nothing on disk or in the event
log): no login (401 / 303 to the login page); a cookie call without the CSRF header
(403); a body that is not JSON, a JSON array, ``dry_run`` as ``"no"`` and as ``null``
(422 ``dry_run``); a repair without ``staff_name``, with a name not on the staff list,
with ``staff_name`` as a number (422 ``staff_name``); without ``confirm_password`` and
with a wrong one (422 ``confirm_password``); on the page, a wrong password, no password
and a bad CSRF token.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine

from adapters.files import StagingArea
from printcore import Actor, SliceEstimate, StagedFile, Submission

PASSWORD = "audit-password-1"
ADA = Actor.staff("Ada", "Desk")
OLD = time.time() - 3600


class Lab:
    def __init__(self, client: Any, container: Any) -> None:
        self.client = client
        self.container = container
        self.store = container.files

    def stage(self, content: bytes, name: str, ext: str) -> StagedFile:
        upload = StagingArea(self.store.staging_dir).open(10_000_000)
        upload.write(content)
        return StagedFile(upload.path, name, ext, len(content), upload.finish())

    def approved_job(self) -> Any:
        svc = self.container.requests
        job = svc.submit(Submission("Jane Doe", "j@u.edu", "ME", "", "filament", "Red"),
                         self.stage(b"solid x\nendsolid x\n", "x.stl", ".stl"))
        f = svc.add_sliced_file(job.id, ADA, self.stage(b"; gcode\n", "x.gcode", ".gcode"),
                                SliceEstimate(60, 2.0))
        svc.approve(job.id, ADA, 2.0, 1.0, f.stored_name)
        return svc.get(job.id)

    def leftover(self, job: Any) -> Path:
        """A stale copy in Uploaded/ (a crash after the approval's commit)."""
        copy = self.store.folder(job, "uploaded")
        shutil.copytree(self.store.folder(job), copy)
        os.utime(copy, (OLD, OLD))
        return copy

    def repairs_recorded(self, job_id: int) -> list[Any]:
        with self.container.requests.uow() as work:
            return [e for e in work.events.for_subject("job", job_id)
                    if e.kind == "audit_repaired"]

    def login(self) -> dict[str, str]:
        r = self.client.post("/api/v1/auth/login",
                             json={"workstation": "Desk", "password": PASSWORD})
        assert r.status_code == 200, r.text
        self.csrf = r.json()["csrf_token"]
        return {"Authorization": f"Bearer {r.json()['token']}"}


@pytest.fixture
def lab(sql_engine: Engine, tmp_path: Path) -> Iterator[Lab]:
    from starlette.testclient import TestClient

    from entrypoints.bootstrap import bootstrap
    from entrypoints.settings import load_settings
    from entrypoints.web import app_from_container

    env = {"PRINTCORE_HOME": str(tmp_path / "home"), "PRINTCORE_SECRET_KEY": "audit-secret",
           "PRINTCORE_STAFF_PASSWORD": PASSWORD,
           "DATABASE_URL": sql_engine.url.render_as_string(hide_password=False)}
    container = bootstrap(load_settings(env, env_file=None), engine=sql_engine)
    container.staff.add("Ada")
    app = app_from_container(container, isolated_inspection=True)
    client = TestClient(app, base_url="http://127.0.0.1")
    try:
        yield Lab(client, container)
    finally:
        client.close()
        app.state.ctx.inspector.close()
        container.close()


def _check_schema(lab: Lab, path: str, method: str, body: dict[str, Any]) -> None:
    """The answer has exactly the documented fields (types checked for the top level)."""
    doc = lab.client.get("/api/v1/openapi.json").json()
    schema = doc["paths"][path][method]["responses"]["200"]["content"]["application/json"][
        "schema"]
    assert set(body) == set(schema["required"]) == set(schema["properties"])
    items = next(p["items"] for name, p in schema["properties"].items()
                 if p.get("type") == "array" and body[name])
    sample = next(v[0] for v in body.values() if isinstance(v, list) and v)
    assert set(sample) == set(items["required"])


def test_the_api_reports_and_repairs(lab: Lab) -> None:
    job = lab.approved_job()
    copy = lab.leftover(job)
    assert lab.client.get("/api/v1/admin/audit").status_code == 401
    assert lab.client.post("/api/v1/admin/audit/repair", json={}).status_code == 401
    headers = lab.login()
    r = lab.client.get("/api/v1/admin/audit", headers=headers)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["jobs_checked"] == 1 and body["ok"] is False
    assert body["counts"]["stale_duplicate"] == 1 and sum(body["counts"].values()) == 1
    assert body["findings"] == [{
        "kind": "stale_duplicate", "job_id": job.id, "path": f"Uploaded/{copy.name}",
        "target": None, "repairable": True, "repair": f"remove Uploaded/{copy.name}",
        "message": f"job {job.id}: a leftover copy in Uploaded/{copy.name} (it is pending, "
                   f"its folder is Pending/{copy.name})"}]
    _check_schema(lab, "/admin/audit", "get", body)

    dry = lab.client.post("/api/v1/admin/audit/repair", json={"dry_run": True},
                          headers=headers)
    assert dry.status_code == 200, dry.text
    assert dry.json()["dry_run"] is True and dry.json()["remaining"] == 1
    assert [(x["action"], x["done"]) for x in dry.json()["repairs"]] == [
        (f"remove Uploaded/{copy.name}", False)]
    _check_schema(lab, "/admin/audit/repair", "post", dry.json())
    assert lab.client.post("/api/v1/admin/audit/repair", headers=headers).json()[
        "dry_run"] is True, "no body: a dry run"
    assert copy.is_dir() and lab.repairs_recorded(job.id) == []

    done = lab.client.post("/api/v1/admin/audit/repair", headers=headers, json={
        "dry_run": False, "staff_name": "Ada", "confirm_password": PASSWORD})
    assert done.status_code == 200, done.text
    assert done.json()["ok"] is True and done.json()["remaining"] == 0
    assert [x["done"] for x in done.json()["repairs"]] == [True]
    assert not copy.exists()
    (event,) = lab.repairs_recorded(job.id)
    assert event.actor == Actor.staff("Ada", "Desk")
    assert event.details["finding"] == "stale_duplicate"
    assert lab.client.get("/api/v1/admin/audit", headers=headers).json()["ok"] is True


def test_bad_repair_requests_change_nothing(lab: Lab) -> None:
    job = lab.approved_job()
    copy = lab.leftover(job)
    headers = lab.login()
    url = "/api/v1/admin/audit/repair"
    cases: list[tuple[dict[str, Any], int, set[str] | None]] = [
        ({"content": b"{not json"}, 422, None),
        ({"json": [1, 2]}, 422, None),
        ({"json": {"dry_run": "no"}}, 422, {"dry_run"}),
        ({"json": {"dry_run": None}}, 422, {"dry_run"}),
        ({"json": {"dry_run": False, "confirm_password": PASSWORD}}, 422, {"staff_name"}),
        ({"json": {"dry_run": False, "staff_name": "Mallory", "confirm_password": PASSWORD}},
         422, {"staff_name"}),
        ({"json": {"dry_run": False, "staff_name": 7, "confirm_password": PASSWORD}},
         422, {"staff_name"}),
        ({"json": {"dry_run": False, "staff_name": "Ada"}}, 422, {"confirm_password"}),
        ({"json": {"dry_run": False, "staff_name": "Ada", "confirm_password": "wrong!"}},
         422, {"confirm_password"}),
    ]
    for kwargs, status, fields in cases:
        r = lab.client.post(url, headers={**headers, "content-type": "application/json"},
                            **kwargs)
        assert r.status_code == status, (kwargs, r.text)
        error = r.json()["error"]
        assert error["message"]
        if fields is not None:
            assert set(error.get("fields", {})) == fields, (kwargs, error)
    # The session cookie (set by the login) without the CSRF header: refused.
    r = lab.client.post(url, json={"dry_run": False, "staff_name": "Ada",
                                   "confirm_password": PASSWORD})
    assert r.status_code == 403 and r.json()["error"]["code"] == "csrf_failed"
    assert copy.is_dir() and lab.repairs_recorded(job.id) == []
    # With the header, the cookie call works.
    r = lab.client.post(url, headers={"X-CSRF-Token": lab.csrf}, json={
        "dry_run": False, "staff_name": "Ada", "confirm_password": PASSWORD})
    assert r.status_code == 200 and r.json()["ok"] is True


def test_the_admin_page_lists_plans_and_repairs_with_the_password_again(lab: Lab) -> None:
    job = lab.approved_job()
    copy = lab.leftover(job)
    r = lab.client.get("/staff/admin/audit", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/staff/login?next=/staff/admin/audit"
    lab.login()
    page = lab.client.get("/staff/admin/audit")
    assert page.status_code == 200, page.text
    assert 'data-kind="stale_duplicate"' in page.text and f'data-job="{job.id}"' in page.text
    assert 'id="audit-count" data-count="1"' in page.text and 'id="audit-plan"' not in page.text
    assert 'name="confirm_password"' in page.text and "<script>" not in page.text
    plan = lab.client.get("/staff/admin/audit?plan=1")
    assert 'id="audit-plan" data-count="1"' in plan.text
    assert f"remove Uploaded/{copy.name}" in plan.text and "Nothing was changed." in plan.text

    form = {"csrf_token": lab.csrf, "staff_name": "Ada"}
    for bad, status in (({**form, "confirm_password": "wrong!"}, 422),
                        (form, 422),
                        ({**form, "csrf_token": "forged", "confirm_password": PASSWORD}, 403),
                        ({**form, "staff_name": "Mallory", "confirm_password": PASSWORD}, 422)):
        r = lab.client.post("/staff/admin/audit/repair", data=bad)
        assert r.status_code == status, (bad, r.text)
        assert 'id="admin-error"' in r.text
        assert copy.is_dir() and lab.repairs_recorded(job.id) == []
    wrong = lab.client.post("/staff/admin/audit/repair",
                            data={**form, "confirm_password": "wrong!"})
    assert "Wrong password; try again." in wrong.text and 'aria-invalid="true"' in wrong.text

    done = lab.client.post("/staff/admin/audit/repair", data={**form, "confirm_password": PASSWORD})
    assert done.status_code == 200, done.text
    assert 'id="audit-done" data-done="1"' in done.text
    assert 'id="audit-count" data-count="0"' in done.text and 'id="audit-clean"' in done.text
    assert not copy.exists()
    (event,) = lab.repairs_recorded(job.id)
    assert event.actor.name == "Ada" and event.actor.workstation == "Desk"
