"""Checking the storage folders against the database, and repairing what a crash left.

A state change copies the job's folder into the new status folder (through a temporary
``.<name>.<hex>.tmp`` folder renamed into place), commits, then deletes the old one. A
crash between the steps leaves two folders for one job: before the commit the database
still names the old status (the new copy is the leftover); after it, the new one (the old
folder is the leftover). The audit walks every status folder and every job in the
database and reports :class:`Finding` s of these kinds:

``orphan_folder``
    a folder of a job the database does not have (an interrupted submission or delete, or
    something put there by hand). Reported, never deleted.
``missing_folder``
    a job with no folder anywhere. Not repairable (a backup may have the files).
``missing_authoritative_file`` / ``missing_file``
    a recorded file (the one to print / any other) missing from the job's folder or with
    a different SHA-256. Repaired by copying it from another copy of the job's folder
    that has it intact; otherwise reported (upload or slice it again).
``stale_duplicate``
    the job's folder is complete where the database says, and another copy of it lies in
    another status folder (or under an old name): the leftover of an interrupted move.
    Repaired by removing the copy, only when every file in it is also in the job's folder
    with the same bytes.
``folder_state_mismatch``
    the job's folder is only in the wrong status folder. Repaired by moving it to where
    the database says, when every recorded file is present with its SHA-256.
``metadata_mismatch``
    ``metadata.json`` missing, unreadable or differing from the database (any field but
    ``updated_at``). Repaired by rewriting it from the database.
``staging_leftover``
    a partial upload in ``.staging/`` (``<uuid>.part``), a temporary copy folder or a
    temporary ``metadata.json`` older than ``settle_seconds``; or the folder of a
    submission whose commit never happened (the web process killed between storing the
    model and the commit): in ``Uploaded/``, its ``metadata.json`` naming a job id (or
    none written yet, only the model there) that has no row and no history while a later job is in the database (ids are never given
    out twice, so that id was never saved, and the database is not behind the storage
    as after a restore). Repaired by removing it.

Anything younger than ``settle_seconds`` (10 minutes by default, by file mtime) that
could be a change in progress (a temporary file, or a copy beside the job's folder) is
left out of the report, so running the audit beside a live server never removes a copy
that a move is about to commit. Every repair re-reads the job first and skips it when
the job changed since the scan. Each repair done is an event ``audit_repaired``: on the
job (subject ``job``) for job folders, a lab event otherwise.
"""

from __future__ import annotations

import getpass
import hashlib
import json
import os
import re
import shutil
import socket
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import attrs

from adapters.files.store import METADATA_NAME, LocalFileStore
from printcore.errors import NotFoundError
from printcore.events import Actor, Event
from printcore.lab_events import lab_event
from printcore.ports import Clock
from printcore.requests.job import Job, JobStatus
from printcore.requests.ports import RequestsUnitOfWork

__all__ = ["KINDS", "SETTLE_SECONDS", "AuditReport", "Finding", "Repair", "audit_storage",
           "command_line_actor"]

#: Finding kinds, in the order repairs are done.
KINDS = ("staging_leftover", "folder_state_mismatch", "missing_authoritative_file",
         "missing_file", "stale_duplicate", "metadata_mismatch", "missing_folder",
         "orphan_folder")
#: Temporary files and copies younger than this (seconds, by mtime) may be in use.
SETTLE_SECONDS = 600.0


