"""Marking a job reviewed in the JSON API (under ``/api/v1``): the NEW badge's switch.

* ``POST /jobs/{job_id}/review``: JSON body ``{"staff_name": str, "version": int?}``
  (``version``: the job version you saw; a changed job answers 409). The job stops
  showing as NEW; its ``reviewed_at`` (UTC) and ``reviewed_by`` are set.
* ``DELETE /jobs/{job_id}/review``: the same body, or ``?staff_name=`` for clients that
  send no body with DELETE; the job shows as NEW again.

Both answer 200 with the job (as ``GET /jobs/{job_id}`` without its events), 401 without
a login, 404 for an unknown job, 409 when it is already reviewed (or, for DELETE, not
reviewed) or ``version`` is stale, 422 for a staff name not on the active list.
Authentication and errors as in :mod:`adapters.web.api`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from adapters.web.context import WebContext
from adapters.web.numbers import json_version
from adapters.web.responses import JSONResponse
from adapters.web.security import workstation
from printcore.errors import ValidationError
from printcore.requests.job import Actor, Job

__all__ = ["review_api_routes"]

Endpoint = Callable[[Request], Awaitable[Response]]
BodyReader = Callable[[Request], Awaitable[dict[str, Any]]]
JobJson = Callable[[Job], dict[str, Any]]

_NAME_LIMIT = 80


def _staff_name(body: dict[str, Any]) -> str:
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


_version = json_version


def review_api_routes(ctx: WebContext, body_of: BodyReader,
                      endpoint: Callable[[Endpoint], Endpoint],
                      job_json: JobJson) -> list[Route]:
    """The two routes, for mounting under ``/api/v1`` beside :mod:`adapters.web.api`'s;
    ``body_of`` parses a JSON object body, ``endpoint`` maps printcore errors to the JSON
    error shape, ``job_json`` is the job's JSON (all three from :mod:`adapters.web.api`,
    handed in so that this module does not import it back)."""
    svc = ctx.requests

    def handler(reviewed: bool) -> Endpoint:
        async def review(request: Request) -> Response:
            ws = workstation(request, ctx, api=True)  # 401 before the body is read
            body = await body_of(request)
            if "staff_name" not in body and request.query_params.get("staff_name"):
                body["staff_name"] = request.query_params["staff_name"]  # DELETE clients
            who = Actor.staff(_staff_name(body), ws)
            job_id = int(request.path_params["job_id"])
            change = svc.mark_reviewed if reviewed else svc.unmark_reviewed
            return JSONResponse(job_json(change(job_id, who, expected_version=_version(body))))

        review.__name__ = "api_review" if reviewed else "api_unreview"
        return review

    return [
        Route("/jobs/{job_id:id}/review", endpoint(handler(True)), methods=["POST"]),
        Route("/jobs/{job_id:id}/review", endpoint(handler(False)), methods=["DELETE"]),
    ]
