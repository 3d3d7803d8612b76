"""The self-service queue in the JSON API (under ``/api/v1``), for scripts and displays.

* ``GET /queue``: printers, the queue in FIFO order with positions and ETAs, recent closed
  prints, and the access hours with whether the lab is open (times UTC ISO 8601).
* ``POST /printers/{name}/release``, ``/printers/{name}/out-of-service``,
  ``/printers/{name}/back-in-service`` and ``DELETE /queue/tickets/{id}``: the staff
  actions of the printers page; JSON body ``{"staff_name": str, "version": int?}``
  (``version``: the printer's version you saw; a changed printer answers 409). Each
  answers ``{"message": str, "queue": <GET /queue>}``. ``staff_name`` may also be a
  query parameter (for DELETE clients that send no body).

Authentication and errors as in :mod:`adapters.web.api` (401, 403, 404, 409, 422).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from adapters.serialization import to_json_dict, utc_iso
from adapters.web import queue_actions
from adapters.web.context import WebContext
from adapters.web.numbers import json_version
from adapters.web.responses import JSONResponse
from adapters.web.security import workstation
from printcore.errors import StorageError, ValidationError
from printcore.queue.service import QueueService

__all__ = ["queue_api_routes", "queue_json"]

Endpoint = Callable[[Request], Awaitable[Response]]


def queue_json(view: queue_actions.QueueView, ctx: WebContext) -> dict[str, Any]:
    """The ``GET /queue`` body: ``printers`` (each with ``holder_name`` and
    ``print_member_name``), ``queue`` (ticket fields plus ``position``, 1-based among
    queued tickets or 0, and ``eta``, UTC or null), ``history`` and ``access_hours``."""

    def name_of(ticket_id: int | None) -> str | None:
        ticket = view.tickets.get(ticket_id) if ticket_id is not None else None
        return ticket.member_name if ticket is not None else None

    printers = []
    for printer in view.printers:
        data = to_json_dict(printer)
        data["holder_name"] = name_of(printer.holder_ticket)
        data["print_member_name"] = name_of(printer.print_ticket)
        printers.append(data)
    return {
        "now": utc_iso(view.now),
        "timezone": ctx.timezone,
        "access_hours": {
            "spec": ctx.access_hours,
            "open_now": view.open_now,
            "always_open": view.always_open,
            "next_change": utc_iso(view.next_change) if view.next_change else None,
        },
        "printers": printers,
        "queue": [
            {**to_json_dict(p.ticket), "position": p.position,
             "eta": utc_iso(p.eta) if p.eta else None}
            for p in view.placements
        ],
        "history": [to_json_dict(t) for t in view.history],
    }


def _staff_name(body: dict[str, Any]) -> str:
    value = body.get("staff_name", "")
    if not isinstance(value, str):
        raise ValidationError("staff_name must be text.", {"staff_name": "Must be text."})
    return value


_version = json_version


def queue_api_routes(ctx: WebContext, body_of: Callable[[Request], Awaitable[dict[str, Any]]],
                     endpoint: Callable[[Endpoint], Endpoint]) -> list[Route]:
    """Routes for ``/api/v1``; ``body_of`` parses a JSON object body, ``endpoint`` maps
    printcore errors to the JSON error shape (both from :mod:`adapters.web.api`)."""

    def service() -> QueueService:
        if ctx.queue is None:
            raise StorageError("The self-service queue is not set up on this server.")
        return ctx.queue

    async def get_queue(request: Request) -> Response:
        workstation(request, ctx, api=True)
        return JSONResponse(queue_json(queue_actions.queue_view(service()), ctx))

    def action(kind: str) -> Endpoint:
        async def handler(request: Request) -> Response:
            ws = workstation(request, ctx, api=True)
            body = await body_of(request)
            if "staff_name" not in body and request.query_params.get("staff_name"):
                body["staff_name"] = request.query_params["staff_name"]  # DELETE clients
            queue = service()
            who = queue_actions.staff_actor(ctx, _staff_name(body), ws)
            if kind == "remove":
                message = queue_actions.remove_ticket(
                    queue, int(request.path_params["ticket_id"]), who)
            elif kind == "release":
                message = queue_actions.release_printer(
                    queue, request.path_params["name"], who, _version(body))
            else:
                message = queue_actions.set_in_service(
                    queue, request.path_params["name"], kind == "back-in-service", who,
                    _version(body))
            return JSONResponse({"message": message,
                                 "queue": queue_json(queue_actions.queue_view(queue), ctx)})

        handler.__name__ = f"api_queue_{kind.replace('-', '_')}"
        return handler

    return [
        Route("/queue", endpoint(get_queue)),
        Route("/queue/tickets/{ticket_id:id}", endpoint(action("remove")), methods=["DELETE"]),
        *(Route(f"/printers/{{name}}/{kind}", endpoint(action(kind)), methods=["POST"])
          for kind in ("release", "out-of-service", "back-in-service")),
    ]
