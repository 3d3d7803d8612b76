"""Mapping printcore errors to HTTP, and the JSON error shape of the API.

Errors are ``{"error": {"code": str, "message": str, "fields": {name: message}?}}``.
"""

from __future__ import annotations

from typing import Any

from starlette.responses import JSONResponse

from printcore.errors import (
    AuthenticationError,
    ConcurrentChangeError,
    FileTooLargeError,
    InvalidTransitionError,
    NotFoundError,
    PrintcoreError,
    StorageError,
    TokenError,
    UnsupportedFileError,
    ValidationError,
)

__all__ = ["error_json", "status_for"]


def status_for(error: PrintcoreError) -> int:
    """The HTTP status for a printcore error."""
    from adapters.web.security import CsrfError

    for kind, status in (
        (NotFoundError, 404),
        (InvalidTransitionError, 409),
        (ConcurrentChangeError, 409),
        (FileTooLargeError, 413),
        (UnsupportedFileError, 415),
        (ValidationError, 422),
        (AuthenticationError, 401),
        (CsrfError, 403),
        (TokenError, 400),
        (StorageError, 503),
    ):
        if isinstance(error, kind):
            return status
    return 400


def error_json(error: PrintcoreError, status: int | None = None) -> JSONResponse:
    body: dict[str, Any] = {"code": error.code, "message": error.message}
    fields = getattr(error, "fields", None)
    if fields:
        body["fields"] = fields
    if isinstance(error, InvalidTransitionError):
        body["state"] = error.state
    return JSONResponse({"error": body}, status_code=status or status_for(error))


def plain_error(code: str, message: str, status: int) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": message}}, status_code=status)