def command_line_actor() -> Actor:
    """Who repairs from a terminal (``printcore storage check --repair``): the system
    actor ``storage check (<OS user>)`` at this computer's host name."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = "unknown user"
    return Actor("system", f"storage check ({user})", socket.gethostname() or None)

_JOB_FOLDER = re.compile(r"^[A-Za-z0-9]+_[A-Za-z0-9]+_[A-Za-z0-9]+_(\d+)$")
_TEMP = re.compile(r"^\..+\.[0-9a-f]{32}\.tmp$")
_PAGE = 500
#: metadata.json fields not compared: a confirmation reminder touches the job's
#: ``updated_at`` without rewriting the file (printcore.requests.reminders).
_VOLATILE = frozenset({"updated_at"})
#: Files printcore makes again when they are missing (adapters.web.thumbnails): a stale
#: copy holding them may still be removed.
_REMADE = frozenset({"thumbnail.png", "thumbnail.json"})


@attrs.frozen
class Finding:
    """One thing the storage and the database disagree on.

    ``path`` and ``target`` are relative to the storage root (``Pending/Jane_..._42``);
    ``target`` is where a folder or file would be moved or copied to (else None).
    ``repair`` says what the safe repair does, or is None when it has none (``message``
    then says what to do by hand). ``version`` is the job's version when it was scanned.
    """

    kind: str
    job_id: int | None
    path: str
    message: str
    repair: str | None = None
    target: str | None = None
    version: int | None = attrs.field(default=None, eq=False, repr=False)
    source: str | None = attrs.field(default=None, eq=False, repr=False)

    @property
    def repairable(self) -> bool:
        return self.repair is not None

    def as_json(self) -> dict[str, Any]:
        """``{kind, job_id, path, target, message, repairable, repair}``."""
        return {"kind": self.kind, "job_id": self.job_id, "path": self.path,
                "target": self.target, "message": self.message,
                "repairable": self.repairable, "repair": self.repair}


@attrs.frozen
class Repair:
    """A repair done (``done``), or planned by a dry run / skipped (``done`` False, with
    ``error`` saying why it was skipped)."""

    finding: Finding
    done: bool
    error: str | None = None

    @property
    def message(self) -> str:
        return f"{_who(self.finding)}: {self.finding.repair}"

    def as_json(self) -> dict[str, Any]:
        """``{kind, job_id, path, target, action, done, error}``."""
        f = self.finding
        return {"kind": f.kind, "job_id": f.job_id, "path": f.path, "target": f.target,
                "action": f.repair, "done": self.done, "error": self.error}


@attrs.define
class AuditReport:
    """``findings`` as scanned (before any repair); ``repairs`` done (``repair=True``) or
    planned (dry run). ``problems`` / ``repaired`` are the same as human lines."""

    jobs_checked: int = 0
    findings: list[Finding] = attrs.Factory(list)
    repairs: list[Repair] = attrs.Factory(list)
    dry_run: bool = True

    @property
    def problems(self) -> list[str]:
        """One line per finding, saying what the repair does (or that it has none)."""
        return [f"{f.message} [repair: {f.repair}]" if f.repair
                else f"{f.message} [no safe repair]" for f in self.findings]

    @property
    def repaired(self) -> list[str]:
        return [r.message for r in self.repairs if r.done]

    @property
    def remaining(self) -> list[Finding]:
        """Findings not repaired by this run."""
        done = {id(r.finding) for r in self.repairs if r.done}
        return [f for f in self.findings if id(f) not in done]

    @property
    def ok(self) -> bool:
        return not self.remaining


def _who(f: Finding) -> str:
    return f"job {f.job_id}" if f.job_id is not None else f.path


def _job_id(name: str) -> int | None:
    match = _JOB_FOLDER.match(name)
    return int(match.group(1)) if match else None


#: SHA-256s already computed in this process, by file identity and change times (a file
#: rewritten, even with its mtime put back, has a new ctime), so that looking at the
#: admin page again does not read the whole storage root again.
_HASHES: dict[tuple[int, int, int, int, int], str] = {}
_MAX_HASHES = 200_000


def _sha256(path: Path) -> str | None:
    """The file's SHA-256 (hex), or None when it cannot be read."""
    try:
        with path.open("rb") as handle:
            info = os.fstat(handle.fileno())
            key = (info.st_dev, info.st_ino, info.st_size, info.st_mtime_ns, info.st_ctime_ns)
            known = _HASHES.get(key)
            if known is not None:
                return known
            digest = hashlib.sha256()
            for chunk in iter(lambda: handle.read(1 << 20), b""):
                digest.update(chunk)
    except OSError:
        return None
    if len(_HASHES) >= _MAX_HASHES:
        _HASHES.clear()
    _HASHES[key] = digest.hexdigest()
    return _HASHES[key]


