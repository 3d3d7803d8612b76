"""Mapping printcore errors to HTTP, and the JSON error shape of the API.

Errors are ``{"error": {"code": str, "message": str, "fields": {name: message}?,
"state": str?, "retry_after": int?}}``; a 429, a 503 (the database or the file store cannot
be used right now: ``StorageError``; too many uploads waiting to be checked:
``BusyError``) and a 507 (the file store is full:
``InsufficientStorageError``) also carry ``Retry-After`` (seconds).

``JSONResponse`` here replaces Starlette's everywhere in the web adapter: a text stored
before printcore refused unencodable input (a lone surrogate) is sent as U+FFFD instead
of failing the whole response.
"""

from __future__ import annotations

import json
from typing import Any

from starlette.responses import JSONResponse as _StarletteJSON

from printcore.errors import (
    AuthenticationError,
    BusyError,
    ConcurrentChangeError,
    FileTooLargeError,
    InsufficientStorageError,
    InvalidTransitionError,
    NotFoundError,
    PrintcoreError,
    RateLimitedError,
    StorageError,
    TokenError,
    UnsupportedFileError,
    ValidationError,
)

__all__ = ["JSONResponse", "displayable_json", "error_json", "plain_error", "retry_headers",
           "status_for"]


def displayable_json(value: Any) -> Any:
    """``value`` with every string's lone surrogates replaced by U+FFFD (keys too)."""
    from printcore.text import displayable

    if isinstance(value, str):
        return displayable(value)
    if isinstance(value, dict):
        return {displayable_json(k): displayable_json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [displayable_json(v) for v in value]
    return value


class JSONResponse(_StarletteJSON):
    """Starlette's JSONResponse, but never failing on a stored unencodable text."""

    def render(self, content: Any) -> bytes:
        text = json.dumps(content, ensure_ascii=False, allow_nan=False, indent=None,
                          separators=(",", ":"))
        try:
            return text.encode("utf-8")
        except UnicodeEncodeError:
            return json.dumps(displayable_json(content), ensure_ascii=False, allow_nan=False,
                              separators=(",", ":")).encode("utf-8")


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
        (RateLimitedError, 429),
        (CsrfError, 403),
        (TokenError, 400),
        (InsufficientStorageError, 507),  # before its base, StorageError
        (StorageError, 503),
        (BusyError, 503),
    ):
        if isinstance(error, kind):
            return status
    return 400


def retry_headers(error: PrintcoreError) -> dict[str, str]:
    """``{"Retry-After": seconds}`` for an error a retry can get past (429, 503, 507),
    else ``{}``: for HTML answers, which carry the header but not the JSON body."""
    if isinstance(error, RateLimitedError | StorageError | BusyError):
        return {"Retry-After": str(error.retry_after)}
    return {}


def error_json(error: PrintcoreError, status: int | None = None) -> JSONResponse:
    body: dict[str, Any] = {"code": error.code, "message": error.message}
    fields = getattr(error, "fields", None)
    if fields:
        body["fields"] = fields
    if isinstance(error, InvalidTransitionError):
        body["state"] = error.state
    headers = None
    if isinstance(error, RateLimitedError | StorageError | BusyError):
        body["retry_after"] = error.retry_after
        headers = {"Retry-After": str(error.retry_after)}
    return JSONResponse({"error": body}, status_code=status or status_for(error),
                        headers=headers)


def plain_error(code: str, message: str, status: int) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": message}}, status_code=status)
