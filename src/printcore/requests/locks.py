"""Soft locks on jobs: "Ana at Front desk is approving this job".

Opening an action dialog on a job's page takes the job's lock for a short while (the
``ttl``, 120 s by default), kept alive by a heartbeat while the dialog stays open, so the
other workstation sees who is at it before starting the same work. A lock is advice, not
a guard: every action still runs whoever holds the lock, and the optimistic version check
(:class:`~printcore.errors.ConcurrentChangeError`) stays what stops two approvals.

The rules (:func:`decide`), for a staff member at a workstation asking for a job's lock:

* free, or the lock has expired → theirs (``taken``: one ``lock`` event);
* held by the same staff member at the same workstation → ``refreshed`` (the heartbeat:
  the expiry moves, no event) — or ``taken`` again when they switch to another action
  (a ``lock`` event, so the other page learns the new verb);
* held by anyone else → :class:`LockHeldError` naming the holder, unless ``take_over``
  is asked for deliberately (``taken_over``: one ``lock_taken_over`` event recording
  whom it was taken from).

Releasing (``unlock`` event) is for the holder only; a lock that has expired is gone for
everyone (releasing it is a no-op). Releasing while someone else holds a live lock
raises :class:`LockHeldError` ("… holds it, not you").

One lock per job; the storage swaps it atomically (:class:`JobLockRepository.swap` in
:mod:`printcore.requests.ports`), so of two workstations taking a free lock at once
exactly one gets it and the other is told who did.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime, timedelta
from types import TracebackType
from typing import Any, Literal, Protocol

import attrs

from printcore.errors import ConcurrentChangeError, ValidationError
from printcore.events import Actor, Event
from printcore.ports import Clock, EventLog, StaffRepository

__all__ = [
    "DEFAULT_TTL",
    "LOCK_ACTIONS",
    "JobLock",
    "JobLocks",
    "LockHeldError",
    "LockOutcome",
    "decide",
]

#: How long a lock lasts without a heartbeat (``PRINTCORE_LOCK_SECONDS``).
DEFAULT_TTL = timedelta(seconds=120)

#: Action name → how the banner says it ("Ana at Front desk is *approving* this job").
#: The names are the lifecycle's events plus ``edit`` (the request's details), ``notes``
#: and ``work`` (anything else; the default).
LOCK_ACTIONS: Mapping[str, str] = {
    "approve": "approving",
    "reject": "rejecting",
    "force_confirm": "confirming",
    "start_print": "starting",
    "fail_print": "recording a failed print of",
    "complete": "completing",
    "pick_up": "recording the payment for",
    "revert_completion": "undoing the completion of",
    "revert_pickup": "undoing the pickup of",
    "resend_confirmation": "resending the confirmation of",
    "requote": "correcting the quote of",
    "delete": "deleting",
    "edit": "editing",
    "notes": "writing notes on",
    "work": "working on",
}

LockOutcome = Literal["taken", "refreshed", "taken_over"]


@attrs.frozen
class JobLock:
    """Who holds a job's soft lock: ``staff_name`` at ``workstation``, doing ``action``
    (a key of :data:`LOCK_ACTIONS`), since ``taken_at`` until ``expires_at`` (both UTC).
    ``version`` counts the writes of this lock row (1 on take), for the atomic swap."""

    job_id: int
    staff_name: str
    workstation: str
    action: str
    taken_at: datetime
    expires_at: datetime
    version: int = 1

    def live(self, now: datetime) -> bool:
        """True until ``expires_at`` (exclusive)."""
        return now < self.expires_at

    def held_by(self, staff_name: str, workstation: str) -> bool:
        return self.staff_name == staff_name and self.workstation == workstation

    @property
    def doing(self) -> str:
        """The verb phrase, e.g. ``approving``."""
        return LOCK_ACTIONS.get(self.action, LOCK_ACTIONS["work"])

    def describe(self) -> str:
        """``Ana at Front desk is approving this job (until 16:42 UTC)``."""
        until = self.expires_at.astimezone(UTC)
        return (f"{self.staff_name} at {self.workstation} is {self.doing} this job "
                f"(until {until:%H:%M} UTC)")


class LockHeldError(ConcurrentChangeError):
    """Someone else holds the job's live lock (HTTP 409); ``lock`` is theirs."""

    code = "lock_held"

    def __init__(self, lock: JobLock, message: str | None = None) -> None:
        self.lock = lock
        super().__init__(lock.job_id, message or (
            f"{lock.describe()}. Wait for them to finish, or take over deliberately."))