def _good(path: Path, sha256: str) -> bool:
    return path.is_file() and not path.is_symlink() and _sha256(path) == sha256


def _unsaved_submission(folder: Path, job_id: int) -> bool:
    """``folder`` is as a submission leaves it before its commit: in ``Uploaded/``, with
    a ``metadata.json`` of that job in Uploaded, or with none yet (killed between moving
    the model in and writing it: only plain files there, no sub-folder)."""
    if folder.parent.name != JobStatus.UPLOADED.folder:
        return False
    metadata = folder / METADATA_NAME
    if not metadata.exists() and not metadata.is_symlink():
        try:
            return all(item.is_file() and not item.is_symlink() for item in folder.iterdir())
        except OSError:
            return False
    try:
        data = json.loads(metadata.read_text("utf-8"))
    except (OSError, ValueError):
        return False
    return (isinstance(data, dict) and data.get("job_id") == job_id
            and data.get("status") == JobStatus.UPLOADED.value)


def _age(path: Path) -> float:
    try:
        return time.time() - path.lstat().st_mtime
    except OSError:
        return 0.0


def _contents(folder: Path) -> dict[str, str | None]:
    """Regular files of a job folder (not metadata.json, not temporary): name → SHA-256."""
    try:
        entries = list(folder.iterdir())
    except OSError:
        return {}
    return {e.name: _sha256(e) for e in entries
            if e.name != METADATA_NAME and not _TEMP.match(e.name)}


