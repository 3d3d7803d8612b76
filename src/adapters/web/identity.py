"""Who is at the workstation: one staff member per workstation session.

Staff pick their name once, in the header of every staff page (``POST /staff/whoami``);
the name is kept in the session cookie (``session["staff_name"]``) until they change it,
log out, or the workstation session ends (the cookie is cleared then). Every staff form
then sends that name as a hidden ``staff_name`` (``staff/_macros.html``), and the routes
fall back to it when a form sends none (:func:`acting_name`). The printcore services
still check each action's name against the active staff list, so a name that was
removed since it was picked is refused with the service's message, never used.

Templates get two globals: ``staff_identity()`` (an :class:`Identity`, read once per
request) and ``unique_id(prefix)`` (``prefix-1``, ``prefix-2``… per request, for field
errors repeated in several forms of one page).
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlsplit

import attrs
from jinja2 import pass_context
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from adapters.web.context import WebContext
from adapters.web.render import Renderer
from adapters.web.responses import status_for
from adapters.web.security import CsrfError, require_csrf, workstation
from printcore.errors import AuthenticationError, PrintcoreError, ValidationError
from printcore.ports import StaffMember

__all__ = ["Identity", "acting_name", "identity_routes", "local_staff_path", "page_to_return_to",
           "remember_if_unset"]

SESSION_KEY = "staff_name"
_JOB_ACTION = re.compile(r"^(/staff/jobs/[0-9]+)(/|$)")
MAX_NAME = 80


@attrs.frozen
class Identity:
    """``members``: the active staff list (names in the directory's order); ``current``:
    the session's name when it is on that list, else None; ``stale``: a session name that
    is no longer active staff (shown so nobody wonders where it went), else None."""

    members: list[StaffMember]
    current: str | None
    stale: str | None


def identity_of(request: Request, ctx: WebContext) -> Identity:
    """The request's :class:`Identity`, read from the staff directory once per request."""
    cached = getattr(request.state, "staff_identity", None)
    if isinstance(cached, Identity):
        return cached
    members = ctx.staff.list()
    chosen = str(request.session.get(SESSION_KEY) or "")
    active = chosen in {m.name for m in members}
    identity = Identity(members, chosen if active else None,
                        chosen if chosen and not active else None)
    request.state.staff_identity = identity
    return identity


def acting_name(request: Request, form: FormData | dict[str, Any]) -> str:
    """The staff member an action is attributed to: the form's ``staff_name`` (the hidden
    field the page rendered, or an HTTP client's own), else the one chosen for this
    workstation session, else ``""`` (the service then refuses: choose your name)."""
    name = " ".join(str(form.get("staff_name") or "").split())
    return name or str(request.session.get(SESSION_KEY) or "")


def remember_if_unset(request: Request, name: str) -> None:
    """After a successful action: a name picked in a form's fallback dropdown becomes the
    workstation's choice when none was made; a chosen identity is only changed in the
    header (``POST /staff/whoami``), never as a side effect of an action."""
    if name and not request.session.get(SESSION_KEY):
        request.session[SESSION_KEY] = name


def local_staff_path(raw: str) -> str:
    """``raw`` when it is a path on this site under ``/staff`` (query kept), else
    ``/staff``: an absolute URL, ``//host``, a backslash or control character, or any
    other path is replaced, so the form cannot redirect anywhere else."""
    text = raw.strip()
    if not text or any(ch == "\\" or not ch.isprintable() for ch in text):
        return "/staff"
    parts = urlsplit(text)
    if parts.scheme or parts.netloc or text.startswith("//"):
        return "/staff"
    if parts.path != "/staff" and not parts.path.startswith("/staff/"):
        return "/staff"
    if parts.path.startswith(("/staff/whoami", "/staff/logout", "/staff/events")):
        return "/staff"
    return text


def page_to_return_to(request: Request) -> str:
    """The page the header's form comes back to: this page for a GET; for a page
    answering a form post (a refusal re-shown at ``/staff/jobs/12/approve``), the page the
    form was on (``/staff/jobs/12``, ``/staff/printers``), since a GET of the post's own
    path would answer 405."""
    path = request.url.path
    if request.method in ("GET", "HEAD"):
        query = request.url.query
        return local_staff_path(path + (f"?{query}" if query else ""))
    match = _JOB_ACTION.match(path)
    if match:
        return match.group(1)
    if path.startswith(("/staff/printers", "/staff/queue/")):
        return "/staff/printers"
    return "/staff"


def identity_routes(ctx: WebContext, render: Renderer) -> list[Route]:
    env = render.templates.env

    @pass_context
    def staff_identity(context: Any) -> Identity | None:
        request = context.get("request")
        if request is None or not request.session.get("ws"):
            return None
        return identity_of(request, ctx)

    @pass_context
    def unique_id(context: Any, prefix: str) -> str:
        request = context.get("request")
        counters: dict[str, int] = getattr(request.state, "unique_ids", None) or {}
        counters[prefix] = counters.get(prefix, 0) + 1
        request.state.unique_ids = counters
        return f"{prefix}-{counters[prefix]}"

    @pass_context
    def return_path(context: Any) -> str:
        request = context.get("request")
        return page_to_return_to(request) if request is not None else "/staff"

    env.globals["staff_identity"] = staff_identity
    env.globals["return_path"] = return_path
    env.globals["unique_id"] = unique_id

    def page(request: Request, target: str, error: PrintcoreError | None = None,
             status_code: int = 200, tried: str = "") -> Response:
        return render(request, "staff/whoami.html", {
            "error": error, "fields": getattr(error, "fields", {}) if error else {},
            "next_path": target, "tried": tried,
        }, status_code=status_code)

    async def show(request: Request) -> Response:
        target = local_staff_path(str(request.query_params.get("next", "/staff")))
        try:
            workstation(request, ctx)
        except AuthenticationError:
            return RedirectResponse("/staff/login?next=/staff/whoami", status_code=303)
        return page(request, target)

    async def choose(request: Request) -> Response:
        """Form fields: ``csrf_token``, ``staff_name`` (an active staff member's name; empty
        forgets the choice), ``next`` (a /staff path to go back to). Answers 303 to
        ``next``; 403 (bad CSRF token) or 422 (not on the active staff list) with the
        form again and the previous choice kept."""
        form = await request.form()
        try:
            workstation(request, ctx)
        except AuthenticationError:
            return RedirectResponse("/staff/login?next=/staff", status_code=303)
        target = local_staff_path(str(form.get("next", "")))
        raw = str(form.get("staff_name", ""))
        name = " ".join(raw.split())
        try:
            require_csrf(request, str(form.get("csrf_token", "")))
            if name and name not in {m.name for m in identity_of(request, ctx).members}:
                shown = name if len(name) <= MAX_NAME else name[:MAX_NAME] + "…"
                raise ValidationError(
                    f"{shown!r} is not on the active staff list, so it was not chosen; "
                    "choose your name from the list.",
                    {"staff_name": "Choose your name from the staff list."})
        except (CsrfError, ValidationError) as err:
            return page(request, target, err, status_for(err), tried=name[:MAX_NAME])
        if name:
            request.session[SESSION_KEY] = name
            request.session["flash"] = (f"You are {name}: actions on this workstation are "
                                        "recorded under your name.")
        else:
            request.session.pop(SESSION_KEY, None)
            request.session["flash"] = ("Nobody is chosen on this workstation now: pick your "
                                        "name in the header before acting.")
        return RedirectResponse(target, status_code=303)

    return [
        Route("/staff/whoami", show),
        Route("/staff/whoami", choose, methods=["POST"]),
    ]
