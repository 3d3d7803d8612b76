"""Checking the storage folders against the database, and repairing what a crash left.

A state change copies the job's folder into the new status folder, commits, then deletes
the old one. A crash between the steps leaves two folders for one job: before the commit
the database still names the old status (the new copy is the leftover); after it, the
new one (the old folder is the leftover). Both are found here, and ``repair`` removes the
leftover once the folder the database names is complete (every recorded file present
with its SHA-256). Folders of unknown jobs are reported, never deleted.
"""

from __future__ import annotations

import hashlib
import re
import shutil
from collections.abc import Callable
from pathlib import Path

import attrs

from adapters.files.store import METADATA_NAME, LocalFileStore
from printcore.errors import NotFoundError
from printcore.ports import UnitOfWork
from printcore.requests.job import Job, JobStatus

__all__ = ["AuditReport", "audit_storage"]

_JOB_FOLDER = re.compile(r"^[A-Za-z0-9]+_[A-Za-z0-9]+_[A-Za-z0-9]+_(\d+)$")


@attrs.define
class AuditReport:
    """``problems``: human lines; ``repaired``: what ``repair=True`` fixed."""

    jobs_checked: int = 0
    problems: list[str] = attrs.Factory(list)
    repaired: list[str] = attrs.Factory(list)

    @property
    def ok(self) -> bool:
        return not self.problems or len(self.problems) == len(self.repaired)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _complete(store: LocalFileStore, job: Job, status: str) -> bool:
    folder = store.folder(job, status)
    if not (folder / METADATA_NAME).is_file():
        return False
    return all(
        (folder / f.stored_name).is_file() and _sha256(folder / f.stored_name) == f.sha256
        for f in job.files
    )


def audit_storage(
    store: LocalFileStore, uow: Callable[[], UnitOfWork], repair: bool = False
) -> AuditReport:
    """Compare every job folder under the storage root with the database."""
    report = AuditReport()
    folders: dict[int, list[str]] = {}
    for status in JobStatus:
        base = store.root / status.folder
        if not base.is_dir():
            continue
        for child in base.iterdir():
            match = _JOB_FOLDER.match(child.name)
            if child.is_dir() and match:
                folders.setdefault(int(match.group(1)), []).append(status.value)
    for job_id, statuses in sorted(folders.items()):
        try:
            with uow() as work:
                job = work.jobs.get(job_id)
        except NotFoundError:
            report.problems.append(
                f"job {job_id}: folder(s) in {', '.join(statuses)} but no such job in the "
                "database (left by an interrupted submission or delete); check and remove by hand"
            )
            continue
        report.jobs_checked += 1
        if not _complete(store, job, job.status):
            report.problems.append(
                f"job {job_id}: its {job.status} folder is missing or incomplete"
            )
            leftovers = [s for s in statuses if s != job.status and _complete(store, job, s)]
            if repair and leftovers:
                shutil.rmtree(store.folder(job, job.status), ignore_errors=True)
                store.copy_job(job, leftovers[0], job.status)
                report.repaired.append(f"job {job_id}: restored from {leftovers[0]}")
            continue
        for status in statuses:
            if status == job.status:
                continue
            report.problems.append(f"job {job_id}: leftover copy in {status} (it is {job.status})")
            if repair:
                store.remove_copy(job, status)
                report.repaired.append(f"job {job_id}: removed leftover in {status}")
    return report
