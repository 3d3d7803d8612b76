"""``POST /api/v1/slicer/opened``: the slicer opener reports that a job's file was opened.

Body ``{"link": "print3d://open?...", "host": str, "slicer": str}`` (``host``: the
computer's name, ``slicer``: the program; both optional, at most 120 characters).

Authorisation is the link itself, not a staff login: the opener runs from a browser
click with no session, and a staff password or bearer token kept on every workstation
would be a far bigger key than needed. A link signed with ``PRINTCORE_OPENER_SECRET``
authorises exactly one ``opened_in_slicer`` event, for the job and file it names,
until 10 minutes after its expiry; its nonce is recorded in the event, and a second
report of the same link is refused (409).

Answers 201 ``{"event": <event>}``; 401 ``link_refused`` (bad signature, expired,
malformed); 404 no such job; 409 ``already_reported``; 422 the file is not the job's;
503 ``opener_not_configured`` when the server has no opener secret.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from adapters.serialization import to_json_dict
from adapters.web.context import WebContext
from adapters.web.responses import JSONResponse, plain_error
from printcore.errors import ValidationError
from printcore.requests.job import Actor

__all__ = ["EVENT_KIND", "REPORT_GRACE_SECONDS", "slicer_api_routes"]

EVENT_KIND = "opened_in_slicer"
#: A report may arrive this long after the link's expiry (it was opened just before).
REPORT_GRACE_SECONDS = 600
#: The actor name in the job's history; the workstation comes from the signed link.
ACTOR_NAME = "Slicer opener"

Endpoint = Callable[[Request], Awaitable[Response]]
BodyReader = Callable[[Request], Awaitable[dict[str, Any]]]


def _label(body: dict[str, Any], name: str) -> str:
    value = body.get(name) or ""
    if not isinstance(value, str):
        raise ValidationError(f"{name} must be text.", {name: "Must be text."})
    text = " ".join("".join(ch for ch in value if ch.isprintable()).split())
    if len(text) > 120:
        raise ValidationError(f"{name} is too long.", {name: "At most 120 characters."})
    return text


def slicer_api_routes(ctx: WebContext, body_of: BodyReader,
                      endpoint: Callable[[Endpoint], Endpoint]) -> list[Route]:
    """The route, for mounting under ``/api/v1`` beside :mod:`adapters.web.api`'s."""
    svc = ctx.requests

    async def opened(request: Request) -> Response:
        links = ctx.opener_links
        if links is None:
            return plain_error("opener_not_configured",
                               "This server has no PRINTCORE_OPENER_SECRET.", 503)
        body = await body_of(request)
        try:
            link = links.check(body.get("link"), time.time(), REPORT_GRACE_SECONDS)
        except ValueError as refused:
            return plain_error("link_refused", str(refused), 401)
        host, slicer = _label(body, "host"), _label(body, "slicer")
        job = svc.get(link.job_id)  # NotFoundError → 404
        stored_name = link.file.rsplit("/", 1)[-1]
        if job.file(stored_name) is None:
            raise ValidationError(f"Job {job.id} has no file called {stored_name!r}.",
                                  {"link": "Not one of the job's files."})
        if any(e.kind == EVENT_KIND and e.details.get("link") == link.nonce
               for e in svc.history(link.job_id)):
            return plain_error("already_reported", "This link's opening was reported already.",
                               409)
        event = svc.record_event(
            link.job_id,
            Actor.staff(ACTOR_NAME, link.workstation or None),
            EVENT_KIND,
            {"stored_name": stored_name, "file": link.file, "host": host, "slicer": slicer,
             "link": link.nonce},
        )
        return JSONResponse({"event": to_json_dict(event)}, status_code=201)

    return [Route("/slicer/opened", endpoint(opened), methods=["POST"])]
