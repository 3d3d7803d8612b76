"""Ports both flows share: the clock, the event log, staff, settings, workstation
sessions, password hashing, link signing, email notices, and the unit of work they all
run in. Each flow adds its own (``printcore.requests.ports``, ``printcore.queue.ports``).

Adapters implement them (``adapters.sql``, ``adapters.files``, ``adapters.mail``, ...);
unit tests use the in-memory fakes of :mod:`printcore.memory` and the flows' own.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from types import TracebackType
from typing import Any, Protocol

import attrs

from printcore.events import Event

__all__ = [
    "Clock",
    "EventLog",
    "Notice",
    "PasswordHasher",
    "SessionRepository",
    "SettingsRepository",
    "StaffMember",
    "StaffRepository",
    "TokenSigner",
    "UnitOfWork",
    "WorkstationSession",
]


class Clock(Protocol):
    def now(self) -> datetime:
        """The current time, timezone-aware UTC."""
        ...


class EventLog(Protocol):
    def append(self, event: Event) -> Event:
        """Append and return the stored event (with its id). Events are never changed."""
        ...

    def append_many(self, events: Sequence[Event]) -> None:
        """``append`` of each, in order (at once where the store can); for writers that do
        not need the new ids (a sweep's hundreds of events)."""
        ...

    def for_subject(self, subject: str, subject_id: int) -> list[Event]:
        """Oldest first."""
        ...


@attrs.frozen
class StaffMember:
    name: str
    active: bool = True
    added_at: datetime | None = None


class StaffRepository(Protocol):
    def add(self, member: StaffMember) -> None:
        """Add or reactivate."""
        ...

    def get(self, name: str) -> StaffMember | None: ...

    def list(self, active_only: bool = True) -> list[StaffMember]: ...

    def set_active(self, name: str, active: bool) -> None: ...

    def rename(self, old: str, new: str) -> None:
        """Give member ``old`` the name ``new`` (active flag and ``added_at`` kept). Raises
        NotFoundError for an unknown ``old``; ``printcore.staff.StaffStateError`` when a
        member called ``new`` exists (the service checks first, ignoring case; this is
        the last word when two renames race)."""
        ...


@attrs.frozen
class WorkstationSession:
    """A staff login at one workstation: ``id`` is a random key of 32 hex digits (kept in the
    session cookie and the bearer token), times are UTC, ``ended_at`` is set by logout,
    by ending it from the command line, or by a password change (``ended_by`` says who or
    why)."""

    id: str
    workstation: str
    started_at: datetime
    last_seen_at: datetime
    ended_at: datetime | None = None
    ended_by: str | None = None

    @property
    def active(self) -> bool:
        return self.ended_at is None


class SessionRepository(Protocol):
    """Workstation sessions (server side, so a logout or a password change ends them)."""

    def add(self, session: WorkstationSession) -> None: ...

    def get(self, session_id: str) -> WorkstationSession | None: ...

    def list(self, active_only: bool = True) -> list[WorkstationSession]:
        """Newest first."""
        ...

    def touch(self, session_id: str, at: datetime) -> None:
        """Record that the session was used at ``at``."""
        ...

    def end(self, session_id: str, at: datetime, by: str) -> bool:
        """End one active session; False when it is unknown or already ended."""
        ...

    def end_all(self, at: datetime, by: str) -> int:
        """End every active session; returns how many were ended."""
        ...


class SettingsRepository(Protocol):
    """Small key → text values kept in the database (e.g. the staff password hash)."""

    def get(self, key: str) -> str | None: ...

    def set(self, key: str, value: str) -> None: ...


class UnitOfWork(Protocol):
    """One database transaction. ``with uow:`` begins; leaving without ``commit()`` rolls back.

    This is what both flows share; each flow's unit of work adds its repositories and the
    outbox (``printcore.requests.ports.RequestsUnitOfWork``,
    ``printcore.queue.ports.QueueUnitOfWork``): messages a change causes are added to
    ``outbox`` in the same transaction, so they are sent if and only if the change is
    committed (:mod:`printcore.outbox`).
    """

    events: EventLog
    staff: StaffRepository
    settings: SettingsRepository
    sessions: SessionRepository

    def __enter__(self) -> UnitOfWork: ...

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...

    def commit(self) -> None: ...

    def rollback(self) -> None: ...


@attrs.frozen
class Notice:
    """An email to a student, stored in the outbox with the change that causes it and
    rendered and delivered later by the mail adapter.

    ``kind``: ``submitted``, ``approved``, ``requoted`` (a corrected quote with a new
    link), ``rejected``, ``confirmed``, ``completed``, ``payment_receipt``,
    ``confirmation_reminder``. ``context`` holds JSON-compatible
    values (the job's figures, tokens, UTC ISO times).
    """

    kind: str
    to: str
    job_id: int
    context: Mapping[str, Any] = attrs.Factory(dict)



class TokenSigner(Protocol):
    """Signs small JSON payloads for links (confirmation, status). Expiry is checked by
    printcore against its clock, so the signer only proves integrity."""

    def dumps(self, purpose: str, payload: Mapping[str, Any]) -> str: ...

    def loads(self, purpose: str, token: str) -> dict[str, Any]:
        """Raises TokenTamperedError for a bad signature or a token of another purpose."""
        ...


class PasswordHasher(Protocol):
    def hash(self, password: str) -> str: ...

    def verify(self, hashed: str, password: str) -> bool: ...