def check_action(action: str) -> str:
    """The action name, or ValidationError (field ``action``) for an unknown one."""
    if action not in LOCK_ACTIONS:
        raise ValidationError(
            f"Unknown lock action {action[:40]!r}.",
            {"action": "Use one of: " + ", ".join(LOCK_ACTIONS)},
        )
    return action


def decide(
    current: JobLock | None,
    now: datetime,
    job_id: int,
    staff_name: str,
    workstation: str,
    action: str,
    ttl: timedelta,
    take_over: bool = False,
) -> tuple[JobLock, LockOutcome]:
    """The lock after ``staff_name`` at ``workstation`` asks for job ``job_id``'s lock
    for ``action`` at ``now`` (UTC), and what happened (see the module's rules).

    Raises LockHeldError when someone else holds ``current`` live and ``take_over`` is
    False. Pure: stores nothing.
    """
    expires = now + ttl
    version = current.version + 1 if current is not None else 1
    if current is None or not current.live(now):
        return JobLock(job_id, staff_name, workstation, action, now, expires, version), "taken"
    if current.held_by(staff_name, workstation):
        if current.action == action:
            return attrs.evolve(current, expires_at=expires, version=version), "refreshed"
        return JobLock(job_id, staff_name, workstation, action, now, expires, version), "taken"
    if not take_over:
        raise LockHeldError(current)
    return (JobLock(job_id, staff_name, workstation, action, now, expires, version),
            "taken_over")


def lock_details(lock: JobLock) -> dict[str, Any]:
    """The event details of a lock: action, expires_at (UTC ISO)."""
    return {"action": lock.action, "expires_at": lock.expires_at.isoformat()}


class _Jobs(Protocol):
    def get(self, job_id: int) -> object: ...


class _Locks(Protocol):  # printcore.requests.ports.JobLockRepository
    def get(self, job_id: int) -> JobLock | None: ...

    def swap(self, job_id: int, expected: JobLock | None, new: JobLock | None) -> bool: ...

    def for_jobs(self, job_ids: list[int]) -> dict[int, JobLock]: ...


class LocksUnitOfWork(Protocol):
    """What the lock use cases need of ``printcore.requests.ports.RequestsUnitOfWork``
    (stated here, so that this module does not import the ports that import it)."""

    @property
    def jobs(self) -> _Jobs: ...

    @property
    def locks(self) -> _Locks: ...

    @property
    def events(self) -> EventLog: ...

    @property
    def staff(self) -> StaffRepository: ...

    def __enter__(self) -> LocksUnitOfWork: ...

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None: ...

    def commit(self) -> None: ...


