"""In-memory implementations of the ports: for unit tests, examples and trying printcore out.

``MemoryDatabase`` holds committed data; each ``MemoryUnitOfWork`` works on a copy and
publishes it on ``commit()`` (with the same optimistic version check as the SQL adapter).
"""

from __future__ import annotations

import copy
import hashlib
import threading
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path, PurePosixPath
from types import TracebackType
from typing import Any

import attrs

from printcore.errors import ConcurrentChangeError, NotFoundError, TokenTamperedError
from printcore.events import Event
from printcore.job import Job, JobFile
from printcore.outbox import OutboxMessage
from printcore.ports import Notice, StaffMember, StagedFile, WorkstationSession

__all__ = [
    "FixedClock",
    "MemoryDatabase",
    "MemoryFileStore",
    "MemoryOutbox",
    "MemoryOutboxStore",
    "MemorySigner",
    "MemoryUnitOfWork",
    "PlainHasher",
    "SystemClock",
]


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


@attrs.define
class FixedClock:
    """A clock that moves only when told: ``clock.advance(minutes=10)``."""

    current: datetime = datetime(2026, 9, 1, 15, 0, tzinfo=UTC)

    def now(self) -> datetime:
        return self.current

    def advance(self, **delta: float) -> None:
        self.current = self.current + timedelta(**delta)


@attrs.define
class MemoryDatabase:
    jobs: dict[int, Job] = attrs.Factory(dict)
    events: list[Event] = attrs.Factory(list)
    staff: dict[str, StaffMember] = attrs.Factory(dict)
    settings: dict[str, str] = attrs.Factory(dict)
    sessions: dict[str, WorkstationSession] = attrs.Factory(dict)
    outbox: MemoryOutboxStore = attrs.Factory(lambda: MemoryOutboxStore())
    next_job_id: int = 1
    next_event_id: int = 0
    lock: threading.Lock = attrs.field(factory=threading.Lock, repr=False)


