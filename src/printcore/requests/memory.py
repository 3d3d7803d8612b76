"""In-memory fakes for the print-request flow: a database of jobs (with the shared
events, staff, settings, sessions and outbox) and a file store (for unit tests, examples
and trying printcore out).

``MemoryDatabase`` holds committed data; each ``MemoryUnitOfWork`` works on a copy and
publishes it on ``commit()`` (with the same optimistic version check as the SQL adapter).
"""

from __future__ import annotations

import builtins
import copy
import hashlib
import threading
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from types import TracebackType
from typing import Any

import attrs

from printcore.errors import (
    ConcurrentChangeError,
    FileTooLargeError,
    NotFoundError,
    UnsupportedFileError,
    ValidationError,
)
from printcore.events import Event
from printcore.memory import MemoryOutbox, MemoryOutboxStore
from printcore.ports import StaffMember, WorkstationSession
from printcore.requests.job import Job, JobFile
from printcore.requests.locks import JobLock
from printcore.requests.ports import StagedFile
from printcore.requests.saves import (
    SavesScan,
    SkippedSave,
    SlicerSave,
    is_ignored_name,
    save_extension,
    save_name_problem,
)
from printcore.requests.search import JobQuery, matches, search_text

__all__ = ["MemoryDatabase", "MemoryFileStore", "MemoryUnitOfWork"]