@attrs.define
class JobLocks:
    """The lock use cases over a unit of work factory (one transaction each).

    ``ttl`` is how long a lock lives without a heartbeat. Staff actors must be on the
    active staff list and name their workstation. Errors: NotFoundError (no such job),
    ValidationError (not active staff, no workstation, unknown action), LockHeldError.
    """

    uow: Callable[[], LocksUnitOfWork]
    clock: Clock
    ttl: timedelta = DEFAULT_TTL

    #: Tries of a take or release that lost an atomic swap to a concurrent one (each
    #: loss means another take succeeded meanwhile, so n workstations need at most n).
    ATTEMPTS = 10

    def take(
        self, job_id: int, actor: Actor, action: str = "work", take_over: bool = False
    ) -> tuple[JobLock, LockOutcome]:
        """Take, refresh (heartbeat) or deliberately take over job ``job_id``'s lock.

        Returns the lock now held and the outcome (``taken``, ``refreshed``,
        ``taken_over``). Appends a ``lock`` (or ``lock_taken_over``, details with the
        previous holder) event, except for a heartbeat. Raises LockHeldError when someone
        else holds it and ``take_over`` is False; see the class for the others.
        """
        check_action(action)
        workstation = self._check_actor(actor)
        for _ in range(self.ATTEMPTS):
            now = self.clock.now()
            with self.uow() as uow:
                self._require_staff(uow, actor)
                uow.jobs.get(job_id)
                current = uow.locks.get(job_id)
                lock, outcome = decide(current, now, job_id, actor.name, workstation,
                                       action, self.ttl, take_over)
                if not uow.locks.swap(job_id, current, lock):
                    continue  # someone swapped it first: decide again on theirs
                if outcome != "refreshed":
                    details = lock_details(lock)
                    if outcome == "taken_over" and current is not None:
                        details["previous"] = {"staff_name": current.staff_name,
                                               "workstation": current.workstation,
                                               "action": current.action}
                    kind = "lock_taken_over" if outcome == "taken_over" else "lock"
                    uow.events.append(Event("job", job_id, kind, actor, now, details=details))
                try:
                    uow.commit()
                except ConcurrentChangeError:
                    continue
                return lock, outcome
        raise ConcurrentChangeError(job_id, f"Job {job_id}'s lock kept changing; try again.")

    def release(self, job_id: int, actor: Actor) -> JobLock | None:
        """Give job ``job_id``'s lock back; returns the released lock, or None when there
        was no live lock (nothing to do: an expired one is removed quietly). Appends one
        ``unlock`` event when a live lock was released. Raises LockHeldError when someone
        else holds a live lock (release is for the holder; they can still take over)."""
        workstation = self._check_actor(actor)
        for _ in range(self.ATTEMPTS):
            now = self.clock.now()
            with self.uow() as uow:
                self._require_staff(uow, actor)
                uow.jobs.get(job_id)
                current = uow.locks.get(job_id)
                if current is None:
                    return None
                live = current.live(now)
                if live and not current.held_by(actor.name, workstation):
                    raise LockHeldError(current, (
                        f"{current.describe()}; the lock is theirs, not yours, so you "
                        "cannot release it. Take over deliberately if you must."))
                if not uow.locks.swap(job_id, current, None):
                    continue
                if live:
                    uow.events.append(Event("job", job_id, "unlock", actor, now,
                                            details={"action": current.action}))
                try:
                    uow.commit()
                except ConcurrentChangeError:
                    continue
                return current if live else None
        raise ConcurrentChangeError(job_id, f"Job {job_id}'s lock kept changing; try again.")

    def current(self, job_id: int) -> JobLock | None:
        """Job ``job_id``'s live lock, or None (none, or expired). Unknown jobs: None."""
        now = self.clock.now()
        with self.uow() as uow:
            lock = uow.locks.get(job_id)
        return lock if lock is not None and lock.live(now) else None

    def live_for(self, job_ids: Iterable[int]) -> dict[int, JobLock]:
        """The live locks of the given jobs, by job id (jobs without one are left out)."""
        wanted = sorted(set(job_ids))
        if not wanted:
            return {}
        now = self.clock.now()
        with self.uow() as uow:
            found = uow.locks.for_jobs(wanted)
        return {job_id: lock for job_id, lock in found.items() if lock.live(now)}

    @staticmethod
    def _check_actor(actor: Actor) -> str:
        if not actor.workstation:
            raise ValidationError("A lock needs the workstation it is taken at.",
                                  {"workstation": "Required."})
        return actor.workstation

    @staticmethod
    def _require_staff(uow: LocksUnitOfWork, actor: Actor) -> None:
        member = uow.staff.get(actor.name) if actor.kind == "staff" else None
        if member is None or not member.active:
            raise ValidationError(
                f"{actor.name!r} is not on the active staff list.",
                {"staff_name": "Choose your name from the staff list."},
            )
