"""Retention: archive or prune print requests that finished long ago (issue 13).

A job qualifies when it is in a final state (``rejected`` or ``paid_picked_up``) and its
**last state change** (the newest event that moved it into its current status; the row's
``updated_at``/``created_at`` when there is none) is older than ``older_than_days`` whole
days of 24 h before now (UTC). Anything else about a job (staff notes, a reviewed mark)
does not make it younger.

A run is planned first (:meth:`Retention.preview`: counts, bytes of the jobs' folders, the
ids), then applied (:meth:`Retention.apply`):

1. archive mode: the :class:`RetentionArchiver` writes one zip for the run and verifies
   it (reopened, every SHA-256 checked) *before* anything is removed; if it cannot,
   StorageError is raised and nothing is removed;
2. the :class:`RetentionStore` removes, in one transaction, the rows of the planned jobs
   that are still final at the planned version (a job changed meanwhile is *skipped*),
   their outbox rows (delivered or given up long ago; kept in the archive), and appends a
   tombstone event per removed job (subject ``job``, kind ``archived`` or ``pruned``,
   details ``archive``: the zip's file name or None) and one lab event
   ``retention_applied`` (who, counts, bytes, ids, archive);
3. the :class:`RetentionFiles` removes the removed jobs' folders (one that cannot be
   removed is named in the result, not raised: the rows are gone by then). A crash
   before that leaves orphan folders that ``printcore storage check`` reports.

The job's own events stay in the event log (the log is append-only; reports of lead
times keep working); its payments go with its row, so payment exports of pruned periods
need the archive's ``job.json``.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Collection, Sequence
from datetime import datetime, timedelta
from typing import Any, Protocol

import attrs

from printcore.errors import StorageError, ValidationError
from printcore.events import Actor, Event
from printcore.lab_events import lab_event
from printcore.ports import Clock
from printcore.requests.job import Job, JobStatus

__all__ = [
    "FINAL_STATES", "MAX_DAYS", "JobRecord", "PlannedJob", "Retention", "RetentionArchiver",
    "RetentionFiles", "RetentionMode", "RetentionPlan", "RetentionResult", "RetentionStore",
    "StoredCandidate", "WrittenArchive", "parse_days", "plan_retention",
]

#: The states a job never leaves on its own; only these are ever removed.
FINAL_STATES = frozenset({JobStatus.REJECTED.value, JobStatus.PAID_PICKED_UP.value})
#: The largest ``older_than_days`` accepted (100 years).
MAX_DAYS = 36_500
DAYS_FIELD = "older_than_days"


class RetentionMode(str, enum.Enum):
    """``archive``: a verified zip first, then removal; ``prune``: removal without a zip."""

    ARCHIVE = "archive"
    PRUNE = "prune"

    @property
    def tombstone(self) -> str:
        """The kind of the event each removed job keeps: ``archived`` or ``pruned``."""
        return "archived" if self is RetentionMode.ARCHIVE else "pruned"


def parse_days(raw: object) -> int:
    """``raw`` (an int or decimal text) as a whole number of days, 1..MAX_DAYS. Raises
    ValidationError (field ``older_than_days``) otherwise."""
    text = str(raw).strip() if raw is not None else ""
    if isinstance(raw, bool) or not text.isdigit() or not text.isascii():
        raise ValidationError(
            "Give the age as a whole number of days, for example 365.",
            {DAYS_FIELD: "A whole number of days (1 to 36500)."})
    days = int(text)
    if not 1 <= days <= MAX_DAYS:
        raise ValidationError(
            f"The age must be between 1 and {MAX_DAYS} days; {days} is not.",
            {DAYS_FIELD: "A whole number of days (1 to 36500)."})
    return days


@attrs.frozen
class StoredCandidate:
    """A final job as the store sees it: the entity and its last state change (UTC)."""

    job: Job
    last_change_at: datetime


@attrs.frozen
class PlannedJob:
    """One job of a plan: ``bytes`` and ``files`` count what its storage folder holds."""

    job_id: int
    status: str
    version: int
    last_change_at: datetime
    bytes: int
    files: int


@attrs.frozen
class RetentionPlan:
    """What a run would remove: ``cutoff`` = ``now`` − ``older_than_days`` (UTC); jobs
    whose last state change is before ``cutoff``, oldest first."""

    older_than_days: int
    now: datetime
    cutoff: datetime
    jobs: tuple[PlannedJob, ...]

    @property
    def count(self) -> int:
        return len(self.jobs)

    @property
    def bytes(self) -> int:
        """Bytes of all the planned jobs' folders."""
        return sum(j.bytes for j in self.jobs)

    @property
    def job_ids(self) -> list[int]:
        return [j.job_id for j in self.jobs]

    def counts(self) -> dict[str, int]:
        """``{"rejected": n, "paid_picked_up": m}`` (both always present)."""
        found = {state: 0 for state in sorted(FINAL_STATES)}
        for j in self.jobs:
            found[j.status] += 1
        return found

    def bytes_by_status(self) -> dict[str, int]:
        found = {state: 0 for state in sorted(FINAL_STATES)}
        for j in self.jobs:
            found[j.status] += j.bytes
        return found


