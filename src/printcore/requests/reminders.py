"""Reminder emails before a confirmation link expires.

A pending job's confirmation link works until ``Job.confirmation_expires_at`` (UTC). When
that moment is at most the lead time away (``PrintRequests.reminder_lead``, e.g. 48
hours), the student gets one ``confirmation_reminder`` email with the same, still valid
link, its quote and its expiry. A job gets one reminder per link: a resend makes a new
link (a new nonce), which may be reminded of again. A link that has already expired gets
no reminder (the student must ask the lab to resend it, as the status page says).

Each reminder is one unit of work: the job's ``reminder_nonce``/``reminder_sent_at`` are
set (the version check makes a concurrent second run lose and send nothing), one
``confirmation_reminder`` event is appended (actor: system ``reminders``), and the email
is added to the outbox in the same transaction.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

from printcore.errors import ConcurrentChangeError, NotFoundError
from printcore.events import Actor, Event
from printcore.outbox import OutboxMessage
from printcore.ports import Notice
from printcore.requests.job import Job, JobStatus
from printcore.requests.ports import RequestsUnitOfWork

__all__ = ["REMINDER_ACTOR", "REMINDER_KIND", "is_due", "send_due_reminders"]

#: The email's kind (templates ``confirmation_reminder.*``) and the event's kind.
REMINDER_KIND = "confirmation_reminder"
#: Who the history says sent it.
REMINDER_ACTOR = Actor.system("reminders")


def is_due(job: Job, now: datetime, lead: timedelta) -> bool:
    """Whether ``job`` should get a reminder at ``now`` (UTC) with lead time ``lead``.

    True when the job is pending, its link still works (``now`` is before the expiry, or
    exactly at it) but expires within ``lead`` (``expires_at - now <= lead``, so exactly
    at the lead time counts), and this link has had no reminder yet. A ``lead`` of zero
    or less turns reminders off (always False).
    """
    expires = job.confirmation_expires_at
    return (
        lead > timedelta(0)
        and job.status == JobStatus.PENDING.value
        and job.confirmation_nonce is not None
        and expires is not None
        and now <= expires <= now + lead
        and not job.reminded
    )


def send_due_reminders(
    uow: Callable[[], RequestsUnitOfWork],
    link_notice: Callable[[Job, str, datetime], Notice],
    now: datetime,
    lead: timedelta,
    limit: int = 500,
) -> list[int]:
    """Send every reminder due at ``now`` (UTC) with lead time ``lead``; returns the ids of
    the jobs reminded, soonest expiry first (at most ``limit``). ``link_notice(job, nonce,
    expires_at)`` is the approval email carrying that link (``PrintRequests``'s own), whose
    context the reminder reuses: the same link, the quote, the expiry.

    Idempotent: a job already reminded for its current link is skipped, and of two runs
    at once (two processes) exactly one sends each reminder; the other's version check
    fails and it moves on. Raises StorageError when the database cannot be reached.
    """
    if lead <= timedelta(0):
        return []
    with uow() as work:
        candidates = work.jobs.due_for_reminder(now, now + lead, limit)
    return [job_id for job_id in candidates if _remind(uow, link_notice, job_id, now, lead)]


def _remind(
    uow: Callable[[], RequestsUnitOfWork],
    link_notice: Callable[[Job, str, datetime], Notice],
    job_id: int,
    now: datetime,
    lead: timedelta,
) -> bool:
    """One job's reminder in its own unit of work; False when it is no longer due (it was
    confirmed, resent, deleted or reminded by someone else in the meantime)."""
    try:
        with uow() as work:
            job = work.jobs.get(job_id)
            if not is_due(job, now, lead):
                return False
            nonce, expires = job.confirmation_nonce, job.confirmation_expires_at
            assert nonce is not None and expires is not None  # is_due checked both
            job.reminder_nonce = nonce
            job.reminder_sent_at = now
            job.updated_at = now
            work.jobs.update(job)
            work.events.append(Event(
                "job", job_id, REMINDER_KIND, REMINDER_ACTOR, now,
                details={"expires_at": expires.isoformat(),
                         "hours_left": round((expires - now).total_seconds() / 3600, 1)},
            ))
            link = link_notice(job, nonce, expires)  # the same, still valid link
            notice = Notice(REMINDER_KIND, link.to, link.job_id, link.context)
            work.outbox.add(OutboxMessage.email(notice, now))
            work.commit()
    except (ConcurrentChangeError, NotFoundError):
        return False
    return True
