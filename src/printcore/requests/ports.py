"""The print-request flow's ports: jobs, their files on disk, staged uploads, and the
unit of work the flow runs in (the shared one plus ``jobs`` and the outbox)."""

from __future__ import annotations

import builtins
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Protocol

import attrs

from printcore.outbox import OutboxRepository
from printcore.ports import UnitOfWork
from printcore.requests.job import Job, JobFile
from printcore.requests.locks import JobLock
from printcore.requests.saves import SavesScan
from printcore.requests.search import JobQuery

__all__ = ["FileStore", "JobLockRepository", "JobRepository", "RequestsUnitOfWork", "StagedFile"]


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

    def count_by_status_and_review(self) -> dict[str, tuple[int, int]]:
        """``{status: (jobs, of which not reviewed)}`` in one grouped query; statuses
        without jobs are left out."""
        ...

    def entered_status_at(self, job_ids: Sequence[int]) -> dict[int, datetime]:
        """When each of these jobs entered its current status (UTC): the time of the
        newest event that moved it into that status (``to_status`` equal to the job's
        status and ``from_status`` different), read in one query. Jobs without such an
        event (or unknown ids) are left out; callers fall back to ``created_at``."""
        ...

    def search(self, query: JobQuery) -> tuple[builtins.list[Job], int]:
        """The page of jobs ``query`` finds (:func:`printcore.requests.search.matches`),
        in its order, and how many it finds in all. Sort ``age``: oldest first; ``name``:
        by :func:`~printcore.requests.search.search_text` (folded name first); ties by id."""
        ...

    def count_ready_ahead(self, confirmed_at: datetime, job_id: int) -> int:
        """How many ``ready_to_print`` jobs other than ``job_id`` come before a job
        confirmed at ``confirmed_at`` (UTC) in the print line: confirmed earlier, or at
        the same moment with a smaller id (a job without ``confirmed_at`` counts by its
        ``created_at``). One query."""
        ...

    def due_for_reminder(self, now: datetime, until: datetime, limit: int) -> builtins.list[int]:
        """Ids of pending jobs whose confirmation link expires in ``[now, until]`` (UTC)
        and has had no reminder (``reminder_nonce`` is not the ``confirmation_nonce``),
        soonest expiry first, then by id; at most ``limit``. One query."""
        ...


    def with_payments_between(self, start: datetime, end: datetime) -> builtins.list[Job]:
        """Jobs with at least one payment (voided or not) whose ``recorded_at`` lies in
        ``[start, end)`` (UTC), by id; their other payments come along too. One query."""
        ...


class JobLockRepository(Protocol):
    """Jobs' soft locks (:mod:`printcore.requests.locks`), at most one per job, stored
    whether live or expired (the service compares ``expires_at`` with its clock)."""

    def get(self, job_id: int) -> JobLock | None: ...

    def swap(self, job_id: int, expected: JobLock | None, new: JobLock | None) -> bool:
        """Atomically replace job ``job_id``'s lock ``expected`` (None: no row) by ``new``
        (None: remove it); False, changing nothing, when the stored lock is not
        ``expected`` any more (compared by holder, workstation and version) because a
        concurrent transaction swapped it first."""
        ...

    def for_jobs(self, job_ids: builtins.list[int]) -> dict[int, JobLock]:
        """The stored locks of those jobs, by job id."""
        ...


class RequestsUnitOfWork(UnitOfWork, Protocol):
    """The shared unit of work plus the jobs, their soft locks and the outbox
    (:mod:`printcore.outbox`)."""

    jobs: JobRepository
    locks: JobLockRepository
    outbox: OutboxRepository

    def __enter__(self) -> RequestsUnitOfWork: ...


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

    def rename_copy(self, before: Job, after: Job) -> None:
        """Copy the job's folder as named for ``before`` (its folder name holds the student
        name and colour) to the one named for ``after``, in the same status folder,
        writing ``metadata.json`` there for ``after``. The caller removes the old folder
        (``remove_copy(before, status)``) once the change is committed."""
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

    def scan_saves(self, job: Job, max_bytes: int) -> SavesScan:
        """The slicer's saves in the job's folder under its current status that are not
        the job's files (:mod:`printcore.requests.saves`): regular files only, with a
        sliced extension, not hidden or temporary. Refused and listed in ``skipped`` with
        the reason: links (symbolic or hard), empty files, files over ``max_bytes`` bytes,
        files still being written. A missing folder gives an empty scan."""
        ...

    def stage_save(self, job: Job, name: str, max_bytes: int) -> StagedFile:
        """Copy the save ``name`` from the job's folder into staging (its bytes as they
        are now, hashed), for the same checks as an upload. Raises ValidationError
        (``name`` is not a plain file name there), NotFoundError (it is gone),
        UnsupportedFileError (a link, not a regular file, empty, still being written),
        FileTooLargeError (over ``max_bytes``)."""
        ...

    def remove_save(self, job: Job, name: str, sha256: str) -> None:
        """After the save was adopted (committed): remove the slicer's file ``name`` if it
        still holds the bytes with ``sha256`` (a newer save in its place is kept)."""
        ...