class _Audit:
    def __init__(self, store: LocalFileStore, uow: Callable[[], RequestsUnitOfWork],
                 settle_seconds: float) -> None:
        self.store = store
        self.uow = uow
        self.settle = settle_seconds
        self.root = store.root

    def rel(self, path: Path) -> str:
        return path.relative_to(self.root).as_posix()

    # --- scan ---------------------------------------------------------------------

    def scan(self, report: AuditReport) -> None:
        folders: dict[int, list[Path]] = {}
        for status in JobStatus:
            base = self.root / status.folder
            if not base.is_dir():
                continue
            for child in sorted(base.iterdir()):
                if _TEMP.match(child.name):
                    self.leftover(report, child, "a temporary copy of a job's folder",
                                  _job_id(child.name[1:].split(".")[0]))
                    continue
                if child.name.startswith(".") or not child.is_dir() or child.is_symlink():
                    continue  # .DS_Store and the like; files are not job folders
                match = _JOB_FOLDER.match(child.name)
                if match is None:
                    report.findings.append(Finding(
                        "orphan_folder", None, self.rel(child),
                        f"{self.rel(child)} is not named like a job's folder; move it out "
                        "of the storage root by hand."))
                    continue
                folders.setdefault(int(match.group(1)), []).append(child)
                for item in child.iterdir():
                    if _TEMP.match(item.name):
                        self.leftover(report, item, "a temporary metadata.json",
                                      int(match.group(1)))
        staging = self.store.staging_dir
        if staging.is_dir():
            for item in sorted(staging.iterdir()):
                self.leftover(report, item, "a partial upload")
        seen: set[int] = set()
        for job in self.jobs():
            assert job.id is not None
            seen.add(job.id)
            report.jobs_checked += 1
            self.check_job(report, job, folders.get(job.id, []))
        newest = max(seen, default=0)
        for job_id, paths in sorted(folders.items()):
            if job_id not in seen:
                self.orphans(report, job_id, paths, newest)

    def jobs(self) -> list[Job]:
        found: list[Job] = []
        with self.uow() as work:
            for status in JobStatus:
                if status is JobStatus.DELETED:
                    continue
                offset = 0
                while True:
                    page = work.jobs.list(status.value, limit=_PAGE, offset=offset)
                    found.extend(page)
                    if len(page) < _PAGE:
                        break
                    offset += _PAGE
        return sorted(found, key=lambda j: j.id or 0)

    def leftover(self, report: AuditReport, path: Path, what: str,
                 job_id: int | None = None) -> None:
        age = _age(path)
        if age < self.settle:
            return  # may be an upload or a move in progress
        report.findings.append(Finding(
            "staging_leftover", job_id, self.rel(path),
            f"{self.rel(path)}: {what} left {int(age // 60)} minutes ago by an interrupted "
            "upload or move", repair=f"remove {self.rel(path)}"))

    def orphans(self, report: AuditReport, job_id: int, paths: list[Path],
                newest: int) -> None:
        with self.uow() as work:
            history = work.events.for_subject("job", job_id)
        ends = [e for e in history if e.kind in ("delete", "archived", "pruned")]
        if not history and job_id < newest:
            unsaved = [p for p in paths if _unsaved_submission(p, job_id)]
            for path in unsaved:
                self.leftover(report, path, "the folder of a submission that was never "
                              "saved (no such job, no history, a later job saved)", job_id)
            paths = [p for p in paths if p not in unsaved]
        if not ends:
            why = ("no such job in the database (left by an interrupted submission, or put "
                   "there by hand); check it and move it out by hand")
        elif ends[-1].kind == "delete":
            why = ("the job was deleted (its history says so) and this folder was left by "
                   "the interrupted delete; remove it by hand once you have checked it")
        else:
            archive = ends[-1].details.get("archive")
            why = (f"the job was {ends[-1].kind} by retention"
                   + (f" (its files are in the archive {archive})" if archive else "")
                   + " and this folder was left by the interrupted run; remove it by hand "
                   "once you have checked it")
        for path in paths:
            report.findings.append(Finding("orphan_folder", job_id, self.rel(path),
                                           f"job {job_id}: folder {self.rel(path)}: {why}"))

    def check_job(self, report: AuditReport, job: Job, paths: list[Path]) -> None:
        assert job.id is not None
        expected = self.store.folder(job)
        where = self.rel(expected)
        others = [p for p in paths if p != expected]
        v = job.version
        if not expected.is_dir():
            self.misplaced(report, job, others)
            return
        for f in job.files:
            if _good(expected / f.stored_name, f.sha256):
                continue
            kind = ("missing_authoritative_file" if f.stored_name == job.authoritative_file
                    else "missing_file")
            state = "missing from" if not (expected / f.stored_name).exists() else (
                "different (SHA-256) in")
            source = next((p for p in others if _good(p / f.stored_name, f.sha256)), None)
            path = f"{where}/{f.stored_name}"
            if source is None:
                todo = ("upload the sliced file again (or restore it from a backup) before "
                        "printing" if kind == "missing_authoritative_file"
                        else "restore it from a backup")
                report.findings.append(Finding(
                    kind, job.id, path, f"job {job.id}: {f.stored_name} is {state} {where} "
                    f"and no intact copy is left in storage; {todo}", version=v))
            else:
                report.findings.append(Finding(
                    kind, job.id, path, f"job {job.id}: {f.stored_name} is {state} {where}; "
                    f"an intact copy is in {self.rel(source)}",
                    repair=f"copy {f.stored_name} from {self.rel(source)} into {where}",
                    target=path, version=v, source=f"{self.rel(source)}/{f.stored_name}"))
        for other in others:
            if _age(other) < self.settle:
                continue  # a move's new copy, about to be committed
            report.findings.append(Finding(
                "stale_duplicate", job.id, self.rel(other),
                f"job {job.id}: a leftover copy in {self.rel(other)} (it is {job.status}, "
                f"its folder is {where})", repair=f"remove {self.rel(other)}", version=v))
        if not self.metadata_agrees(job, expected):
            report.findings.append(Finding(
                "metadata_mismatch", job.id, f"{where}/{METADATA_NAME}",
                f"job {job.id}: {where}/{METADATA_NAME} differs from the database",
                repair=f"rewrite {where}/{METADATA_NAME} from the database", version=v))

    def misplaced(self, report: AuditReport, job: Job, others: list[Path]) -> None:
        assert job.id is not None
        where = self.rel(self.store.folder(job))
        if not others:
            report.findings.append(Finding(
                "missing_folder", job.id, where,
                f"job {job.id} ({job.status}) has no folder in storage ({where}); restore "
                "its files from a backup, or delete the job if it is not wanted",
                repair=f"create {where} with its metadata.json" if not job.files else None,
                version=job.version))
            return
        complete = [p for p in others
                    if all(_good(p / f.stored_name, f.sha256) for f in job.files)]
        if complete:
            best = max(complete, key=lambda p: (p.lstat().st_mtime, p.name))
            report.findings.append(Finding(
                "folder_state_mismatch", job.id, self.rel(best),
                f"job {job.id} is {job.status} but its folder is in {self.rel(best)}, "
                f"not {where}", repair=f"move {self.rel(best)} to {where}", target=where,
                version=job.version))
            for other in others:
                if other != best and _age(other) >= self.settle:
                    report.findings.append(Finding(
                        "stale_duplicate", job.id, self.rel(other),
                        f"job {job.id}: a leftover copy in {self.rel(other)} (it is "
                        f"{job.status}, its folder belongs in {where})",
                        repair=f"remove {self.rel(other)}", version=job.version))
            return
        for other in others:
            report.findings.append(Finding(
                "folder_state_mismatch", job.id, self.rel(other),
                f"job {job.id} is {job.status} but its only folder(s) are elsewhere "
                f"({self.rel(other)}) and miss recorded files; restore them from a backup "
                f"into {where}", target=where, version=job.version))

    def metadata_agrees(self, job: Job, folder: Path) -> bool:
        try:
            stored = json.loads((folder / METADATA_NAME).read_text("utf-8"))
        except (OSError, ValueError):
            return False
        wanted = json.loads(json.dumps(self.store.metadata_for(job, job.status)))
        if not isinstance(stored, dict):
            return False
        return all(stored.get(key) == value for key, value in wanted.items()
                   if key not in _VOLATILE) and set(stored) == set(wanted)

    # --- repair -------------------------------------------------------------------

    def current(self, f: Finding) -> Job | None:
        """The job again, or None when it changed (or went) since the scan."""
        assert f.job_id is not None
        try:
            with self.uow() as work:
                job = work.jobs.get(f.job_id)
        except NotFoundError:
            return None
        return job if job.version == f.version else None

    def apply(self, f: Finding) -> str | None:
        """Do ``f``'s repair; returns why it was skipped, or None when done."""
        if f.kind == "staging_leftover":
            path = self.root / f.path
            if _age(path) < self.settle:
                return "it was touched since the scan; run the audit again later"
            if f.job_id is not None and _JOB_FOLDER.match(path.name) and self.saved(f.job_id):
                return "the job is in the database now; run the audit again"
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink(missing_ok=True)
            return None
        job = self.current(f)
        if job is None:
            return "the job changed since the scan; run the audit again"
        expected = self.store.folder(job)
        if f.kind == "folder_state_mismatch":
            return self.move(job, self.root / f.path, expected)
        if f.kind in ("missing_file", "missing_authoritative_file"):
            assert f.source is not None and f.target is not None
            return self.restore_file(job, self.root / f.source, self.root / f.target)
        if f.kind == "stale_duplicate":
            return self.remove_duplicate(job, self.root / f.path, expected)
        if f.kind == "metadata_mismatch" or (f.kind == "missing_folder" and not job.files):
            self.store.write_metadata(job)
            return None
        return "no safe repair"  # pragma: no cover - only repairable findings get here

    def saved(self, job_id: int) -> bool:
        """The job has a row or a history."""
        with self.uow() as work:
            try:
                work.jobs.get(job_id)
                return True
            except NotFoundError:
                return bool(work.events.for_subject("job", job_id))

    def complete(self, job: Job, folder: Path) -> bool:
        return folder.is_dir() and all(_good(folder / f.stored_name, f.sha256)
                                       for f in job.files)

    def move(self, job: Job, source: Path, target: Path) -> str | None:
        if target.exists():
            return f"{self.rel(target)} appeared since the scan; run the audit again"
        if not self.complete(job, source):
            return f"{self.rel(source)} is no longer complete; run the audit again"
        temp = target.parent / f".{target.name}.{uuid.uuid4().hex}.tmp"
        shutil.copytree(source, temp, copy_function=shutil.copy2)
        os.rename(temp, target)
        self.store.write_metadata(job)
        shutil.rmtree(source, ignore_errors=True)
        return None

    def restore_file(self, job: Job, source: Path, target: Path) -> str | None:
        stored = job.file(target.name)
        if stored is None or not _good(source, stored.sha256):
            return f"{self.rel(source)} is no longer intact; run the audit again"
        temp = target.parent / f".{target.name}.{uuid.uuid4().hex}.tmp"
        shutil.copy2(source, temp)
        os.replace(temp, target)
        return None

    def remove_duplicate(self, job: Job, copy: Path, expected: Path) -> str | None:
        if copy == expected:
            return "it is the job's folder now; run the audit again"
        if _age(copy) < self.settle:
            return "it was touched since the scan; run the audit again later"
        if not self.complete(job, expected):
            return f"{self.rel(expected)} is not complete; repair it first"
        kept = _contents(expected)
        extra = sorted(name for name, digest in _contents(copy).items()
                       if name not in _REMADE and (digest is None or kept.get(name) != digest))
        if extra:
            return (f"it holds files that are not in {self.rel(expected)} "
                    f"({', '.join(extra[:5])}); move what you need there, then remove it "
                    "by hand")
        shutil.rmtree(copy, ignore_errors=True)
        return None

    def record(self, f: Finding, actor: Actor, at: datetime) -> None:
        details = {"finding": f.kind, "path": f.path, "target": f.target,
                   "action": f.repair}
        with self.uow() as work:
            job_id = f.job_id
            if job_id is not None and f.kind == "staging_leftover":
                try:
                    work.jobs.get(job_id)
                except NotFoundError:
                    job_id = None  # a temporary copy of a job that is not there
            event = (Event("job", job_id, "audit_repaired", actor, at, details=details)
                     if job_id is not None
                     else lab_event("audit_repaired", actor, at, **details))
            work.events.append(event)
            work.commit()


