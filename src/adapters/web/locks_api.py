"""Soft locks on jobs over HTTP (:mod:`printcore.requests.locks`).

JSON API (under ``/api/v1``; authentication and errors as in :mod:`adapters.web.api`;
the page's script calls it with the session cookie and ``X-CSRF-Token``):

* ``POST /jobs/{job_id}/lock`` ``{"staff_name": str, "action": str?, "take_over": bool?}``
  takes the lock for ``action`` (default ``work``; one of
  :data:`~printcore.requests.locks.LOCK_ACTIONS`), refreshes it when it is already the
  caller's (the heartbeat), or takes it over from someone else when ``take_over`` is
  true. 200 ``{"lock": Lock, "outcome": "taken" | "refreshed" | "taken_over"}``; 409
  ``{"error": {"code": "lock_held", "message"}, "lock": Lock}`` naming the holder.
* ``DELETE /jobs/{job_id}/lock`` ``{"staff_name": str}`` (or ``?staff_name=``) gives it
  back. 200 ``{"lock": null, "released": Lock | null}`` (null: there was no live lock);
  409 with the holder when someone else holds it.

The workstation is always the login's (the cookie's session, or the bearer token's,
named at ``POST /auth/login``); a body's ``workstation`` must match it (else 422). Both
answer 401 without a login, 403 for a cookie call without the CSRF header, 404 for an
unknown job, 422 for a missing or unknown ``staff_name`` (not active staff), an unknown
``action``, a ``take_over`` that is not a boolean.

``Lock`` (:func:`lock_json`): ``job_id``, ``staff_name``, ``workstation``, ``action``,
``doing`` (the verb: ``approving``), ``message`` ("Ana at Front desk is approving this
job (until 16:42 UTC)"), ``taken_at``, ``expires_at`` (UTC ISO), ``expires_in_seconds``.

Plain forms, for pages without JavaScript (and the banner's "Take over" button):
``POST /staff/jobs/{job_id}/lock`` (``csrf_token``, ``staff_name`` or the session's name,
``action``, ``take_over``) and ``POST /staff/jobs/{job_id}/unlock``; both answer 303 back
to the job page with what happened as its flash line.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from adapters.web.context import WebContext
from adapters.web.identity import acting_name, remember_if_unset
from adapters.web.render import Renderer
from adapters.web.responses import JSONResponse
from adapters.web.security import require_csrf, workstation
from printcore.errors import AuthenticationError, NotFoundError, PrintcoreError, ValidationError
from printcore.requests.job import Actor
from printcore.requests.locks import LOCK_ACTIONS, JobLock, LockHeldError, check_action

__all__ = ["QUIET_EVENTS", "lock_api_routes", "lock_context", "lock_form_routes", "lock_json"]

Endpoint = Callable[[Request], Awaitable[Response]]
BodyReader = Callable[[Request], Awaitable[dict[str, Any]]]

_NAME_LIMIT = 80

#: Lock events the job page's history list leaves out (``lock_taken_over`` shows).
QUIET_EVENTS = frozenset({"lock", "unlock"})


def lock_json(lock: JobLock | None, now: datetime | None = None) -> dict[str, Any] | None:
    """A live lock as JSON (see the module), or None. With ``now`` (UTC), an expired
    lock is None too and ``expires_in_seconds`` counts from it."""
    if lock is None or (now is not None and not lock.live(now)):
        return None
    data: dict[str, Any] = {
        "job_id": lock.job_id, "staff_name": lock.staff_name,
        "workstation": lock.workstation, "action": lock.action, "doing": lock.doing,
        "message": lock.describe(), "taken_at": lock.taken_at.isoformat(),
        "expires_at": lock.expires_at.isoformat(),
    }
    if now is not None:
        data["expires_in_seconds"] = max(0, round((lock.expires_at - now).total_seconds()))
    return data


def _staff_name(value: Any) -> str:
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
    return str(value)


def _action(value: Any) -> str:
    if value is None or value == "":
        return "work"
    if not isinstance(value, str):
        raise ValidationError("action must be text.", {"action": "Must be text."})
    return check_action(value.strip())


def _take_over(value: Any) -> bool:
    if value is None:
        return False
    if not isinstance(value, bool):
        raise ValidationError("take_over must be true or false.",
                              {"take_over": "Must be a boolean."})
    return value


def _held(err: LockHeldError, now: datetime) -> JSONResponse:
    return JSONResponse({"error": {"code": err.code, "message": err.message},
                         "lock": lock_json(err.lock, now)}, status_code=409)


def lock_api_routes(ctx: WebContext, body_of: BodyReader,
                    endpoint: Callable[[Endpoint], Endpoint]) -> list[Route]:
    """The two JSON routes, for mounting under ``/api/v1`` beside :mod:`adapters.web.api`'s
    (``body_of`` and ``endpoint`` are that module's, handed in)."""
    svc = ctx.requests

    async def read(request: Request) -> tuple[Actor, dict[str, Any], int]:
        ws = workstation(request, ctx, api=True)  # 401/403 before the body is read
        body = await body_of(request)
        if "staff_name" not in body and request.query_params.get("staff_name"):
            body["staff_name"] = request.query_params["staff_name"]  # DELETE clients
        given = body.get("workstation")
        if given is not None and given != ws:
            raise ValidationError(
                "A lock is taken at your login's workstation.",
                {"workstation": f"Your login is at {ws[:60]!r}; leave this out, or log in "
                                "with that workstation name."})
        return Actor.staff(_staff_name(body.get("staff_name")), ws), body, \
            int(request.path_params["job_id"])

    async def take(request: Request) -> Response:
        who, body, job_id = await read(request)
        action, take_over = _action(body.get("action")), _take_over(body.get("take_over"))
        try:
            lock, outcome = svc.locks.take(job_id, who, action, take_over=take_over)
        except LockHeldError as err:
            return _held(err, svc.clock.now())
        return JSONResponse({"lock": lock_json(lock, svc.clock.now()), "outcome": outcome})

    async def release(request: Request) -> Response:
        who, _body, job_id = await read(request)
        try:
            released = svc.locks.release(job_id, who)
        except LockHeldError as err:
            return _held(err, svc.clock.now())
        return JSONResponse({"lock": None, "released": lock_json(released)})

    take.__name__, release.__name__ = "api_lock", "api_unlock"
    return [
        Route("/jobs/{job_id:id}/lock", endpoint(take), methods=["POST"]),
        Route("/jobs/{job_id:id}/lock", endpoint(release), methods=["DELETE"]),
    ]


def lock_form_routes(ctx: WebContext, render: Renderer) -> list[Route]:
    """``POST /staff/jobs/{id}/lock`` and ``/unlock`` (see the module); mount them before
    the staff pages' ``/staff/jobs/{id}/{event}`` catch-all."""
    svc = ctx.requests

    def handler(taking: bool) -> Endpoint:
        async def form_lock(request: Request) -> Response:
            job_id = int(request.path_params["job_id"])
            back = f"/staff/jobs/{job_id}"
            form = await request.form()
            try:
                ws = workstation(request, ctx)
            except AuthenticationError:
                return RedirectResponse(f"/staff/login?next={back}", status_code=303)
            try:
                require_csrf(request, str(form.get("csrf_token", "")))
                name = _staff_name(acting_name(request, form))
                who = Actor.staff(name, ws)
                if taking:
                    action = _action(str(form.get("action") or ""))
                    take_over = str(form.get("take_over") or "") in ("1", "true", "on")
                    lock, outcome = svc.locks.take(job_id, who, action, take_over=take_over)
                    note = ("You took over this job's lock: " if outcome == "taken_over"
                            else "You hold this job's lock: ")
                    note += (f"the other workstation sees that you are {lock.doing} it. "
                             "It expires by itself after a while.")
                    back += f"#action-{action}"
                    remember_if_unset(request, name)
                else:
                    released = svc.locks.release(job_id, who)
                    note = ("Lock released." if released is not None
                            else "There was no lock to release.")
            except NotFoundError as err:
                return render(request, "error.html", {"error": err}, status_code=404)
            except PrintcoreError as err:
                note = err.message
            request.session["flash"] = note
            return RedirectResponse(back, status_code=303)

        form_lock.__name__ = "staff_lock" if taking else "staff_unlock"
        return form_lock

    return [
        Route("/staff/jobs/{job_id:id}/lock", handler(True), methods=["POST"]),
        Route("/staff/jobs/{job_id:id}/unlock", handler(False), methods=["POST"]),
    ]


def lock_context(ctx: WebContext, request: Request, job_id: int) -> dict[str, Any]:
    """What the job page's banner and dialogs need (``staff/_lock.html``): ``job_lock``
    (the live lock or None), ``job_lock_mine`` (held by this session's staff name and
    workstation), ``lock_open_action`` (the dialog drawn open: the action whose post this
    page answers, else the one this session holds the lock for) and ``lock_seconds``."""
    svc = ctx.requests
    lock = svc.locks.current(job_id)
    mine = lock is not None and lock.held_by(str(request.session.get("staff_name") or ""),
                                             str(request.session.get("ws") or ""))
    open_action = lock.action if lock is not None and mine else None
    if request.method == "POST":
        posted = request.url.path.rstrip("/").rsplit("/", 1)[-1]
        if posted in LOCK_ACTIONS:
            open_action = posted
    return {"job_lock": lock, "job_lock_mine": mine, "lock_open_action": open_action,
            "lock_seconds": int(svc.lock_ttl.total_seconds())}