@attrs.define
class MemoryDatabase:
    jobs: dict[int, Job] = attrs.Factory(dict)
    events: list[Event] = attrs.Factory(list)
    staff: dict[str, StaffMember] = attrs.Factory(dict)
    settings: dict[str, str] = attrs.Factory(dict)
    sessions: dict[str, WorkstationSession] = attrs.Factory(dict)
    outbox: MemoryOutboxStore = attrs.Factory(lambda: MemoryOutboxStore())
    job_locks: dict[int, JobLock] = attrs.Factory(dict)  # soft locks, by job id
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

    def search(self, query: JobQuery) -> tuple[builtins.list[Job], int]:
        found = [j for j in self._uow.db.jobs.values() if matches(j, query)]
        if query.sort == "name":
            found.sort(key=lambda j: (search_text(j), j.id or 0))
        else:
            found.sort(key=lambda j: (j.created_at, j.id or 0))
        page = found[query.offset : query.offset + query.limit]
        return [copy.deepcopy(j) for j in page], len(found)

    def count_ready_ahead(self, confirmed_at: datetime, job_id: int) -> int:
        mine = (confirmed_at, job_id)
        return sum(
            1 for j in self._uow.db.jobs.values()
            if j.status == "ready_to_print" and j.id != job_id
            and ((j.confirmed_at or j.created_at), j.id or 0) < mine
        )

    def due_for_reminder(self, now: datetime, until: datetime, limit: int) -> builtins.list[int]:
        due = sorted(
            (j.confirmation_expires_at, j.id or 0) for j in self._uow.db.jobs.values()
            if j.status == "pending" and j.confirmation_nonce is not None
            and j.confirmation_expires_at is not None
            and now <= j.confirmation_expires_at <= until
            and j.reminder_nonce != j.confirmation_nonce
        )
        return [job_id for _, job_id in due[:limit]]

    def with_payments_between(self, start: datetime, end: datetime) -> builtins.list[Job]:
        found = [j for j in self._uow.db.jobs.values()
                 if any(start <= p.recorded_at < end for p in j.payments)]
        return [copy.deepcopy(j) for j in sorted(found, key=lambda j: j.id or 0)]

    def count_by_status(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for j in self._uow.db.jobs.values():
            counts[j.status] = counts.get(j.status, 0) + 1
        return counts

    def count_by_status_and_review(self) -> dict[str, tuple[int, int]]:
        counts: dict[str, tuple[int, int]] = {}
        for j in self._uow.db.jobs.values():
            total, new = counts.get(j.status, (0, 0))
            counts[j.status] = (total + 1, new + (j.reviewed_at is None))
        return counts

    def entered_status_at(self, job_ids: Sequence[int]) -> dict[int, datetime]:
        wanted = {i: self._uow.db.jobs[i].status for i in job_ids if i in self._uow.db.jobs}
        found: dict[int, datetime] = {}
        for e in self._uow.db.events:
            if (e.subject == "job" and wanted.get(e.subject_id) == e.to_status
                    and e.from_status != e.to_status
                    and (e.subject_id not in found or e.at > found[e.subject_id])):
                found[e.subject_id] = e.at
        return found


def _same_lock(a: JobLock | None, b: JobLock | None) -> bool:
    if a is None or b is None:
        return a is b
    return (a.staff_name, a.workstation, a.version) == (b.staff_name, b.workstation, b.version)


class _Locks:
    """Soft locks: a swap checks the committed lock now, and again at commit."""

    def __init__(self, uow: MemoryUnitOfWork) -> None:
        self._uow = uow

    def get(self, job_id: int) -> JobLock | None:
        if job_id in self._uow.pending_locks:
            return self._uow.pending_locks[job_id][0]
        return self._uow.db.job_locks.get(job_id)

    def swap(self, job_id: int, expected: JobLock | None, new: JobLock | None) -> bool:
        if not _same_lock(self.get(job_id), expected):
            return False
        base = self._uow.pending_locks.get(job_id, (None, expected))[1]
        self._uow.pending_locks[job_id] = (new, base)
        return True

    def for_jobs(self, job_ids: builtins.list[int]) -> dict[int, JobLock]:
        found = {i: self.get(i) for i in job_ids}
        return {i: lock for i, lock in found.items() if lock is not None}


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

    def append_many(self, events: Sequence[Event]) -> None:
        for event in events:
            self.append(event)

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
        if name in self._uow.pending_staff:
            return self._uow.pending_staff[name]
        return None if name in self._uow.removed_staff else self._uow.db.staff.get(name)

    def list(self, active_only: bool = True) -> list[StaffMember]:
        stored = {k: v for k, v in self._uow.db.staff.items() if k not in self._uow.removed_staff}
        merged = {**stored, **self._uow.pending_staff}
        return sorted(
            (m for m in merged.values() if m.active or not active_only), key=lambda m: m.name
        )

    def set_active(self, name: str, active: bool) -> None:
        member = self.get(name)
        if member is None:
            raise NotFoundError(f"No staff member called {name!r}.")
        self._uow.pending_staff[name] = attrs.evolve(member, active=active)

    def rename(self, old: str, new: str) -> None:
        member = self.get(old)
        if member is None:
            raise NotFoundError(f"No staff member called {old!r}.")
        if self.get(new) is not None:
            from printcore.staff import StaffStateError

            raise StaffStateError("rename", "in_use", f"{new!r} is already on the staff list.",
                                  "new_name")
        self._uow.pending_staff.pop(old, None)
        self._uow.removed_staff.add(old)
        self._uow.removed_staff.discard(new)
        self._uow.pending_staff[new] = attrs.evolve(member, name=new)


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
        self.locks = _Locks(self)
        self.events = _Events(self)
        self.staff = _Staff(self)
        self.settings = _Settings(self)
        self.sessions = _Sessions(self)
        self.outbox = MemoryOutbox(db.outbox)
        self._reset()

    def _reset(self) -> None:
        self.pending_jobs: dict[int, tuple[str, Job, int]] = {}
        self.pending_locks: dict[int, tuple[JobLock | None, JobLock | None]] = {}
        self.pending_events: list[Event] = []
        self.pending_staff: dict[str, StaffMember] = {}
        self.removed_staff: set[str] = set()  # old names of renamed members
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
            for job_id, (_lock, expected) in self.pending_locks.items():
                if not _same_lock(db.job_locks.get(job_id), expected):
                    raise ConcurrentChangeError(job_id, f"Job {job_id}'s lock changed.")
            for job_id, (lock, _) in self.pending_locks.items():
                if lock is None:
                    db.job_locks.pop(job_id, None)
                else:
                    db.job_locks[job_id] = lock
            for job_id, (op, job, _) in self.pending_jobs.items():
                if op == "remove":
                    db.jobs.pop(job_id, None)
                else:
                    db.jobs[job_id] = job
            db.events.extend(self.pending_events)
            for name in self.removed_staff:
                db.staff.pop(name, None)
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
    saved_at: dict[str, datetime] = attrs.Factory(dict)  # the slicer's saves' mtimes

    def stage(self, original_name: str, content: bytes, extension: str) -> StagedFile:
        path = Path(f"staging/{len(self.staged) + 1}{extension}")
        self.staged[str(path)] = content
        return StagedFile(
            path, original_name, extension, len(content), hashlib.sha256(content).hexdigest()
        )

    @staticmethod
    def _folder(job: Job, status: str) -> str:
        from printcore.requests.job import JobStatus
        from printcore.requests.naming import job_basename

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

    def rename_copy(self, before: Job, after: Job) -> None:
        src, dst = self._folder(before, before.status), self._folder(after, after.status)
        for key in [k for k in self.files if k.startswith(src + "/")]:
            self.files[dst + key[len(src) :]] = self.files[key]
        self.metadata[dst] = {"job_id": after.id, "status": after.status}

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

    # --- the slicer's saves (printcore.requests.saves) ---------------------------------

    def put_save(self, job: Job, name: str, content: bytes, at: datetime) -> None:
        """What a slicer does: write ``name`` into the job's folder (``at``: its mtime)."""
        key = f"{self._folder(job, job.status)}/{name}"
        self.files[key] = content
        self.saved_at[key] = at

    def scan_saves(self, job: Job, max_bytes: int) -> SavesScan:
        prefix = f"{self._folder(job, job.status)}/"
        known = {f.stored_name for f in job.files}
        saves: list[SlicerSave] = []
        skipped: list[SkippedSave] = []
        for key in sorted(k for k in self.files if k.startswith(prefix)):
            name = key[len(prefix):]
            if name in known or is_ignored_name(name):
                continue
            problem = save_name_problem(name)
            size = len(self.files[key])
            if problem is None and size == 0:
                problem = "empty"
            elif problem is None and size > max_bytes:
                problem = f"larger than the {max_bytes / 1_000_000:g} MB upload limit"
            if problem is not None:
                skipped.append(SkippedSave(name, problem))
                continue
            at = self.saved_at.get(key, datetime.now(UTC))
            saves.append(SlicerSave(name, save_extension(name) or "", size, at))
        return SavesScan(tuple(saves), tuple(skipped))

    def stage_save(self, job: Job, name: str, max_bytes: int) -> StagedFile:
        problem = save_name_problem(name)
        if problem is not None or job.file(name) is not None:
            raise ValidationError(problem or f"{name} is already one of the job's files.",
                                  {"authoritative_file": problem or "Already a job file."})
        content = self.files.get(f"{self._folder(job, job.status)}/{name}")
        if content is None:
            raise NotFoundError(f"{name} is no longer in the job's folder; rescan for saves.")
        if not content:
            raise UnsupportedFileError(f"{name}: empty.", "authoritative_file")
        if len(content) > max_bytes:
            raise FileTooLargeError(max_bytes, "authoritative_file")
        return self.stage(name, content, save_extension(name) or "")

    def remove_save(self, job: Job, name: str, sha256: str) -> None:
        key = f"{self._folder(job, job.status)}/{name}"
        content = self.files.get(key)
        if content is not None and job.file(name) is None and (
                hashlib.sha256(content).hexdigest() == sha256):
            del self.files[key]
            self.saved_at.pop(key, None)