@attrs.frozen
class JobRecord:
    """Everything archived for one job: the entity (for its folder), its row, its events
    and its outbox rows as JSON-ready dicts (datetimes as ISO 8601 UTC text)."""

    job: Job
    row: dict[str, Any]
    events: list[dict[str, Any]]
    outbox: list[dict[str, Any]]


@attrs.frozen
class WrittenArchive:
    """A verified zip: ``name`` (the file name, kept in the tombstones), ``path``,
    ``bytes`` (its size), ``entries`` (members besides the manifest), ``sha256`` (of the
    whole file)."""

    name: str
    path: str
    bytes: int
    entries: int
    sha256: str


@attrs.frozen
class RetentionResult:
    """An applied run: ``removed`` and ``skipped`` (changed meanwhile) job ids,
    ``bytes_removed`` (folders of the removed jobs), ``archive`` (None when pruning or
    when nothing qualified), ``folders_left``: removed jobs whose folder could not be
    deleted (``errors`` says why; the storage audit reports them as orphans)."""

    mode: RetentionMode
    plan: RetentionPlan
    removed: tuple[int, ...]
    skipped: tuple[int, ...]
    bytes_removed: int
    archive: WrittenArchive | None
    folders_left: tuple[int, ...] = ()
    errors: tuple[str, ...] = ()


class RetentionStore(Protocol):
    def candidates(self, cutoff: datetime) -> list[StoredCandidate]:
        """Final jobs whose last state change is before ``cutoff`` (UTC), oldest first."""
        ...

    def records(self, planned: Sequence[PlannedJob]) -> list[JobRecord]:
        """Snapshots of the planned jobs still final at their planned version (others are
        left out: they changed since the plan)."""
        ...

    def remove(self, planned: Sequence[PlannedJob], tombstone: Callable[[Job], Event],
               summary: Callable[[list[int], list[int]], Event]) -> tuple[list[int], list[int]]:
        """In one transaction: delete each job row still final at its planned version
        with its outbox rows, append ``tombstone(job)`` for each, then ``summary(removed,
        skipped)``; commit. Returns (removed ids, skipped ids). Raises StorageError (then
        nothing was removed)."""
        ...


class RetentionFiles(Protocol):
    def measure(self, job: Job) -> tuple[int, int]:
        """(bytes, files) in the job's storage folder; (0, 0) when it has none."""
        ...

    def remove(self, job: Job) -> None:
        """Remove the job's storage folder (nothing when it is gone already)."""
        ...


class RetentionArchiver(Protocol):
    def write(self, records: Sequence[JobRecord], manifest: dict[str, Any]) -> WrittenArchive:
        """Write one zip of ``records`` (files, metadata.json, events, row, outbox) with
        ``manifest`` plus a SHA-256 per entry, reopen it and check every entry. Raises
        StorageError when it cannot be written or does not verify (nothing left behind)."""
        ...


def plan_retention(candidates: Sequence[StoredCandidate], measure: Callable[[Job], tuple[int, int]],
                   older_than_days: int, now: datetime) -> RetentionPlan:
    """The plan for ``candidates`` (re-checked here: final and older than the cutoff)."""
    cutoff = now - timedelta(days=older_than_days)
    jobs = []
    for c in sorted(candidates, key=lambda c: (c.last_change_at, c.job.id or 0)):
        job = c.job
        if job.id is None or job.status not in FINAL_STATES or not c.last_change_at < cutoff:
            continue
        size, files = measure(job)
        jobs.append(PlannedJob(job.id, job.status, job.version, c.last_change_at, size, files))
    return RetentionPlan(older_than_days, now, cutoff, tuple(jobs))