class _Jobs:
    def __init__(self, uow: MemoryUnitOfWork) -> None:
        self._uow = uow

    def add(self, job: Job) -> int:
        db = self._uow.db
        with db.lock:
            job.id = db.next_job_id
            db.next_job_id += 1
        job.version = 1
        self._uow.pending_jobs[job.id] = ("add", copy.deepcopy(job), 0)
        return job.id

    def get(self, job_id: int) -> Job:
        if job_id in self._uow.pending_jobs:
            op, job, _ = self._uow.pending_jobs[job_id]
            if op == "remove":
                raise NotFoundError(f"There is no job {job_id}.")
            return copy.deepcopy(job)
        found = self._uow.db.jobs.get(job_id)
        if found is None:
            raise NotFoundError(f"There is no job {job_id}.")
        return copy.deepcopy(found)

    def update(self, job: Job) -> None:
        assert job.id is not None
        op, _, base = self._uow.pending_jobs.get(job.id, ("update", job, job.version))
        job.version += 1
        self._uow.pending_jobs[job.id] = (op, copy.deepcopy(job), base)

    def remove(self, job: Job) -> None:
        assert job.id is not None
        self._uow.pending_jobs[job.id] = ("remove", copy.deepcopy(job), job.version)

    def list(self, status: str | None = None, limit: int = 100, offset: int = 0) -> list[Job]:
        jobs = [j for j in self._uow.db.jobs.values() if status is None or j.status == status]
        if status is None:
            jobs.sort(key=lambda j: (j.created_at, j.id or 0), reverse=True)
        else:
            jobs.sort(key=lambda j: (j.created_at, j.id or 0))
        return [copy.deepcopy(j) for j in jobs[offset : offset + limit]]

    def count_by_status(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for j in self._uow.db.jobs.values():
            counts[j.status] = counts.get(j.status, 0) + 1
        return counts


class _Events:
    def __init__(self, uow: MemoryUnitOfWork) -> None:
        self._uow = uow

    def append(self, event: Event) -> Event:
        db = self._uow.db
        with db.lock:
            db.next_event_id += 1
            stored = attrs.evolve(event, id=db.next_event_id)
        self._uow.pending_events.append(stored)
        return stored

    def for_subject(self, subject: str, subject_id: int) -> list[Event]:
        return [
            e for e in self._uow.db.events if e.subject == subject and e.subject_id == subject_id
        ]


class _Staff:
    def __init__(self, uow: MemoryUnitOfWork) -> None:
        self._uow = uow

    def add(self, member: StaffMember) -> None:
        self._uow.pending_staff[member.name] = member

    def get(self, name: str) -> StaffMember | None:
        return self._uow.pending_staff.get(name) or self._uow.db.staff.get(name)

    def list(self, active_only: bool = True) -> list[StaffMember]:
        merged = {**self._uow.db.staff, **self._uow.pending_staff}
        return sorted(
            (m for m in merged.values() if m.active or not active_only), key=lambda m: m.name
        )

    def set_active(self, name: str, active: bool) -> None:
        member = self.get(name)
        if member is None:
            raise NotFoundError(f"No staff member called {name!r}.")
        self._uow.pending_staff[name] = attrs.evolve(member, active=active)


class _Settings:
    def __init__(self, uow: MemoryUnitOfWork) -> None:
        self._uow = uow

    def get(self, key: str) -> str | None:
        return self._uow.pending_settings.get(key, self._uow.db.settings.get(key))

    def set(self, key: str, value: str) -> None:
        self._uow.pending_settings[key] = value


class _Sessions:
    def __init__(self, uow: MemoryUnitOfWork) -> None:
        self._uow = uow

    def _merged(self) -> dict[str, WorkstationSession]:
        return {**self._uow.db.sessions, **self._uow.pending_sessions}

    def add(self, session: WorkstationSession) -> None:
        self._uow.pending_sessions[session.id] = session

    def get(self, session_id: str) -> WorkstationSession | None:
        return self._merged().get(session_id)

    def list(self, active_only: bool = True) -> list[WorkstationSession]:
        found = [s for s in self._merged().values() if s.active or not active_only]
        return sorted(found, key=lambda s: s.started_at, reverse=True)

    def touch(self, session_id: str, at: datetime) -> None:
        if (session := self.get(session_id)) is not None:
            self._uow.pending_sessions[session_id] = attrs.evolve(session, last_seen_at=at)

    def end(self, session_id: str, at: datetime, by: str) -> bool:
        session = self.get(session_id)
        if session is None or not session.active:
            return False
        self._uow.pending_sessions[session_id] = attrs.evolve(session, ended_at=at, ended_by=by)
        return True

    def end_all(self, at: datetime, by: str) -> int:
        return sum(self.end(s.id, at, by) for s in self.list())


class MemoryUnitOfWork:
    """A unit of work over a :class:`MemoryDatabase`; use a fresh one per transaction."""

    def __init__(self, db: MemoryDatabase) -> None:
        self.db = db
        self.jobs = _Jobs(self)
        self.events = _Events(self)
        self.staff = _Staff(self)
        self.settings = _Settings(self)
        self.sessions = _Sessions(self)
        self.outbox = MemoryOutbox(db.outbox)
        self._reset()

    def _reset(self) -> None:
        self.pending_jobs: dict[int, tuple[str, Job, int]] = {}
        self.pending_events: list[Event] = []
        self.pending_staff: dict[str, StaffMember] = {}
        self.pending_settings: dict[str, str] = {}
        self.pending_sessions: dict[str, WorkstationSession] = {}
        self.outbox.reset()

    def __enter__(self) -> MemoryUnitOfWork:
        self._reset()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.rollback()

    def commit(self) -> None:
        db = self.db
        with db.lock:
            for job_id, (op, _job, base) in self.pending_jobs.items():
                stored = db.jobs.get(job_id)
                if op != "add" and stored is None:
                    raise NotFoundError(f"There is no job {job_id}.")
                if op != "add" and stored is not None and stored.version != base:
                    raise ConcurrentChangeError(job_id)
            for job_id, (op, job, _) in self.pending_jobs.items():
                if op == "remove":
                    db.jobs.pop(job_id, None)
                else:
                    db.jobs[job_id] = job
            db.events.extend(self.pending_events)
            db.staff.update(self.pending_staff)
            db.settings.update(self.pending_settings)
            db.sessions.update(self.pending_sessions)
            self.outbox.publish()
        self._reset()

    def rollback(self) -> None:
        self._reset()


@attrs.define
class MemoryFileStore:
    """Files as bytes in a dict keyed by ``Folder/JobBase/name``; metadata as dicts."""

    files: dict[str, bytes] = attrs.Factory(dict)
    metadata: dict[str, dict[str, Any]] = attrs.Factory(dict)
    staged: dict[str, bytes] = attrs.Factory(dict)

    def stage(self, original_name: str, content: bytes, extension: str) -> StagedFile:
        path = Path(f"staging/{len(self.staged) + 1}{extension}")
        self.staged[str(path)] = content
        return StagedFile(
            path, original_name, extension, len(content), hashlib.sha256(content).hexdigest()
        )

    @staticmethod
    def _folder(job: Job, status: str) -> str:
        from printcore.job import JobStatus
        from printcore.naming import job_basename

        assert job.id is not None
        base = job_basename(job.student_name, job.print_method, job.color, job.id)
        return f"{JobStatus(status).folder}/{base}"

    def adopt(self, job: Job, staged: StagedFile, stored_name: str, role: str) -> JobFile:
        content = self.staged.pop(str(staged.path))
        self.files[f"{self._folder(job, job.status)}/{stored_name}"] = content
        return JobFile(
            stored_name=stored_name,
            original_name=staged.original_name,
            role=role,
            size_bytes=staged.size_bytes,
            sha256=staged.sha256,
            uploaded_at=datetime.now(UTC),
        )

    def discard(self, staged: StagedFile) -> None:
        self.staged.pop(str(staged.path), None)

    def copy_job(self, job: Job, from_status: str, to_status: str) -> None:
        src, dst = self._folder(job, from_status), self._folder(job, to_status)
        for key in [k for k in self.files if k.startswith(src + "/")]:
            self.files[dst + key[len(src) :]] = self.files[key]
        self.metadata[dst] = {"job_id": job.id, "status": to_status}

    def remove_copy(self, job: Job, status: str) -> None:
        folder = self._folder(job, status)
        for key in [k for k in self.files if k.startswith(folder + "/")]:
            del self.files[key]
        self.metadata.pop(folder, None)

    def remove_file(self, job: Job, stored_name: str) -> None:
        self.files.pop(f"{self._folder(job, job.status)}/{stored_name}", None)

    def write_metadata(self, job: Job) -> None:
        self.metadata[self._folder(job, job.status)] = {"job_id": job.id, "status": job.status}

    def path_of(self, job: Job, stored_name: str) -> Path:
        key = f"{self._folder(job, job.status)}/{stored_name}"
        if key not in self.files:
            raise NotFoundError(f"{stored_name} is not in storage.")
        return Path(PurePosixPath(key))

    def exists(self, job: Job, stored_name: str) -> bool:
        return f"{self._folder(job, job.status)}/{stored_name}" in self.files

    def folders_of(self, job: Job) -> set[str]:
        """The status folders holding any of the job's files (for tests)."""
        assert job.id is not None
        suffix = f"_{job.id}/"
        return {k.split("/")[0] for k in self.files if suffix in k}


@attrs.define
class MemoryOutboxStore:
    """Committed outbox rows (shared by the print request and queue fakes)."""

    rows: dict[int, OutboxMessage] = attrs.Factory(dict)
    next_id: int = 1
    lock: threading.RLock = attrs.field(factory=threading.RLock, repr=False)

    def messages(self, channel: str | None = None) -> list[OutboxMessage]:
        """Committed rows, oldest first (copies)."""
        with self.lock:
            rows = [copy.deepcopy(m) for _, m in sorted(self.rows.items())]
        return [m for m in rows if channel is None or m.channel == channel]

    @property
    def sent(self) -> list[Notice]:
        """The email notices of committed changes, oldest first."""
        return [m.notice() for m in self.messages("email")]


class MemoryOutbox:
    """``printcore.outbox.OutboxRepository`` over a :class:`MemoryOutboxStore`: writes are
    kept in the transaction until :meth:`publish`; a lease taken by two transactions at
    once lets only the first commit."""

    def __init__(self, store: MemoryOutboxStore) -> None:
        self.store = store
        self.pending: dict[int, tuple[OutboxMessage, int | None]] = {}

    def reset(self) -> None:
        self.pending = {}

    def publish(self) -> None:
        """Called by the unit of work's commit, under no other lock."""
        with self.store.lock:
            for message_id, (_m, base) in self.pending.items():
                stored = self.store.rows.get(message_id)
                if base is not None and (stored is None or stored.attempts != base):
                    raise ConcurrentChangeError(message=f"Message {message_id} changed.")
            for message_id, (message, _) in self.pending.items():
                self.store.rows[message_id] = copy.deepcopy(message)
        self.reset()

    def _view(self) -> dict[int, OutboxMessage]:
        with self.store.lock:
            view = dict(self.store.rows)
        view.update({k: m for k, (m, _) in self.pending.items()})
        return view

    def add(self, message: OutboxMessage) -> int:
        with self.store.lock:
            message.id = self.store.next_id
            self.store.next_id += 1
        if message.next_attempt_at is None:
            message.next_attempt_at = message.created_at
        self.pending[message.id] = (copy.deepcopy(message), None)
        return message.id

    def get(self, message_id: int) -> OutboxMessage:
        found = self._view().get(message_id)
        if found is None:
            raise NotFoundError(f"There is no message {message_id}.")
        return copy.deepcopy(found)

    def lease(self, message_id: int, now: datetime, until: datetime) -> OutboxMessage | None:
        found = self._view().get(message_id)
        if found is None or found.status != "pending":
            return None
        if found.next_attempt_at is not None and found.next_attempt_at > now:
            return None
        if found.lease_until is not None and found.lease_until > now:
            return None
        message = copy.deepcopy(found)
        base = self.pending.get(message_id, (None, message.attempts))[1]
        message.lease_until = until
        message.attempts += 1
        self.pending[message_id] = (copy.deepcopy(message), base)
        return message

    def finish(self, message: OutboxMessage) -> None:
        assert message.id is not None
        self.pending[message.id] = (copy.deepcopy(message), None)

    def due(self, now: datetime, limit: int, channels: Sequence[str],
            relayed_before: datetime | None = None) -> list[int]:
        out = []
        rows = sorted(self._view().items(),
                      key=lambda item: (item[1].next_attempt_at or item[1].created_at, item[0]))
        for message_id, m in rows:
            if m.status != "pending" or m.channel not in channels:
                continue
            if m.next_attempt_at is not None and m.next_attempt_at > now:
                continue
            if m.lease_until is not None and m.lease_until > now:
                continue
            if relayed_before is not None and m.relayed_at is not None \
                    and m.relayed_at > relayed_before:
                continue
            out.append(message_id)
        return out[:limit]

    def mark_relayed(self, message_ids: Sequence[int], at: datetime | None) -> None:
        for message_id in message_ids:
            message = self.get(message_id)
            message.relayed_at = at
            self.pending[message_id] = (message, None)

    def list(self, status: str | None = None, subject: str | None = None,
             subject_id: int | None = None, limit: int = 100) -> list[OutboxMessage]:
        rows = [copy.deepcopy(m) for _, m in sorted(self._view().items(), reverse=True)]
        rows = [m for m in rows if (status is None or m.status == status)
                and (subject is None or m.subject == subject)
                and (subject_id is None or m.subject_id == subject_id)]
        return rows[:limit]

    def failed_subjects(self, subject: str) -> dict[int, int]:
        out: dict[int, int] = {}
        for m in self._view().values():
            if m.status == "failed" and m.subject == subject:
                out[m.subject_id] = out.get(m.subject_id, 0) + 1
        return out


class MemorySigner:
    """Not cryptographic: a stand-in that still refuses any edited token."""

    def __init__(self, secret: str = "test") -> None:
        self._secret = secret

    def _mac(self, purpose: str, body: str) -> str:
        return hashlib.sha256(f"{self._secret}|{purpose}|{body}".encode()).hexdigest()[:16]

    def dumps(self, purpose: str, payload: Mapping[str, Any]) -> str:
        import json

        body = json.dumps(dict(payload), sort_keys=True, separators=(",", ":"))
        return f"{body}.{self._mac(purpose, body)}"

    def loads(self, purpose: str, token: str) -> dict[str, Any]:
        import json

        body, _, mac = token.rpartition(".")
        if not body or mac != self._mac(purpose, body):
            raise TokenTamperedError()
        data: dict[str, Any] = json.loads(body)
        return data


class PlainHasher:
    """Not for production: compares sha256 digests."""

    def hash(self, password: str) -> str:
        return hashlib.sha256(password.encode()).hexdigest()

    def verify(self, hashed: str, password: str) -> bool:
        return hashed == self.hash(password)
