"""Staff notes and corrections of a request's details: the JSON API (under ``/api/v1``)
and the pieces the staff job page uses (its forms post to :mod:`adapters.web.staff`).

* ``PATCH /jobs/{job_id}/notes``: JSON body ``{"staff_name": str, "notes": str,
  "version": int?}``; ``notes`` (multi-line, at most 2000 characters; ``""`` clears
  them) replaces the job's staff notes. One ``notes`` event (``old``, ``new``).
* ``PATCH /jobs/{job_id}``: JSON body ``{"staff_name": str, "version": int, <field>:
  str, …}`` with any of ``student_name``, ``email``, ``discipline``, ``class_number``,
  ``color``, ``preferred_printer`` (checked as on the submission form; the email with
  email-validator, no DNS). ``version`` is required: a correction must be made to the
  job as seen. One ``edit`` event (``{"changes": {field: {"old", "new"}}}``).

Both answer 200 with the job (as ``GET /jobs/{job_id}`` without its events; it carries
``staff_notes``, ``staff_notes_by``, ``staff_notes_at``), 401 without a login, 404 for
an unknown job, 409 when ``version`` is stale, 422 with a message per field for a bad
value, an unknown field, nothing changed, or a staff name not on the active list.
Authentication and errors as in :mod:`adapters.web.api`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from adapters.web.context import WebContext
from adapters.web.intake import check_email
from adapters.web.numbers import json_version
from adapters.web.responses import JSONResponse
from adapters.web.security import workstation
from printcore.errors import ValidationError
from printcore.requests.details import EDITABLE_FIELDS, STAFF_NOTES_LIMIT
from printcore.requests.job import Actor, Job
from printcore.requests.service import PrintRequests
from printcore.requests.validation import FIELD_LIMITS

__all__ = ["OTHER", "details_api_routes", "details_context", "form_changes"]

Endpoint = Callable[[Request], Awaitable[Response]]
BodyReader = Callable[[Request], Awaitable[dict[str, Any]]]
JobJson = Callable[[Job], dict[str, Any]]

#: The list entry that lets staff (and students) type a colour or printer not listed.
OTHER = "other"
_NAME_LIMIT = 80
_CHOSEN = ("color", "preferred_printer")


def _staff_name(body: Mapping[str, Any]) -> str:
    value = body.get("staff_name")
    if value is None:
        value = ""
    if not isinstance(value, str):
        raise ValidationError("staff_name must be text.", {"staff_name": "Must be text."})
    value = value.strip()
    if not value:
        raise ValidationError("staff_name is required.", {"staff_name": "Required."})
    if len(value) > _NAME_LIMIT:
        raise ValidationError("staff_name is too long.",
                              {"staff_name": f"At most {_NAME_LIMIT} characters."})
    return value


def checked_email(svc: PrintRequests, job_id: int, changes: dict[str, Any]) -> dict[str, Any]:
    """``changes`` with a changed ``email`` normalised by email-validator (as on the
    upload form). Raises ValidationError on ``email``, NotFoundError for no such job."""
    email = changes.get("email")
    if isinstance(email, str) and email.strip() != svc.get(job_id).email:
        changes = {**changes, "email": check_email(email.strip())}
    return changes


def form_changes(svc: PrintRequests, job_id: int, form: Mapping[str, Any]) -> dict[str, Any]:
    """The corrections a posted details form asks for: each editable field present in the
    form; for colour and preferred printer, the list's choice or, when it is ``other``,
    the text typed beside it (``color_other``, ``preferred_printer_other``)."""
    changes: dict[str, Any] = {}
    for name in EDITABLE_FIELDS:
        if name not in form:
            continue
        value = str(form.get(name, ""))
        if name in _CHOSEN and value == OTHER:
            value = str(form.get(f"{name}_other", ""))
        changes[name] = value
    return checked_email(svc, job_id, changes)


def details_context(ctx: WebContext) -> dict[str, Any]:
    """What the job page's notes and details forms need: the lab's lists and limits."""
    return {"color_choices": list(ctx.colors), "printer_choices": list(ctx.printer_choices),
            "editable_fields": EDITABLE_FIELDS, "staff_notes_limit": STAFF_NOTES_LIMIT,
            "other_choice": OTHER, "field_limits": FIELD_LIMITS}


def details_api_routes(ctx: WebContext, body_of: BodyReader,
                       endpoint: Callable[[Endpoint], Endpoint],
                       job_json: JobJson) -> list[Route]:
    """The two routes, for mounting under ``/api/v1`` beside :mod:`adapters.web.api`'s
    (``body_of``, ``endpoint`` and ``job_json`` handed in from there, as for
    :mod:`adapters.web.review_api`)."""
    svc = ctx.requests

    async def api_staff_notes(request: Request) -> Response:
        ws = workstation(request, ctx, api=True)  # 401 before the body is read
        body = await body_of(request)
        who = Actor.staff(_staff_name(body), ws)
        version = json_version(body)
        if "notes" not in body:
            raise ValidationError("notes is required.",
                                  {"notes": 'Required: the new text ("" clears the notes).'})
        job_id = int(request.path_params["job_id"])
        job = svc.set_staff_notes(job_id, who, body["notes"], expected_version=version)
        return JSONResponse(job_json(job))

    async def api_edit_details(request: Request) -> Response:
        ws = workstation(request, ctx, api=True)
        body = await body_of(request)
        who = Actor.staff(_staff_name(body), ws)
        version = json_version(body)
        if version is None:
            raise ValidationError("version is required.",
                                  {"version": "Required: the job version you saw."})
        job_id = int(request.path_params["job_id"])
        changes = {k: v for k, v in body.items() if k not in ("staff_name", "version")}
        job = svc.edit_details(job_id, who, checked_email(svc, job_id, changes),
                               expected_version=version)
        return JSONResponse(job_json(job))

    return [
        Route("/jobs/{job_id:id}/notes", endpoint(api_staff_notes), methods=["PATCH"]),
        Route("/jobs/{job_id:id}", endpoint(api_edit_details), methods=["PATCH"]),
    ]