def audit_storage(
    store: LocalFileStore,
    uow: Callable[[], RequestsUnitOfWork],
    repair: bool = False,
    *,
    actor: Actor | None = None,
    clock: Clock | None = None,
    settle_seconds: float = SETTLE_SECONDS,
) -> AuditReport:
    """Compare every job folder under the storage root with the database.

    Without ``repair`` nothing is changed: ``report.repairs`` lists what each safe repair
    would do (``done`` False). With ``repair`` the safe repairs are done in the order of
    :data:`KINDS`, each recorded as an ``audit_repaired`` event by ``actor`` (default
    :func:`command_line_actor`) at ``clock.now()`` (UTC); a repair that finds the job
    changed since the scan is skipped with the reason in ``error``. ``settle_seconds``:
    see the module docstring (0 only when no printcore process is running on the store).
    Raises StorageError when the database cannot be reached; OSError from the folders.
    """
    audit = _Audit(store, uow, settle_seconds)
    report = AuditReport(dry_run=not repair)
    audit.scan(report)
    order = {kind: n for n, kind in enumerate(KINDS)}
    report.findings.sort(key=lambda f: (order[f.kind], f.job_id or 0, f.path))
    who = actor or command_line_actor()
    for finding in report.findings:
        if not finding.repairable:
            continue
        if not repair:
            report.repairs.append(Repair(finding, done=False))
            continue
        skipped = audit.apply(finding)
        if skipped is None:
            audit.record(finding, who, clock.now() if clock else datetime.now(UTC))
        report.repairs.append(Repair(finding, done=skipped is None, error=skipped))
    return report