@attrs.define
class Retention:
    """The retention service. ``archiver`` is needed only for archive runs;
    ``active_staff`` (the active staff names) checks a staff actor's name when given."""

    store: RetentionStore
    files: RetentionFiles
    clock: Clock
    archiver: RetentionArchiver | None = None
    active_staff: Callable[[], Collection[str]] | None = None

    def preview(self, older_than_days: object) -> RetentionPlan:
        """The plan for ``older_than_days`` (see :func:`parse_days`; ValidationError)."""
        days = parse_days(older_than_days)
        now = self.clock.now()
        cutoff = now - timedelta(days=days)
        return plan_retention(self.store.candidates(cutoff), self.files.measure, days, now)

    def apply(self, older_than_days: object, mode: RetentionMode, actor: Actor) -> RetentionResult:
        """Archive (or prune) the jobs of a fresh plan; see the module docstring. Raises
        ValidationError for a bad age or a missing staff name, StorageError when the
        archive cannot be written or verified (nothing removed then)."""
        if not actor.name.strip():
            raise ValidationError("Choose your staff name before applying retention.",
                                  {"staff_name": "Who is applying retention?"})
        if (actor.kind == "staff" and self.active_staff is not None
                and actor.name not in self.active_staff()):
            raise ValidationError(
                f"Choose your name from the staff list: {actor.name!r} is not active staff.",
                {"staff_name": "Choose your name from the staff list."})
        plan = self.preview(older_than_days)
        archive: WrittenArchive | None = None
        records: list[JobRecord] = []
        if plan.jobs and mode is RetentionMode.ARCHIVE:
            if self.archiver is None:
                raise StorageError("No archive folder is set up; give one, or prune.")
            records = self.store.records(plan.jobs)
            archive = self.archiver.write(records, {
                "older_than_days": plan.older_than_days, "cutoff": plan.cutoff.isoformat(),
                "created_at": plan.now.isoformat(), "created_by": actor.name,
                "job_ids": [r.job.id for r in records]})
        planned = plan.jobs
        if archive is not None:  # only what the zip holds may be removed
            kept = {r.job.id for r in records}
            planned = tuple(j for j in plan.jobs if j.job_id in kept)
        name = archive.name if archive is not None else None
        at = self.clock.now()
        sizes = {j.job_id: j.bytes for j in plan.jobs}
        removed_jobs: dict[int, Job] = {}

        def tombstone(job: Job) -> Event:
            assert job.id is not None
            removed_jobs[job.id] = job
            return Event("job", job.id, mode.tombstone, actor, at,
                         {"archive": name, "older_than_days": plan.older_than_days,
                          "last_status": job.status, "bytes": sizes.get(job.id, 0)})

        skipped_before = [j.job_id for j in plan.jobs if j not in planned]

        def summary(removed: list[int], skipped: list[int]) -> Event:
            skipped = skipped_before + skipped
            gone = [j for j in plan.jobs if j.job_id in set(removed)]
            return lab_event("retention_applied", actor, at, mode=mode.value,
                             older_than_days=plan.older_than_days,
                             cutoff=plan.cutoff.isoformat(), archive=name,
                             removed=len(removed), skipped=len(skipped),
                             rejected=sum(1 for j in gone if j.status == "rejected"),
                             paid_picked_up=sum(1 for j in gone
                                                if j.status == "paid_picked_up"),
                             bytes=sum(j.bytes for j in gone),
                             job_ids=removed, skipped_ids=skipped)

        # Always through the store, so even a run that finds nothing is recorded.
        removed, skipped = self.store.remove(planned, tombstone, summary)
        left: list[int] = []
        errors: list[str] = []
        for job_id in removed:  # the rows are gone: a folder that resists is reported
            try:
                self.files.remove(removed_jobs[job_id])
            except StorageError as err:
                left.append(job_id)
                errors.append(err.message)
        return RetentionResult(mode, plan, tuple(removed), tuple(skipped_before + skipped),
                               sum(sizes[i] for i in removed if i not in left), archive,
                               tuple(left), tuple(errors))
