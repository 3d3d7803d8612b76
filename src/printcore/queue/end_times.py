"""When a print ended, as a member types it (``/close … finished_at:``,
``printcore queue close … --finished-at``): a wall-clock time in the lab's zone.

Accepted forms, surrounding spaces ignored::

    23:10      23.10     9:05pm    9pm        the latest such time at or before now
    yesterday 23:10                           that time on the day before today
    2026-12-01 23:10    2026-12-01T23:10      that date and time (lab zone)
    2026-12-01T23:10Z   2026-12-01T23:10-06:00    an ISO time with its own zone

A time of day without a date is the latest one at or before ``now``: "23:10" typed at
09:00 is last night. A wall-clock time that does not exist (skipped by a DST change) is
refused; one that happens twice is taken at its first occurrence.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from printcore.errors import ValidationError

__all__ = ["END_TIME_HELP", "parse_end_time"]

END_TIME_HELP = ("Give the time it ended as the lab's clock showed it, like 23:10, 9:05pm, "
                 "yesterday 23:10 or 2026-12-01 23:10.")

_CLOCK = re.compile(r"^(?P<h>\d{1,2})(?:[:.](?P<m>\d{2}))?\s*(?P<ampm>am|pm)?$", re.I)
_DATED = re.compile(r"^(?P<d>\d{4}-\d{2}-\d{2})[ T](?P<t>.+)$")


def _refuse(field: str, problem: str) -> ValidationError:
    message = f"{problem} {END_TIME_HELP}"
    return ValidationError(message, {field: message}, reason="bad_end_time")


def _clock(text: str, field: str) -> time:
    found = _CLOCK.match(text.strip())
    if found is None:
        raise _refuse(field, f"{text.strip()!r} is not a time of day.")
    hour, minute = int(found["h"]), int(found["m"] or 0)
    ampm = (found["ampm"] or "").lower()
    if ampm:
        if not 1 <= hour <= 12:
            raise _refuse(field, f"{text.strip()!r}: with am/pm the hour is 1 to 12.")
        hour = hour % 12 + (12 if ampm == "pm" else 0)
    elif found["m"] is None:
        raise _refuse(field, f"{text.strip()!r} needs minutes (23:00) or am/pm (11pm).")
    if hour > 23 or minute > 59:
        raise _refuse(field, f"{text.strip()!r} is not a time of day.")
    return time(hour, minute)


def _local(day: date, at: time, zone: ZoneInfo, field: str) -> datetime:
    moment = datetime.combine(day, at, tzinfo=zone)
    # A time skipped by the spring-forward change does not survive a round trip.
    if moment.astimezone(UTC).astimezone(zone).replace(tzinfo=None) != moment.replace(
            tzinfo=None):
        raise _refuse(field, f"{at:%H:%M} did not happen on {day} (the clocks changed).")
    return moment.replace(fold=0).astimezone(UTC)


def parse_end_time(text: str, now: datetime, timezone: str,
                   field: str = "finished_at") -> datetime:
    """The moment (UTC) ``text`` names, read in ``timezone`` (IANA) relative to ``now``
    (aware). Raises ValidationError (reason ``bad_end_time``, ``fields`` names
    ``field``) for anything else; whether it lies between the print's start and now is
    the service's check."""
    zone = ZoneInfo(timezone)
    raw = " ".join(text.split())
    if not raw:
        raise _refuse(field, "The end time is empty.")
    today = now.astimezone(zone).date()
    lowered = raw.lower()
    if lowered.startswith("yesterday "):
        return _local(today - timedelta(days=1), _clock(raw[10:], field), zone, field)
    if lowered.startswith("today "):
        return _local(today, _clock(raw[6:], field), zone, field)
    if re.match(r"^\d{4}-\d{2}-\d{2}", raw):
        try:
            iso = datetime.fromisoformat(raw.replace("Z", "+00:00").replace("z", "+00:00"))
        except ValueError:
            iso = None
        if iso is not None and iso.tzinfo is not None:
            return iso.astimezone(UTC)
        dated = _DATED.match(raw)
        if dated is None:
            raise _refuse(field, f"{raw!r} needs a time after the date.")
        try:
            day = date.fromisoformat(dated["d"])
        except ValueError:
            raise _refuse(field, f"{dated['d']!r} is not a date.") from None
        return _local(day, _clock(dated["t"], field), zone, field)
    at = _clock(raw, field)
    moment = _local(today, at, zone, field)
    if moment > now:
        moment = _local(today - timedelta(days=1), at, zone, field)
    return moment
