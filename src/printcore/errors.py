"""printcore's errors. Adapters translate these into HTTP answers, Discord replies, exit codes.

Hierarchy::

    PrintcoreError                      base of everything printcore raises on purpose
    ├── NotFoundError                   no such job / staff member / file          (HTTP 404)
    ├── InvalidTransitionError          the event is not allowed in the state       (HTTP 409)
    ├── ConcurrentChangeError           someone else changed the job first           (HTTP 409)
    ├── ValidationError                 input refused; ``fields`` maps field → text (HTTP 422)
    │   ├── InvalidTextError            not encodable text, or control characters   (HTTP 422)
    │   ├── UnsupportedFileError        not a model / sliced file we can read       (HTTP 415)
    │   └── FileTooLargeError           over the configured upload limit            (HTTP 413)
    ├── AuthenticationError             wrong password, missing or ended session    (HTTP 401)
    ├── RateLimitedError                too many tries; ``retry_after`` seconds     (HTTP 429)
    ├── BusyError                       the server has too much of this work waiting
    │                                   to take more now; ``retry_after``           (HTTP 503)
    ├── TokenError                      a confirmation link that cannot be used     (HTTP 400)
    │   ├── TokenTamperedError          signature does not match
    │   ├── TokenExpiredError           past its expiry
    │   └── TokenUsedError              already used, or replaced by a newer link
    └── StorageError                    the database cannot be reached (or its connection
        │                               was lost mid-request), or the file store is
        │                               inconsistent with it; ``retry_after`` seconds
        │                                                                     (HTTP 503)
        └── InsufficientStorageError    the file store is full (ENOSPC/EDQUOT): nothing of
                                        the request was kept; ``retry_after`` (HTTP 507)

Every error carries a human message that says what to do instead, a ``reason`` (a stable
machine-readable name of the refusal, finer than ``code``: ``not_your_turn``,
``lab_closed``, …; the queue's are listed in :mod:`printcore.queue.refusals`) and
``details`` (the facts a front end needs to word it its own way: printer names, ticket
ids, datetimes in UTC). The message is the domain's own wording and names no front end's
commands; each front end (Discord, the CLI, the web) words the reasons it knows and falls
back to the message.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = [
    "AuthenticationError",
    "BusyError",
    "ConcurrentChangeError",
    "FileTooLargeError",
    "InsufficientStorageError",
    "InvalidTextError",
    "InvalidTransitionError",
    "NotFoundError",
    "PrintcoreError",
    "RateLimitedError",
    "StorageError",
    "TokenError",
    "TokenExpiredError",
    "TokenTamperedError",
    "TokenUsedError",
    "UnsupportedFileError",
    "ValidationError",
]


class PrintcoreError(Exception):
    """Base class. ``code`` is a stable machine-readable name, ``str(err)`` the human message."""

    code = "error"

    def __init__(self, message: str, *, reason: str | None = None,
                 details: Mapping[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.reason: str = reason or self.code
        self.details: dict[str, Any] = dict(details or {})


class NotFoundError(PrintcoreError):
    code = "not_found"


class InvalidTransitionError(PrintcoreError):
    """``event`` is not allowed while the job (or printer, ticket) is in ``state``."""

    code = "invalid_transition"

    def __init__(self, event: str, state: str, message: str | None = None, *,
                 reason: str | None = None, details: Mapping[str, Any] | None = None) -> None:
        self.event = event
        self.state = state
        super().__init__(
            message
            or f"Cannot {event.replace('_', ' ')} while the job is {state.replace('_', ' ')}.",
            reason=reason, details=details,
        )


class ConcurrentChangeError(PrintcoreError):
    code = "concurrent_change"

    def __init__(self, job_id: int | None = None, message: str | None = None) -> None:
        self.job_id = job_id
        super().__init__(
            message
            or f"Job {job_id} was changed by someone else while you were working on it; "
            "reload the page and try again."
        )


class ValidationError(PrintcoreError):
    """Input refused. ``fields`` maps each offending field name to its message."""

    code = "validation_error"

    def __init__(self, message: str, fields: Mapping[str, str] | None = None, *,
                 reason: str | None = None, details: Mapping[str, Any] | None = None) -> None:
        super().__init__(message, reason=reason, details=details)
        self.fields: dict[str, str] = dict(fields or {})


class InvalidTextError(ValidationError):
    """A text that cannot be stored as UTF-8 (a lone surrogate, undecodable bytes) or
    holds control characters. ``fields`` names the field."""

    code = "invalid_text"


class UnsupportedFileError(ValidationError):
    code = "unsupported_file"

    def __init__(self, message: str, field: str = "file") -> None:
        super().__init__(message, {field: message})


class FileTooLargeError(ValidationError):
    code = "file_too_large"

    def __init__(self, limit_bytes: int, field: str = "file") -> None:
        self.limit_bytes = limit_bytes
        mb = limit_bytes / 1_000_000
        message = f"The file is larger than the {mb:g} MB limit; reduce it or ask staff."
        super().__init__(message, {field: message})


class AuthenticationError(PrintcoreError):
    code = "unauthenticated"


class RateLimitedError(PrintcoreError):
    """Too many attempts from one client, workstation or email address (or the lab's
    hourly cap). ``retry_after`` is the whole number of seconds until the next try can
    succeed (at least 1)."""

    code = "rate_limited"

    def __init__(self, message: str, retry_after: int) -> None:
        self.retry_after = max(int(retry_after), 1)
        super().__init__(message)


class BusyError(PrintcoreError):
    """Too much of this kind of work is already waiting (e.g. uploaded files queued for
    checking), so the request is refused before anything of it is kept. ``retry_after``
    is the whole number of seconds after which a retry is likely to get in (at least 1)."""

    code = "busy"

    def __init__(self, message: str, retry_after: int, *, reason: str | None = None,
                 details: Mapping[str, Any] | None = None) -> None:
        self.retry_after = max(int(retry_after), 1)
        super().__init__(message, reason=reason, details=details)


class TokenError(PrintcoreError):
    code = "bad_token"


class TokenTamperedError(TokenError):
    code = "token_tampered"

    def __init__(self) -> None:
        super().__init__(
            "This link is not valid (it was changed or copied incompletely). "
            "Open the link from the email again, or ask the lab to resend it."
        )


class TokenExpiredError(TokenError):
    code = "token_expired"

    def __init__(self) -> None:
        super().__init__(
            "This link has expired. Ask the lab to send a new confirmation email."
        )


class TokenUsedError(TokenError):
    code = "token_used"

    def __init__(self) -> None:
        super().__init__(
            "This link was already used, or a newer one was sent. "
            "Use the newest email, or ask the lab for a new link."
        )


class StorageError(PrintcoreError):
    """The database or the file store cannot do what was asked right now. ``retry_after``
    is the whole number of seconds after which a retry may succeed (a restarted database
    is back within seconds; the web answers it as ``Retry-After``)."""

    code = "storage_error"
    retry_after: int = 5


class InsufficientStorageError(StorageError):
    """The file store has no room left (the disk or the user's quota is full). Raised
    after every byte of the refused upload or copy was removed; ``retry_after`` is longer
    than a database's (staff must free space first). The default message suits the
    student at the form and staff alike."""

    code = "insufficient_storage"
    retry_after: int = 300

    def __init__(self, message: str | None = None, *, reason: str | None = None,
                 details: Mapping[str, Any] | None = None) -> None:
        super().__init__(
            message
            or "The lab's file storage is full, so nothing was saved and nothing changed "
            "(no print request was made). Please try again later, or tell the lab staff: "
            "they need to free space on the storage disk.",
            reason=reason, details=details)
