"""What the student's status page says beyond the job's fields: where the job is in the
print line, and until when its confirmation link works, in plain words."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from printcore.requests.job import Job, JobStatus
from printcore.requests.service import PrintRequests

__all__ = ["line_sentence", "relative_time", "status_facts"]


def relative_time(moment: datetime, now: datetime) -> str:
    """``in 2 days``, ``in 5 hours``, ``in 20 minutes``, ``in less than a minute``, or
    ``2 days ago`` and so on for a moment past (both UTC-aware). Days from 36 hours on
    and hours from 90 minutes on are rounded to the nearest (a fresh 7-day link says
    ``in 7 days``); minutes are rounded down. The page shows the exact time beside it."""
    seconds = (moment - now).total_seconds()
    future = seconds >= 0
    seconds = abs(seconds)
    if seconds >= 36 * 3600:
        count, unit = round(seconds / 86400), "day"
    elif seconds >= 90 * 60:
        count, unit = round(seconds / 3600), "hour"
    elif seconds >= 60:
        count, unit = int(seconds // 60), "minute"
    else:
        return "in less than a minute" if future else "just now"
    words = f"{count} {unit}{'s' if count != 1 else ''}"
    return f"in {words}" if future else f"{words} ago"


def line_sentence(ahead: int) -> str:
    """The place in the print line as a sentence, from how many jobs are ahead."""
    if ahead <= 0:
        return "Your print is next in line: no other confirmed job is waiting ahead of it."
    if ahead == 1:
        return "1 confirmed job is waiting to be printed ahead of yours."
    return f"{ahead} confirmed jobs are waiting to be printed ahead of yours."


def status_facts(requests: PrintRequests, job: Job) -> dict[str, Any]:
    """Context for ``student/status.html``: ``ahead`` (int, ready_to_print only, else
    None) and ``line_sentence``; for a pending job ``link_expires_at`` (UTC),
    ``link_expires_in`` (``in 2 days``) and ``link_expired`` (bool), all measured on the
    service's clock. Raises StorageError when the database cannot be reached."""
    now = requests.clock.now()
    facts: dict[str, Any] = {"ahead": None, "line_sentence": None, "link_expires_at": None,
                             "link_expires_in": None, "link_expired": False}
    if job.status == JobStatus.READY_TO_PRINT.value:
        ahead = requests.place_in_line(job)
        if ahead is not None:
            facts.update(ahead=ahead, line_sentence=line_sentence(ahead))
    elif job.status == JobStatus.PENDING.value and job.confirmation_expires_at is not None:
        expires = job.confirmation_expires_at
        facts.update(link_expires_at=expires, link_expires_in=relative_time(expires, now),
                     link_expired=now > expires)
    return facts
