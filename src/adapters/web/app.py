"""The Starlette application: student pages, staff pages, and the JSON API under /api/v1."""

from __future__ import annotations

from pathlib import Path

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.sessions import SessionMiddleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Mount
from starlette.staticfiles import StaticFiles

from adapters.metrics import RequestMetrics, metrics_routes
from adapters.web import numbers  # noqa: F401 - registers the ``id`` path convertor
from adapters.web.admin import admin_routes
from adapters.web.analytics_api import analytics_routes
from adapters.web.api import api_routes
from adapters.web.audit_api import audit_routes
from adapters.web.context import WebContext
from adapters.web.exports_api import payment_export_routes
from adapters.web.guard import InputGuard
from adapters.web.live import live_routes
from adapters.web.locks_api import lock_form_routes
from adapters.web.pricing_api import pricing_api_routes
from adapters.web.render import Renderer
from adapters.web.responses import error_json, plain_error, retry_headers, status_for
from adapters.web.retention_web import retention_routes
from adapters.web.staff import staff_routes
from adapters.web.student import student_routes
from adapters.web.thumbnails import thumbnail_routes
from printcore.errors import PrintcoreError

__all__ = ["create_app"]

STATIC = Path(__file__).with_name("static")


#: Scripts and styles only from printcore's own /static files (no inline script, no
#: ``on…=`` attributes, no ``javascript:`` URLs), images also as data: URLs (previews),
#: forms post only here, and no page may be framed.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "
    "frame-ancestors 'none'"
)
SECURITY_HEADERS: list[tuple[bytes, bytes]] = [
    (b"content-security-policy", CONTENT_SECURITY_POLICY.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"same-origin"),
    (b"cross-origin-opener-policy", b"same-origin"),
]


class _SecurityHeaders:
    """Adds the security headers to every response, 500 pages included (it wraps
    Starlette's ServerErrorMiddleware, see :class:`_App`)."""

    def __init__(self, app):  # type: ignore[no-untyped-def]
        self.app = app

    async def __call__(self, scope, receive, send):  # type: ignore[no-untyped-def]
        if scope["type"] != "http":
            return await self.app(scope, receive, send)

        async def send_with_headers(message):  # type: ignore[no-untyped-def]
            if message["type"] == "http.response.start":
                headers = [h for h in message.get("headers", [])
                           if h[0].lower() not in {k for k, _ in SECURITY_HEADERS}]
                message["headers"] = headers + SECURITY_HEADERS
            await send(message)

        await self.app(scope, receive, send_with_headers)


class _App(Starlette):
    """Starlette with the security headers outside its ServerErrorMiddleware, so even a
    500 answer carries them."""

    def build_middleware_stack(self):  # type: ignore[no-untyped-def]
        return _SecurityHeaders(super().build_middleware_stack())


def create_app(ctx: WebContext) -> Starlette:
    """Build the web app on already-wired printcore services. Opens nothing by itself."""
    render = Renderer(ctx.timezone, ctx.lab_name)

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        if request.url.path.startswith("/api/"):
            code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
            response: Response = plain_error(code, str(exc.detail), exc.status_code)
        else:
            response = render(request, "error.html",
                              {"error": PrintcoreError(f"{exc.status_code}: {exc.detail}")},
                              status_code=exc.status_code)
        for name, value in (exc.headers or {}).items():  # e.g. Allow on a 405
            response.headers[name] = value
        return response

    async def domain_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, PrintcoreError)
        if request.url.path.startswith("/api/"):
            return error_json(exc)
        response = render(request, "error.html", {"error": exc}, status_code=status_for(exc))
        response.headers.update(retry_headers(exc))  # 503/507: when to try again
        return response

    def guard_error(request: Request, exc: PrintcoreError, status: int) -> Response:
        return render(request, "error.html", {"error": exc}, status_code=status)

    app = _App(
        routes=[
            *student_routes(ctx, render),
            *lock_form_routes(ctx, render),  # before staff_routes' /staff/jobs/{id}/{event}
            *admin_routes(ctx, render),  # /staff/admin…, before staff_routes
            *audit_routes(ctx, render),  # /api/v1/admin/audit… and its admin page
            *retention_routes(ctx, render),  # the admin area's retention page
            *staff_routes(ctx, render),
            *live_routes(ctx),
            *thumbnail_routes(ctx),
            *pricing_api_routes(ctx),  # /api/v1/pricing/quote, before the mount
            *analytics_routes(ctx, render),  # /api/v1/analytics and /staff/reports
            *payment_export_routes(ctx),  # /api/v1/reports/payments.xlsx|.csv, likewise
            *metrics_routes(),  # /metrics (adapters.metrics), Prometheus text format
            Mount("/api/v1", routes=api_routes(ctx)),
            Mount("/static", app=StaticFiles(directory=str(STATIC)), name="static"),
        ],
        middleware=[
            Middleware(RequestMetrics),  # outermost: counts and times every answer
            Middleware(
                SessionMiddleware,
                secret_key=ctx.secret_key,
                session_cookie="printcore_session",
                max_age=ctx.session_hours * 3600,
                same_site="lax",
                https_only=ctx.https_only,
            ),
            Middleware(InputGuard, html_error=guard_error),
        ],
        exception_handlers={HTTPException: http_error, PrintcoreError: domain_error},
    )
    app.state.ctx = ctx
    return app
