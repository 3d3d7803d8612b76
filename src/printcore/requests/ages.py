"""How long a job has waited in its current state, and whether that is long.

A job's *age in its state* runs from the moment it entered its current status (the
newest event that moved it there, see ``JobRepository.entered_status_at``; its
``created_at`` when none is stored) to now. The dashboard colours a card by it:

* ``fresh``: under ``amber_hours``;
* ``amber``: ``amber_hours`` or more, under ``red_hours``;
* ``red``: ``red_hours`` or more;
* ``none``: a state where nothing is awaited (Rejected, Paid and picked up): never coloured.

Boundaries belong to the later level: exactly 24 h with ``amber_hours=24`` is amber.
Times are UTC; thresholds hours.
"""

from __future__ import annotations

import math
from datetime import datetime

import attrs

from printcore.errors import ValidationError
from printcore.requests.job import JobStatus

__all__ = ["AGING_STATUSES", "AgeThresholds", "StateAge", "age_short", "age_words"]

#: The states in which a job waits for someone (staff or the student), so its age matters.
AGING_STATUSES: frozenset[str] = frozenset({
    JobStatus.UPLOADED.value, JobStatus.PENDING.value, JobStatus.READY_TO_PRINT.value,
    JobStatus.PRINTING.value, JobStatus.COMPLETED.value,
})


def _check(instance: AgeThresholds, _attribute: object, _value: object) -> None:
    for name in ("amber_hours", "red_hours"):
        value = getattr(instance, name)
        if isinstance(value, bool) or not isinstance(value, int | float) \
                or not math.isfinite(value) or value <= 0:
            raise ValidationError(f"{name} must be a positive number of hours, not {value!r}.",
                                  {name: "Enter a positive number of hours."})
    if instance.amber_hours >= instance.red_hours:
        raise ValidationError(
            f"amber_hours ({instance.amber_hours:g}) must be less than red_hours "
            f"({instance.red_hours:g}).", {"amber_hours": "Make it less than red_hours."})


@attrs.frozen
class AgeThresholds:
    """When a waiting job turns amber and red, in hours in its state (0 < amber < red,
    finite). Raises ValidationError otherwise."""

    amber_hours: float = attrs.field(default=24.0, validator=_check)
    red_hours: float = attrs.field(default=72.0, validator=_check)

    def level(self, status: str, seconds: float) -> str:
        """``fresh``, ``amber``, ``red`` for a job ``seconds`` in ``status``; ``none`` for a
        state where nothing is awaited."""
        if status not in AGING_STATUSES:
            return "none"
        hours = seconds / 3600
        if hours >= self.red_hours:
            return "red"
        if hours >= self.amber_hours:
            return "amber"
        return "fresh"


def age_words(seconds: float) -> str:
    """A duration in words, the two largest units: ``3 days``, ``1 day 4 hours``,
    ``2 hours 5 minutes``, ``7 minutes``, ``under a minute`` (negative counts as 0)."""
    whole = max(int(seconds), 0)
    days, rest = divmod(whole, 86400)
    hours, rest = divmod(rest, 3600)
    minutes = rest // 60

    def unit(n: int, word: str) -> str:
        return f"{n} {word}" if n == 1 else f"{n} {word}s"

    if days:
        return unit(days, "day") + (f" {unit(hours, 'hour')}" if hours else "")
    if hours:
        return unit(hours, "hour") + (f" {unit(minutes, 'minute')}" if minutes else "")
    return unit(minutes, "minute") if minutes else "under a minute"


def age_short(seconds: float) -> str:
    """The same duration for a small space: ``3d 4h``, ``2h 5m``, ``7m``, ``<1m``."""
    whole = max(int(seconds), 0)
    days, rest = divmod(whole, 86400)
    hours, rest = divmod(rest, 3600)
    minutes = rest // 60
    if days:
        return f"{days}d {hours}h"
    if hours:
        return f"{hours}h {minutes}m"
    return f"{minutes}m" if minutes else "<1m"


@attrs.frozen
class StateAge:
    """A job's age in its state: ``status``, ``since`` (UTC, when it entered it),
    ``seconds`` in it, and ``level`` (see :meth:`AgeThresholds.level`)."""

    status: str
    since: datetime
    seconds: float
    level: str

    @property
    def short(self) -> str:
        """``3d 4h`` (see :func:`age_short`)."""
        return age_short(self.seconds)

    @property
    def words(self) -> str:
        """``in Uploaded for 3 days``."""
        return f"in {JobStatus(self.status).label} for {age_words(self.seconds)}"

    @classmethod
    def of(cls, status: str, since: datetime, now: datetime,
           thresholds: AgeThresholds) -> StateAge:
        seconds = max((now - since).total_seconds(), 0.0)
        return cls(status, since, seconds, thresholds.level(status, seconds))
