"""The JSON API under ``/api/v1``: the staff actions for scripts and later front ends.
The self-service queue's endpoints come from :mod:`adapters.web.queue_api`.

Each endpoint parses its input, calls one printcore service and maps printcore errors to
the JSON error shape of :mod:`adapters.web.responses`. The OpenAPI document is served at
``/api/v1/openapi.json``.
"""

from __future__ import annotations

import contextlib
import json
import math
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from adapters.serialization import to_json_dict
from adapters.web.context import WebContext
from adapters.web.details_api import details_api_routes
from adapters.web.health_api import health_api_routes
from adapters.web.intake import FormRejected, receive_sliced_file, receive_submission
from adapters.web.locks_api import lock_api_routes, lock_json
from adapters.web.numbers import MAX_OFFSET, json_version, optional_version, whole_number
from adapters.web.openapi import openapi_document
from adapters.web.queue_api import queue_api_routes
from adapters.web.reprompt import require_password_again
from adapters.web.responses import JSONResponse, error_json, plain_error
from adapters.web.review_api import review_api_routes
from adapters.web.security import (
    bearer_token,
    clean_workstation,
    client_address,
    csrf_token,
    end_bearer_session,
    login_session,
    logout_session,
)
from adapters.web.security import workstation as current_workstation
from adapters.web.sliced_saves import sliced_saves_api_routes
from adapters.web.slicer_api import slicer_api_routes
from printcore.errors import AuthenticationError, NotFoundError, PrintcoreError, ValidationError
from printcore.events import Event
from printcore.outbox import OutboxMessage
from printcore.requests.job import Actor, Job
from printcore.requests.lifecycle import MAX_OVERRIDE_REASON, allowed_events, allowed_overrides
from printcore.requests.pricing import round_up_to_half_hour
from printcore.requests.search import JobQuery

__all__ = ["api_routes", "job_json", "read_json_object"]

Handler = Callable[[Request], Awaitable[Response]]


def job_json(job: Job, events: list[Event] | None = None) -> dict[str, Any]:
    """A job as JSON: its fields (UTC ISO times, cents, grams, hours) plus
    ``allowed_actions`` (lifecycle events) and ``allowed_overrides`` (the staff overrides
    allowed now, each needing a reason: :func:`printcore.requests.lifecycle.allowed_overrides`)."""
    data: dict[str, Any] = to_json_dict(job)
    data.pop("confirmation_nonce", None)
    data.pop("reminder_nonce", None)  # part of the link, like the nonce
    data["allowed_actions"] = allowed_events(job)
    data["allowed_overrides"] = allowed_overrides(job)  # those of allowed_actions + requote
    data["amount_due_cents"] = job.amount_due_cents  # pickup: quote until paid, then the charge
    if events is not None:
        data["events"] = [event_json(e) for e in events]
    return data


#: The job's own fields; make_routes' ``job_json`` adds the live ``lock`` to them.
_job_fields = job_json


def event_json(event: Event) -> dict[str, Any]:
    data: dict[str, Any] = to_json_dict(event)
    return data


async def read_json_object(request: Request) -> dict[str, Any]:
    """The request's JSON object body (``{}`` when empty). Raises ValidationError for a
    body that is not JSON or not an object."""
    raw = await request.body()
    if not raw:
        return {}
    try:
        data = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise ValidationError("The request body is not valid JSON.") from None
    if not isinstance(data, dict):
        raise ValidationError("The request body must be a JSON object.")
    return data


def _number(body: dict[str, Any], name: str, required: bool = True) -> float | None:
    value = body.get(name)
    if value is None or value == "":
        if required:
            raise ValidationError(f"{name} is required.", {name: "Required."})
        return None
    if isinstance(value, bool):
        raise ValidationError(f"{name} must be a number.", {name: "Must be a number."})
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ValidationError(f"{name} must be a number.", {name: "Must be a number."}) from None
    if not math.isfinite(number):
        raise ValidationError(f"{name} must be a finite number.", {name: "Must be a number."})
    return number


def _text(body: dict[str, Any], name: str, required: bool = True, limit: int = 1000) -> str:
    value = body.get(name, "")
    if value is None:
        value = ""
    if not isinstance(value, str):
        raise ValidationError(f"{name} must be text.", {name: "Must be text."})
    value = value.strip()
    if required and not value:
        raise ValidationError(f"{name} is required.", {name: "Required."})
    if len(value) > limit:
        raise ValidationError(f"{name} is too long.", {name: f"At most {limit} characters."})
    return value


def _flag(body: dict[str, Any], name: str) -> bool:
    """An optional JSON boolean (absent or null: False); anything else is a 422."""
    value = body.get(name)
    if value is None:
        return False
    if not isinstance(value, bool):
        raise ValidationError(f"{name} must be true or false.", {name: "Must be true or false."})
    return value


