"""The storage integrity audit (:mod:`adapters.files.audit`) on the web (issue 13).

* ``GET /api/v1/admin/audit`` (staff login, as the other API routes): :func:`audit_json`
  of a scan that changes nothing. 401 without a login, 503 when the database cannot be
  reached.
* ``POST /api/v1/admin/audit/repair``, JSON body ``{"dry_run": bool (default true),
  "staff_name": str, "confirm_password": str}``: a dry run answers what each safe repair
  would do; otherwise (``staff_name`` an active staff member and ``confirm_password`` the
  shared staff password asked again, both required then) the repairs are done, each an
  ``audit_repaired`` event by that staff member at that workstation, and the answer says
  what was done (:func:`repair_json`). 422 with ``fields`` for a body that is not a JSON
  object, a ``dry_run`` that is not true/false, a missing or unknown staff name, a
  missing or wrong password (nothing is done then); 403 for a cookie call without the
  CSRF header.
* ``GET /staff/admin/audit`` (staff session): the findings as a table; ``?plan=1`` (the
  "Dry run" button) adds what a repair would do. ``POST /staff/admin/audit/repair`` (form:
  ``csrf_token``, ``staff_name``, ``confirm_password``) repairs and answers the page with
  what was done and the findings left; refusals answer the page with the message (422,
  403) and change nothing.

One repair runs at a time in a process. The scan hashes every stored file, so it reads
the whole storage root; it runs in a worker thread.
"""

from __future__ import annotations

import threading
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from adapters.files.audit import KINDS, SETTLE_SECONDS, AuditReport, audit_storage
from adapters.web.admin import SECTIONS
from adapters.web.api import read_json_object
from adapters.web.context import WebContext
from adapters.web.identity import acting_name, remember_if_unset
from adapters.web.render import Renderer
from adapters.web.reprompt import require_password_again
from adapters.web.responses import JSONResponse, error_json, status_for
from adapters.web.security import require_csrf, workstation
from printcore.errors import AuthenticationError, PrintcoreError, ValidationError
from printcore.events import Actor

__all__ = ["KIND_TITLES", "audit_json", "audit_routes", "repair_json"]

PAGE = "/staff/admin/audit"

#: What each finding kind is called on the page.
KIND_TITLES: dict[str, str] = {
    "staging_leftover": "Leftover staging file",
    "folder_state_mismatch": "Folder in the wrong state",
    "missing_authoritative_file": "Missing file to print",
    "missing_file": "Missing file",
    "stale_duplicate": "Stale duplicate",
    "metadata_mismatch": "metadata.json differs",
    "missing_folder": "Missing folder",
    "orphan_folder": "Orphan folder",
}

_REPAIRING = threading.Lock()


def audit_json(report: AuditReport) -> dict[str, Any]:
    """``{jobs_checked, ok, counts: {kind: n} (every kind), findings: [{kind, job_id,
    path, target, message, repairable, repair}]}``; paths relative to the storage root."""
    counts = dict.fromkeys(KINDS, 0)
    for f in report.findings:
        counts[f.kind] += 1
    return {"jobs_checked": report.jobs_checked, "ok": not report.findings,
            "counts": counts, "findings": [f.as_json() for f in report.findings]}


def repair_json(report: AuditReport) -> dict[str, Any]:
    """``{dry_run, jobs_checked, repairs: [{kind, job_id, path, target, action, done,
    error}], not_repairable: [finding as in audit_json], remaining, ok}``: ``repairs``
    are done (``done`` true), would be done (dry run) or were skipped (``error`` says
    why); ``remaining`` counts the findings this call did not repair."""
    return {"dry_run": report.dry_run, "jobs_checked": report.jobs_checked,
            "repairs": [r.as_json() for r in report.repairs],
            "not_repairable": [f.as_json() for f in report.findings if not f.repairable],
            "remaining": len(report.remaining), "ok": report.ok}


