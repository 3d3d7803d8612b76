"""The staff printers-and-queue page (``/staff/printers``) and its action forms.

The page shows each self-service printer's state, holder, open print and deadlines, the
access hours and whether the lab is open, the queue in FIFO order with ETAs, and recent
closed prints, all in the lab's zone. Its forms (CSRF token, acting staff member) remove a
ticket, release a printer, and take a printer out of service or put it back; each answers
with a redirect and a flash message, or the page again with the refusal and its status.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from adapters.web import queue_actions
from adapters.web.context import WebContext
from adapters.web.identity import acting_name, remember_if_unset
from adapters.web.numbers import optional_version
from adapters.web.render import Renderer
from adapters.web.responses import status_for
from adapters.web.security import require_csrf, workstation
from printcore.errors import AuthenticationError, PrintcoreError, StorageError
from printcore.queue.durations import format_duration
from printcore.queue.printer_status import live_summary
from printcore.queue.service import QueueService

__all__ = ["printer_routes"]

PAGE = "/staff/printers"
HISTORY_LIMIT = 20


def _duration(minutes: int | float | None) -> str:
    return "" if minutes is None else format_duration(timedelta(minutes=minutes))


def _until(moment: datetime | None, now: datetime | None = None) -> str:
    """``in 7m`` / ``12m ago`` from ``now`` (default: the wall clock)."""
    if moment is None:
        return ""
    delta = moment - (now or datetime.now(UTC))
    text = format_duration(abs(delta))
    if abs(delta) < timedelta(minutes=1):
        return "now"
    return f"in {text}" if delta > timedelta(0) else f"{text} ago"


def _version(form: FormData) -> int | None:
    return optional_version(str(form.get("version", "")))


def printer_routes(ctx: WebContext, render: Renderer) -> list[Route]:
    env = render.templates.env
    env.filters.setdefault("duration", _duration)
    env.filters.setdefault("until", _until)
    env.globals.setdefault("live_label", live_summary)
    env.globals.setdefault("queue_status_label",
                           lambda s: queue_actions.STATUS_LABELS.get(s, s.replace("_", " ")))

    def login_redirect(request: Request) -> Response:
        return RedirectResponse(f"/staff/login?next={PAGE}", status_code=303)

    def page(request: Request, error: PrintcoreError | None = None,
             status_code: int = 200) -> Response:
        context: dict[str, Any] = {
            "error": error, "fields": getattr(error, "fields", {}) if error else {},
            "staff": ctx.staff.list(), "current_staff": request.session.get("staff_name"),
            "access_hours": ctx.access_hours, "view": None,
        }
        if ctx.queue is not None:
            context["view"] = queue_actions.queue_view(ctx.queue, HISTORY_LIMIT)
        return render(request, "staff/printers.html", context, status_code=status_code)

    async def show(request: Request) -> Response:
        try:
            workstation(request, ctx)
        except AuthenticationError:
            return login_redirect(request)
        return page(request)

    def action(kind: str) -> Any:
        async def handler(request: Request) -> Response:
            form = await request.form()
            try:
                ws = workstation(request, ctx)
            except AuthenticationError:
                return login_redirect(request)
            name = acting_name(request, form)
            try:
                require_csrf(request, str(form.get("csrf_token", "")))
                queue = _queue()
                who = queue_actions.staff_actor(ctx, name, ws)
                if kind == "remove":
                    done = queue_actions.remove_ticket(
                        queue, int(request.path_params["ticket_id"]), who)
                elif kind == "release":
                    done = queue_actions.release_printer(
                        queue, request.path_params["name"], who, _version(form))
                else:
                    done = queue_actions.set_in_service(
                        queue, request.path_params["name"], kind == "back-in-service", who,
                        _version(form))
            except PrintcoreError as err:
                return page(request, err, status_for(err))
            remember_if_unset(request, name)
            request.session["flash"] = done
            return RedirectResponse(PAGE, status_code=303)

        handler.__name__ = f"printers_{kind.replace('-', '_')}"
        return handler

    def _queue() -> QueueService:
        if ctx.queue is None:
            raise StorageError("The self-service queue is not set up on this server.")
        return ctx.queue

    return [
        Route(PAGE, show),
        Route(PAGE + "/{name}/release", action("release"), methods=["POST"]),
        Route(PAGE + "/{name}/out-of-service", action("out-of-service"), methods=["POST"]),
        Route(PAGE + "/{name}/back-in-service", action("back-in-service"), methods=["POST"]),
        Route("/staff/queue/{ticket_id:id}/remove", action("remove"), methods=["POST"]),
    ]
