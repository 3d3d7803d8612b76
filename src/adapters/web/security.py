"""Staff authentication (session cookie or bearer token) and CSRF protection.

* A login starts a server-side workstation session (``StaffDirectory.start_session``);
  logout, ``printcore sessions end ID`` and a password change end it, and from then on
  every cookie and bearer token that names it is refused (401 / back to the login page).
* The cookie is Starlette's signed session (HttpOnly, SameSite=Lax, Secure when
  ``https_only``); it holds the session id, the workstation name and a CSRF token.
* API clients may instead send ``Authorization: Bearer <token>`` from
  ``POST /api/v1/auth/login``: a signed ``{"sid", "ws", "exp"}`` payload.
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
    "client_address",
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


def client_address(request: Request) -> str:
    """The client's address: the peer, or ``X-Forwarded-For``'s client when the peer is a
    trusted proxy (``PRINTCORE_TRUSTED_PROXIES``; uvicorn's proxy-headers middleware
    rewrites the peer before printcore sees the request)."""
    return request.client.host if request.client is not None else "unknown"


def login_session(request: Request, ctx: WebContext, name: str) -> str:
    """Start a workstation session and put it in the cookie; returns the session id."""
    session = ctx.staff.start_session(name)
    request.session.clear()
    request.session["sid"] = session.id
    request.session["ws"] = name
    request.session["exp"] = int(time.time()) + ctx.session_hours * 3600
    request.session["csrf"] = secrets.token_urlsafe(24)
    return session.id


def _end(ctx: WebContext, session_id: object) -> None:
    if isinstance(session_id, str) and session_id:
        try:
            ctx.staff.end_session(session_id, "logged out")
        except PrintcoreError:
            pass  # already ended: logging out again is harmless


def logout_session(request: Request, ctx: WebContext) -> None:
    """End the cookie's workstation session server side, then clear the cookie."""
    _end(ctx, request.session.get("sid"))
    request.session.clear()


def end_bearer_session(request: Request, ctx: WebContext) -> bool:
    """End the session of the request's bearer token; False when it has none."""
    header = request.headers.get("authorization", "")
    if not header.lower().startswith("bearer "):
        return False
    try:
        data = ctx.signer.loads("api", header[7:].strip())
    except TokenError:
        return False
    _end(ctx, data.get("sid"))
    return True


def bearer_token(ctx: WebContext, session_id: str, name: str) -> str:
    return ctx.signer.dumps("api", {"sid": session_id, "ws": name,
                                    "exp": int(time.time()) + ctx.session_hours * 3600})


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
        sid = data.get("sid")
        if not isinstance(sid, str):
            raise AuthenticationError("The bearer token is not valid; log in again.")
        return ctx.staff.check_session(sid).workstation
    sid = request.session.get("sid")
    if not sid or float(request.session.get("exp", 0)) < time.time():
        raise AuthenticationError("Log in as staff first.")
    try:
        name = ctx.staff.check_session(str(sid)).workstation
    except AuthenticationError:
        request.session.clear()  # an ended login: forget it, so pages stop showing it
        raise
    if api and request.method not in ("GET", "HEAD", "OPTIONS"):
        require_csrf(request, request.headers.get("x-csrf-token"))
    return str(name)


def clean_workstation(raw: str) -> str:
    """A workstation label: printable, 1-60 characters (defaults to ``Workstation``)."""
    text = " ".join("".join(ch for ch in raw if ch.isprintable()).split())[:60]
    return text or "Workstation"
