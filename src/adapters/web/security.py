"""Staff authentication (session cookie or bearer token) and CSRF protection.

* The session is Starlette's signed cookie (HttpOnly, SameSite=Lax, Secure when
  ``https_only``); it holds the workstation name, a CSRF token and an expiry (UTC epoch).
* API clients may instead send ``Authorization: Bearer <token>`` from
  ``POST /api/v1/auth/login``: a signed ``{"ws", "exp"}`` payload.
* Every state-changing HTML form carries ``csrf_token``; cookie-authenticated API calls
  carry it in ``X-CSRF-Token``. Bearer calls need none (no ambient credential).
"""

from __future__ import annotations

import hmac
import secrets
import time

from starlette.requests import Request

from adapters.web.context import WebContext
from printcore.errors import AuthenticationError, PrintcoreError, TokenError

__all__ = [
    "CsrfError",
    "bearer_token",
    "csrf_token",
    "login_session",
    "logout_session",
    "require_csrf",
    "workstation",
]


class CsrfError(PrintcoreError):
    code = "csrf_failed"

    def __init__(self) -> None:
        super().__init__(
            "This form has expired or did not come from this site; reload the page and try again."
        )


def csrf_token(request: Request) -> str:
    """The session's CSRF token, created on first use."""
    token = request.session.get("csrf")
    if not token:
        token = secrets.token_urlsafe(24)
        request.session["csrf"] = token
    return str(token)


def require_csrf(request: Request, submitted: str | None) -> None:
    """Raises CsrfError unless ``submitted`` equals the session's token."""
    expected = request.session.get("csrf")
    if not expected or not submitted or not hmac.compare_digest(str(expected), submitted):
        raise CsrfError()


def login_session(request: Request, ctx: WebContext, name: str) -> None:
    request.session["ws"] = name
    request.session["exp"] = int(time.time()) + ctx.session_hours * 3600
    request.session["csrf"] = secrets.token_urlsafe(24)


def logout_session(request: Request) -> None:
    request.session.clear()


def bearer_token(ctx: WebContext, name: str) -> str:
    return ctx.signer.dumps("api", {"ws": name, "exp": int(time.time()) + ctx.session_hours * 3600})


def workstation(request: Request, ctx: WebContext, *, api: bool = False) -> str:
    """The logged-in workstation's name. Raises AuthenticationError.

    For API calls authenticated by the session cookie, unsafe methods also need the
    ``X-CSRF-Token`` header (raises CsrfError).
    """
    header = request.headers.get("authorization", "")
    if api and header.lower().startswith("bearer "):
        try:
            data = ctx.signer.loads("api", header[7:].strip())
        except TokenError:
            raise AuthenticationError("The bearer token is not valid; log in again.") from None
        if float(data.get("exp", 0)) < time.time():
            raise AuthenticationError("The bearer token has expired; log in again.")
        return str(data["ws"])
    name = request.session.get("ws")
    if not name or float(request.session.get("exp", 0)) < time.time():
        raise AuthenticationError("Log in as staff first.")
    if api and request.method not in ("GET", "HEAD", "OPTIONS"):
        require_csrf(request, request.headers.get("x-csrf-token"))
    return str(name)


def clean_workstation(raw: str) -> str:
    """A workstation label: printable, 1-60 characters (defaults to ``Workstation``)."""
    text = " ".join("".join(ch for ch in raw if ch.isprintable()).split())[:60]
    return text or "Workstation"
