"""Ports: the small interfaces printcore needs from the outside world.

Adapters implement them (``adapters.sql``, ``adapters.files``, ``adapters.mail``, ...);
unit tests use the in-memory fakes of :mod:`printcore.memory`.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, Protocol

import attrs

from printcore.events import Event
from printcore.job import Job, JobFile

if TYPE_CHECKING:
    from printcore.outbox import OutboxRepository

__all__ = [
    "Clock",
    "EventLog",
    "FileStore",
    "JobRepository",
    "Notice",
    "PasswordHasher",
    "SessionRepository",
    "SettingsRepository",
    "StaffMember",
    "StaffRepository",
    "StagedFile",
    "TokenSigner",
    "UnitOfWork",
    "WorkstationSession",
]


class Clock(Protocol):
    def now(self) -> datetime:
        """The current time, timezone-aware UTC."""
        ...


class JobRepository(Protocol):
    def add(self, job: Job) -> int:
        """Store a new job, set and return its id (version becomes 1)."""
        ...

    def get(self, job_id: int) -> Job:
        """Raises NotFoundError."""
        ...

    def update(self, job: Job) -> None:
        """Store ``job`` if its stored version still equals ``job.version``; bump the version.

        Raises ConcurrentChangeError when someone else changed it first, NotFoundError when
        it is gone.
        """
        ...

    def remove(self, job: Job) -> None:
        """Delete the row (same version check as ``update``)."""
        ...

    def list(
        self, status: str | None = None, limit: int = 100, offset: int = 0
    ) -> list[Job]:
        """Jobs, oldest first within a status (newest first when ``status`` is None)."""
        ...

    def count_by_status(self) -> dict[str, int]: ...


class EventLog(Protocol):
    def append(self, event: Event) -> Event:
        """Append and return the stored event (with its id). Events are never changed."""
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

    Messages a change causes are added to ``outbox`` in the same transaction, so they are
    sent if and only if the change is committed (:mod:`printcore.outbox`).
    """

    jobs: JobRepository
    events: EventLog
    staff: StaffRepository
    settings: SettingsRepository
    sessions: SessionRepository
    outbox: OutboxRepository

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
class StagedFile:
    """An upload already streamed to disk and checked by an adapter, not yet a job's.

    ``path`` is where it lies (inside the store's staging folder), ``extension`` the
    normalised extension (``.stl``, ``.gcode.3mf``), ``size_bytes`` bytes, ``sha256`` hex.
    ``original_name`` is what the uploader called it; it is never used as a path.
    """

    path: Path
    original_name: str
    extension: str
    size_bytes: int
    sha256: str


class FileStore(Protocol):
    """The status folders (``Uploaded/``, ``Pending/`` ...) with one folder per job.

    A state change is copy → database commit → delete: ``copy_job`` before the commit,
    ``remove_copy`` of the old folder after it (or of the new one when the commit failed).
    """

    def adopt(self, job: Job, staged: StagedFile, stored_name: str, role: str) -> JobFile:
        """Move a staged upload into the job's folder (current status) under ``stored_name``.

        ``role`` is ``original`` or ``sliced``; returns the file's record.
        """
        ...

    def discard(self, staged: StagedFile) -> None: ...

    def copy_job(self, job: Job, from_status: str, to_status: str) -> None:
        """Copy the job's folder from the ``from_status`` folder to the ``to_status`` one,
        writing ``metadata.json`` there for the job as it is now."""
        ...

    def remove_copy(self, job: Job, status: str) -> None:
        """Remove the job's folder under ``status`` (missing is fine)."""
        ...

    def remove_file(self, job: Job, stored_name: str) -> None:
        """Remove one file from the job's folder under its current status (missing is fine)."""
        ...

    def write_metadata(self, job: Job) -> None:
        """(Re)write ``metadata.json`` in the job's folder under its current status."""
        ...

    def path_of(self, job: Job, stored_name: str) -> Path:
        """Where the job's file lies now. Raises NotFoundError when it is not on disk."""
        ...

    def exists(self, job: Job, stored_name: str) -> bool: ...


@attrs.frozen
class Notice:
    """An email to a student, stored in the outbox with the change that causes it and
    rendered and delivered later by the mail adapter.

    ``kind``: ``submitted``, ``approved``, ``rejected``, ``confirmed``, ``completed``,
    ``payment_receipt``. ``context`` holds JSON-compatible values (the job's figures,
    tokens, UTC ISO times).
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
