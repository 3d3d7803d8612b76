"""Setup notices: what this server was started without, said once where an admin looks.

``GET /staff/setup`` lists every notice with what to do about it; the dashboard shows a
one-line "Setup" summary until a staff member dismisses it (``POST /staff/setup/dismiss``,
kept in the session until the set of notices changes); the header links to the page with
the number of open notices; a job page keeps at most a quiet one-line hint that links
here (e.g. "Slicer links are off").
"""

from __future__ import annotations

from typing import Any

import attrs
from jinja2 import pass_context
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from adapters.web.context import WebContext
from adapters.web.identity import identity_of
from adapters.web.render import Renderer
from adapters.web.responses import status_for
from adapters.web.security import CsrfError, require_csrf, workstation
from printcore.errors import AuthenticationError

__all__ = ["Notice", "notices_for", "setup_routes"]

DISMISSED_KEY = "setup_dismissed"


@attrs.frozen
class Notice:
    """``key``: a stable id (the page's anchor, e.g. ``slicer-links``); ``title``: one
    line; ``fix``: what to do, as plain text; ``command``: a setting or command to show
    in code type (may be empty)."""

    key: str
    title: str
    fix: str
    command: str = ""


def notices_for(ctx: WebContext, staff_count: int) -> list[Notice]:
    """The notices for a server wired as ``ctx`` with ``staff_count`` active staff."""
    found: list[Notice] = []
    if staff_count == 0:
        found.append(Notice("staff", "No staff members yet",
                            "Nobody can be chosen at a workstation, so no action can be "
                            "recorded. Add each staff member on the server:",
                            "printcore staff add NAME"))
    if ctx.opener_links is None:
        found.append(Notice("slicer-links", "Slicer links are off",
                            "Job pages cannot open files in the slicer. Set this on the "
                            "server, then run printcore-open --register on each staff "
                            "computer:", "PRINTCORE_OPENER_SECRET"))
    if ctx.queue is None:
        found.append(Notice("queue", "The self-service queue is not set up",
                            "The printers page has nothing to show. List the printers in "
                            "printers.yaml and restart printcore.", ""))
    if ctx.outbox is None:
        found.append(Notice("messages", "Emails are not tracked in this process",
                            "Job pages cannot show delivery or send a failed email again. "
                            "Start the web process with the outbox wired (printcore serve).",
                            ""))
    if ctx.live_feed is None or ctx.live_hub is None:
        found.append(Notice("live", "Live updates are off",
                            "Staff pages only change when reloaded. Start the web process "
                            "with printcore serve so /staff/events streams changes.", ""))
    if ctx.throttle is None:
        found.append(Notice("limits", "No login or submission limits",
                            "Failed logins and student submissions are not rate limited "
                            "in this process.", ""))
    return found


def _signature(notices: list[Notice]) -> str:
    return ",".join(sorted(n.key for n in notices))


def setup_routes(ctx: WebContext, render: Renderer) -> list[Route]:
    env = render.templates.env

    def current(request: Request) -> list[Notice]:
        cached = getattr(request.state, "setup_notices", None)
        if isinstance(cached, list):
            return cached
        notices = notices_for(ctx, len(identity_of(request, ctx).members))
        request.state.setup_notices = notices
        return notices

    @pass_context
    def setup_notices(context: Any) -> dict[str, Any]:
        """``{"notices": [...], "dismissed": bool}`` for a logged-in page, else empty."""
        request = context.get("request")
        if request is None or not request.session.get("ws"):
            return {"notices": [], "dismissed": True}
        notices = current(request)
        return {"notices": notices,
                "dismissed": request.session.get(DISMISSED_KEY) == _signature(notices)}

    env.globals["setup_notices"] = setup_notices

    async def show(request: Request) -> Response:
        try:
            workstation(request, ctx)
        except AuthenticationError:
            return RedirectResponse("/staff/login?next=/staff/setup", status_code=303)
        return render(request, "staff/setup.html", {"notices": current(request),
                                                    "error": None})

    async def dismiss(request: Request) -> Response:
        """Form field ``csrf_token``. Hides the dashboard's summary for this session until
        the notices change; 303 to the dashboard, or 403 with the setup page."""
        form = await request.form()
        try:
            workstation(request, ctx)
        except AuthenticationError:
            return RedirectResponse("/staff/login?next=/staff", status_code=303)
        try:
            require_csrf(request, str(form.get("csrf_token", "")))
        except CsrfError as err:
            return render(request, "staff/setup.html", {"notices": current(request),
                                                        "error": err},
                          status_code=status_for(err))
        request.session[DISMISSED_KEY] = _signature(current(request))
        request.session["flash"] = "Setup notices hidden; they stay listed under Setup."
        return RedirectResponse("/staff", status_code=303)

    return [
        Route("/staff/setup", show),
        Route("/staff/setup/dismiss", dismiss, methods=["POST"]),
    ]
