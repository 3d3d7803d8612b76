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

from adapters.web.api import api_routes
from adapters.web.context import WebContext
from adapters.web.render import Renderer
from adapters.web.responses import error_json, plain_error, status_for
from adapters.web.staff import staff_routes
from adapters.web.student import student_routes
from printcore.errors import PrintcoreError

__all__ = ["create_app"]

STATIC = Path(__file__).with_name("static")


class _SecurityHeaders:
    """Adds conservative security headers to every response."""

    def __init__(self, app):  # type: ignore[no-untyped-def]
        self.app = app

    async def __call__(self, scope, receive, send):  # type: ignore[no-untyped-def]
        if scope["type"] != "http":
            return await self.app(scope, receive, send)

        async def send_with_headers(message):  # type: ignore[no-untyped-def]
            if message["type"] == "http.response.start":
                headers = message.setdefault("headers", [])
                headers.append((b"x-content-type-options", b"nosniff"))
                headers.append((b"x-frame-options", b"DENY"))
                headers.append((b"referrer-policy", b"same-origin"))
            await send(message)

        await self.app(scope, receive, send_with_headers)


def create_app(ctx: WebContext) -> Starlette:
    """Build the web app on already-wired printcore services. Opens nothing by itself."""
    render = Renderer(ctx.timezone, ctx.lab_name)

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        if request.url.path.startswith("/api/"):
            code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
            return plain_error(code, str(exc.detail), exc.status_code)
        return render(request, "error.html",
                      {"error": PrintcoreError(f"{exc.status_code}: {exc.detail}")},
                      status_code=exc.status_code)

    async def domain_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, PrintcoreError)
        if request.url.path.startswith("/api/"):
            return error_json(exc)
        return render(request, "error.html", {"error": exc}, status_code=status_for(exc))

    app = Starlette(
        routes=[
            *student_routes(ctx, render),
            *staff_routes(ctx, render),
            Mount("/api/v1", routes=api_routes(ctx)),
            Mount("/static", app=StaticFiles(directory=str(STATIC)), name="static"),
        ],
        middleware=[
            Middleware(_SecurityHeaders),
            Middleware(
                SessionMiddleware,
                secret_key=ctx.secret_key,
                session_cookie="printcore_session",
                max_age=ctx.session_hours * 3600,
                same_site="lax",
                https_only=ctx.https_only,
            ),
        ],
        exception_handlers={HTTPException: http_error, PrintcoreError: domain_error},
    )
    app.state.ctx = ctx
    return app