def _active_staff(ctx: WebContext, name: str) -> str:
    name = " ".join(name.split())
    if not name:
        raise ValidationError("Say who is repairing: staff_name is required.",
                              {"staff_name": "Choose your name from the staff list."})
    if name not in {m.name for m in ctx.staff.list()}:
        raise ValidationError(f"{name!r} is not on the active staff list.",
                              {"staff_name": "Choose your name from the staff list."})
    return name


def audit_routes(ctx: WebContext, render: Renderer) -> list[BaseRoute]:
    """The four routes (registered before the ``/api/v1`` mount and ``staff_routes``)."""

    def scan() -> AuditReport:
        return audit_storage(ctx.files, ctx.requests.uow)

    def repair(actor: Actor) -> AuditReport:
        with _REPAIRING:
            return audit_storage(ctx.files, ctx.requests.uow, repair=True, actor=actor,
                                 clock=ctx.requests.clock)

    async def api_audit(request: Request) -> Response:
        try:
            workstation(request, ctx, api=True)
            return JSONResponse(audit_json(await run_in_threadpool(scan)))
        except PrintcoreError as err:
            return error_json(err)

    async def api_repair(request: Request) -> Response:
        try:
            ws = workstation(request, ctx, api=True)
            body = await read_json_object(request)
            dry_run = body.get("dry_run", True)
            if not isinstance(dry_run, bool):
                raise ValidationError("dry_run must be true or false.",
                                      {"dry_run": "true (only list) or false (repair)."})
            if dry_run:
                return JSONResponse(repair_json(await run_in_threadpool(scan)))
            staff_name = body.get("staff_name")
            if staff_name is not None and not isinstance(staff_name, str):
                raise ValidationError("staff_name must be text.",
                                      {"staff_name": "Choose your name from the staff list."})
            name = _active_staff(ctx, staff_name or "")
            require_password_again(ctx, body)
            report = await run_in_threadpool(repair, Actor.staff(name, ws))
            return JSONResponse(repair_json(report))
        except PrintcoreError as err:
            return error_json(err)

    def page(request: Request, extra: dict[str, Any], error: PrintcoreError | None = None,
             status_code: int = 200) -> Response:
        context: dict[str, Any] = {
            "section": "audit", "sections": SECTIONS, "error": error,
            "fields": getattr(error, "fields", {}) if error else {}, "values": {},
            "titles": KIND_TITLES, "plan": False, "done": None,
            "settle_minutes": round(SETTLE_SECONDS / 60), **extra,
        }
        return render(request, "staff/admin_audit.html", context, status_code=status_code)

    def login_redirect() -> Response:
        return RedirectResponse(f"/staff/login?next={PAGE}", status_code=303)

    async def audit_page(request: Request) -> Response:
        try:
            workstation(request, ctx)
        except AuthenticationError:
            return login_redirect()
        report = await run_in_threadpool(scan)
        return page(request, {"report": report, "plan": request.query_params.get("plan") == "1"})

    async def repair_page(request: Request) -> Response:
        form = await request.form()
        try:
            ws = workstation(request, ctx)
        except AuthenticationError:
            return login_redirect()
        name = acting_name(request, form)
        try:
            require_csrf(request, str(form.get("csrf_token", "")))
            name = _active_staff(ctx, name)
            require_password_again(ctx, form)
        except PrintcoreError as err:
            report = await run_in_threadpool(scan)
            return page(request, {"report": report}, err, status_for(err))
        done = await run_in_threadpool(repair, Actor.staff(name, ws))
        remember_if_unset(request, name)
        after = await run_in_threadpool(scan)
        return page(request, {"report": after, "done": done})

    return [
        Route("/api/v1/admin/audit", api_audit, methods=["GET"]),
        Route("/api/v1/admin/audit/repair", api_repair, methods=["POST"]),
        Route(PAGE, audit_page, methods=["GET"]),
        Route(f"{PAGE}/repair", repair_page, methods=["POST"]),
    ]