_version = json_version


def _job_id(request: Request) -> int:
    return int(request.path_params["job_id"])


def make_routes(ctx: WebContext) -> list[Route]:
    svc = ctx.requests

    def job_json(job: Job, events: list[Event] | None = None,
                 locks: dict[int, Any] | None = None) -> dict[str, Any]:
        """The module's :func:`job_json` plus ``lock``: the job's live soft lock
        (:func:`adapters.web.locks_api.lock_json`) or null; ``locks`` (job id → lock,
        from ``svc.locks.live_for``) saves a query per job in lists."""
        data = _job_fields(job, events)
        if job.id is None:
            lock = None
        else:
            lock = locks.get(job.id) if locks is not None else svc.locks.current(job.id)
        data["lock"] = lock_json(lock, svc.clock.now())
        return data

    def endpoint(func: Callable[[Request], Awaitable[Response]]) -> Handler:
        async def wrapped(request: Request) -> Response:
            try:
                return await func(request)
            except PrintcoreError as err:
                return error_json(err)

        wrapped.__name__ = func.__name__
        return wrapped

    def actor(request: Request, body: dict[str, Any]) -> Actor:
        ws = current_workstation(request, ctx, api=True)
        return Actor.staff(_text(body, "staff_name", limit=80), ws)

    async def health(request: Request) -> Response:
        return JSONResponse({"status": "ok", "database": ctx.database_kind})

    async def openapi(request: Request) -> Response:
        return JSONResponse(openapi_document())

    async def submissions(request: Request) -> Response:
        client = client_address(request)
        if ctx.throttle is not None:
            ctx.throttle.check_submission(client)  # before reading a byte of the body
        try:
            submission, staged = await receive_submission(ctx, request)
        except FormRejected as rejected:
            return error_json(rejected.error)
        if ctx.throttle is not None:
            try:
                ctx.throttle.check_submission(client, submission.email)
            except PrintcoreError:
                ctx.files.discard(staged)
                raise
        job = svc.submit(submission, staged)
        if ctx.throttle is not None:
            ctx.throttle.submitted(client, submission.email)
        assert job.id is not None
        token = svc.status_token(job.id)
        return JSONResponse(
            {"id": job.id, "status": job.status, "status_url": f"/status/{token}"},
            status_code=201,
        )

    async def login(request: Request) -> Response:
        body = await read_json_object(request)
        name = clean_workstation(_text(body, "workstation", required=False, limit=200))
        password = body.get("password")
        if not isinstance(password, str) or not password:
            raise ValidationError("Send the staff password as text.",
                                  {"password": "Required: the shared staff password."})
        client = client_address(request)
        if ctx.throttle is not None:
            ctx.throttle.check_login(client, name)
        try:
            ctx.staff.check_password(password)
        except AuthenticationError:
            if ctx.throttle is not None:
                ctx.throttle.login_failed(client, name)
            raise
        session_id = login_session(request, ctx, name)
        return JSONResponse(
            {"workstation": name, "token": bearer_token(ctx, session_id, name),
             "csrf_token": csrf_token(request)}
        )

    async def logout(request: Request) -> Response:
        current_workstation(request, ctx, api=True)  # 401 when not logged in
        if not end_bearer_session(request, ctx):
            logout_session(request, ctx)
        return JSONResponse({"status": "logged_out"})

    async def staff_list(request: Request) -> Response:
        current_workstation(request, ctx, api=True)
        return JSONResponse({"staff": [m.name for m in ctx.staff.list()]})

    async def jobs(request: Request) -> Response:
        current_workstation(request, ctx, api=True)
        params = request.query_params
        status = params.get("status") or None
        limit = whole_number(params.get("limit"), "limit", 100, 1, 1000)
        offset = whole_number(params.get("offset"), "offset", 0, 0, MAX_OFFSET)
        # Any search parameter makes the listing a search (JobQuery) across all states,
        # or the ``status`` given.
        names = ("q", "print_method", "color", "preferred_printer", "discipline", "sort")
        search = {name: params.get(name) or None for name in names}
        counts = svc.counts()
        if any(search.values()):
            query = JobQuery(
                q=search["q"] or "", sort=search["sort"] or "age",  # type: ignore[arg-type]
                print_method=search["print_method"], color=search["color"],
                preferred_printer=search["preferred_printer"],
                discipline=search["discipline"], status=status, limit=limit, offset=offset)
            found, total = svc.search_jobs(query)
        else:  # no search: the listing as before (newest first without a status)
            found = svc.list_jobs(status=status, limit=limit, offset=offset)
            total = counts.get(status, 0) if status else sum(counts.values())
        live = svc.locks.live_for(j.id for j in found if j.id is not None)
        return JSONResponse(
            {"jobs": [job_json(j, locks=live) for j in found], "counts": counts, "total": total,
             "limit": limit, "offset": offset}
        )

    async def job_detail(request: Request) -> Response:
        current_workstation(request, ctx, api=True)
        job_id = _job_id(request)
        job = svc.get(job_id)
        return JSONResponse(job_json(job, svc.history(job_id)))

    async def add_file(request: Request) -> Response:
        ws = current_workstation(request, ctx, api=True)
        job_id = _job_id(request)
        staged, estimate, fields = await receive_sliced_file(ctx, request)
        try:
            name = _text(fields, "staff_name", limit=80)
            version = optional_version(fields.get("version"))
        except ValidationError:
            ctx.files.discard(staged)
            raise
        stored = svc.add_sliced_file(job_id, Actor.staff(name, ws), staged, estimate, version)
        job = svc.get(job_id)
        prefill: dict[str, Any] = {"weight_g": estimate.grams, "time_hours": None,
                                   "cost_cents": None}
        if estimate.seconds:
            prefill["time_hours"] = round_up_to_half_hour(estimate.seconds / 3600)
        if estimate.grams:
            prefill["cost_cents"] = ctx.requests.pricing.cost_cents(job.print_method, estimate.grams)
        return JSONResponse(
            {
                "file": to_json_dict(stored),
                "estimate": {
                    "seconds": estimate.seconds,
                    "hours": estimate.hours,
                    "grams": estimate.grams,
                    "slicer": estimate.slicer,
                    "source": estimate.source,
                },
                "prefill": prefill,
                "job": job_json(job),
            },
            status_code=201,
        )

    def action(name: str) -> Handler:
        async def handler(request: Request) -> Response:
            body = await read_json_object(request)
            who = actor(request, body)
            job_id = _job_id(request)
            version = _version(body)
            if name == "approve":
                job = svc.approve(
                    job_id, who,
                    weight_g=_number(body, "weight_g", required=False),  # type: ignore[arg-type]
                    time_hours=_number(body, "time_hours", required=False),  # type: ignore[arg-type]
                    authoritative_file=_text(body, "authoritative_file", required=False, limit=300),
                    expected_version=version,
                )
            elif name == "reject":
                reasons = body.get("reasons") or []
                if not isinstance(reasons, list) or not all(isinstance(r, str) for r in reasons):
                    raise ValidationError("reasons must be a list of text.", {"reasons": "List."})
                job = svc.reject(
                    job_id, who, reasons,
                    _text(body, "custom_reason", required=False), expected_version=version,
                )
            elif name in ("force_confirm", "fail_print", "revert_completion", "revert_pickup"):
                job = getattr(svc, name)(
                    job_id, who, _text(body, "reason", required=False), expected_version=version
                )
            elif name == "start_print":
                job = svc.start_print(
                    job_id, who, _text(body, "printer", required=False, limit=120),
                    expected_version=version,
                )
            elif name == "requote":
                cost = _number(body, "cost_cents", required=False)
                if cost is not None and not cost.is_integer():
                    raise ValidationError("cost_cents must be whole cents.",
                                          {"cost_cents": "Whole cents, e.g. 450 for $4.50."})
                job = svc.requote(
                    job_id, who,
                    weight_g=_number(body, "weight_g", required=False),  # type: ignore[arg-type]
                    time_hours=_number(body, "time_hours", required=False),  # type: ignore[arg-type]
                    reason=_text(body, "reason", required=False, limit=MAX_OVERRIDE_REASON),
                    cost_cents=None if cost is None else int(cost),
                    expected_version=version,
                )
            elif name == "complete":
                job = svc.complete(job_id, who, expected_version=version)
            elif name == "resend_confirmation":
                job = svc.resend_confirmation(job_id, who, expected_version=version)
            elif name == "pick_up":
                job = svc.pick_up(
                    job_id, who,
                    grams=_number(body, "grams", required=False),  # type: ignore[arg-type]
                    txn_no=_text(body, "txn_no", required=False, limit=120),
                    picked_up_by=_text(body, "picked_up_by", required=False, limit=120),
                    expected_version=version,
                    override_reason=_text(body, "override_reason", required=False,
                                          limit=MAX_OVERRIDE_REASON) or None,
                    charge_quote=_flag(body, "charge_quote"),
                )
            else:  # pragma: no cover - routes are built from a fixed table
                return plain_error("not_found", "Unknown action.", 404)
            return JSONResponse(job_json(job))

        handler.__name__ = f"api_{name}"
        return handler

    async def delete_job(request: Request) -> Response:
        body = await read_json_object(request)
        if "staff_name" not in body and request.query_params.get("staff_name"):
            body["staff_name"] = request.query_params["staff_name"]
        who = actor(request, body)
        job_id = _job_id(request)
        version = _version(body)
        svc.get(job_id)  # 404 for an unknown job before the password is asked about
        require_password_again(ctx, body)
        job = svc.delete(job_id, who, _text(body, "reason", required=False), version)
        return JSONResponse({"id": job.id, "status": "deleted"})

    def _outbox() -> Any:
        if ctx.outbox is None:
            raise NotFoundError("Messages are not set up in this process.")
        return ctx.outbox

    async def job_messages(request: Request) -> Response:
        current_workstation(request, ctx, api=True)
        job_id = _job_id(request)
        svc.get(job_id)  # 404 for an unknown job
        rows = _outbox().list(subject="job", subject_id=job_id, limit=500)
        return JSONResponse({"messages": [message_json(m) for m in rows]})

    async def retry_message(request: Request) -> Response:
        body = await read_json_object(request)
        who = actor(request, body)
        message_id = int(request.path_params["message_id"])
        message = _outbox().get(message_id)
        recipient = None
        if message.subject == "job" and message.channel == "email":
            # The job's address as it is now: a typo corrected since the email failed.
            with contextlib.suppress(NotFoundError):
                recipient = svc.get(message.subject_id).email
        message = _outbox().retry(message_id, who, recipient=recipient)
        return JSONResponse(message_json(message))

    async def confirm(request: Request) -> Response:
        body = await read_json_object(request)
        job = svc.confirm(_text(body, "token", limit=2000))
        return JSONResponse({"id": job.id, "status": job.status})

    routes = [
        Route("/health", endpoint(health)),
        *health_api_routes(endpoint),
        Route("/openapi.json", endpoint(openapi)),
        Route("/submissions", endpoint(submissions), methods=["POST"]),
        Route("/auth/login", endpoint(login), methods=["POST"]),
        Route("/auth/logout", endpoint(logout), methods=["POST"]),
        Route("/staff", endpoint(staff_list)),
        Route("/jobs", endpoint(jobs)),
        Route("/jobs/{job_id:id}", endpoint(job_detail)),
        Route("/jobs/{job_id:id}", endpoint(delete_job), methods=["DELETE"]),
        Route("/jobs/{job_id:id}/files", endpoint(add_file), methods=["POST"]),
        Route("/jobs/{job_id:id}/messages", endpoint(job_messages)),
        Route("/messages/{message_id:id}/retry", endpoint(retry_message), methods=["POST"]),
        Route("/confirm", endpoint(confirm), methods=["POST"]),
    ]
    for path, name in ACTION_PATHS.items():
        routes.append(Route(f"/jobs/{{job_id:id}}/{path}", endpoint(action(name)), methods=["POST"]))
    routes.extend(queue_api_routes(ctx, read_json_object, endpoint))
    routes.extend(slicer_api_routes(ctx, read_json_object, endpoint))
    routes.extend(review_api_routes(ctx, read_json_object, endpoint, job_json))
    routes.extend(lock_api_routes(ctx, read_json_object, endpoint))
    routes.extend(sliced_saves_api_routes(ctx, read_json_object, endpoint, job_json))
    routes.extend(details_api_routes(ctx, read_json_object, endpoint, job_json))
    return routes


#: URL segment → service action.
ACTION_PATHS: dict[str, str] = {
    "approve": "approve",
    "reject": "reject",
    "force-confirm": "force_confirm",
    "mark-printing": "start_print",
    "mark-failed": "fail_print",
    "mark-complete": "complete",
    "payment": "pick_up",
    "revert-completion": "revert_completion",
    "revert-pickup": "revert_pickup",
    "resend-confirmation": "resend_confirmation",
    "requote": "requote",
}


def message_json(m: OutboxMessage) -> dict[str, Any]:
    """An outbox row for staff: id, channel, kind, recipient, status (pending, sent,
    failed), attempts, UTC ISO times, the last error (the server's answer)."""
    def iso(value: Any) -> str | None:
        return value.isoformat() if value is not None else None

    return {"id": m.id, "channel": m.channel, "kind": m.kind, "recipient": m.recipient,
            "subject": m.subject, "subject_id": m.subject_id, "status": m.status,
            "attempts": m.attempts, "created_at": iso(m.created_at),
            "next_attempt_at": iso(m.next_attempt_at) if m.status == "pending" else None,
            "sent_at": iso(m.sent_at), "last_error": m.last_error}


def api_routes(ctx: WebContext) -> list[Route]:
    return make_routes(ctx)
