"""A range of whole local days in the lab's zone, shared by the reports and the exports.

``first`` to ``last`` inclusive, in the IANA zone ``timezone`` (``PRINTCORE_TIMEZONE``,
e.g. ``America/Chicago``); its UTC bounds are ``[local midnight starting first, local
midnight after last)``, so a day across a DST change is 23 or 25 hours long.

:meth:`DateRange.parse` reads the query texts ``from``/``to`` (``YYYY-MM-DD``). The
reports (:mod:`printcore.requests.analytics`) give ``today`` so a missing end has a
default and cap ranges at 366 days; the payments export
(:mod:`printcore.requests.payments_report`) requires both ends and accepts ten years.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import attrs

from printcore.errors import ValidationError

__all__ = ["DEFAULT_DAYS", "MAX_RANGE_DAYS", "DateRange", "Week"]

#: The longest range of a report, in days (both ends included).
MAX_RANGE_DAYS = 366
#: A range with no ``from`` given covers this many days ending ``to``.
DEFAULT_DAYS = 30
_LAST_YEAR = 9998
_ISO_DAY = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


def _form(max_days: int) -> str:
    return (f"YYYY-MM-DD (for example 2026-09-01), from on or before to, "
            f"at most {max_days} days")


@attrs.frozen
class Week:
    """One ISO week (Monday to Sunday, ``label`` like ``2026-W41``) as far as it lies in
    a range: ``first``/``last`` are clipped to the range's own ends."""

    label: str
    first: date
    last: date


@attrs.frozen
class DateRange:
    """Local days ``first``..``last`` (inclusive) in the IANA zone ``timezone``."""

    first: date
    last: date
    timezone: str

    @classmethod
    def parse(cls, first: str | None, last: str | None, timezone: str,
              today: date | None = None, *, max_days: int = MAX_RANGE_DAYS,
              min_year: int = 1970) -> DateRange:
        """From query text ``YYYY-MM-DD``. With ``today``, a missing ``to`` is today and a
        missing ``from`` is :data:`DEFAULT_DAYS` days before ``to``; without it both are
        required. Raises ValidationError with per-field messages (fields ``from``/``to``,
        each naming the accepted form) for a missing or unparseable date (digits 0-9
        only), a year outside ``min_year``..9998, ``from`` after ``to``, or a range
        longer than ``max_days`` days."""
        form = _form(max_days)
        fields: dict[str, str] = {}
        parsed: dict[str, date] = {}
        for name, raw in (("from", first), ("to", last)):
            text = (raw or "").strip()
            if not text:
                if today is None:
                    fields[name] = f"Required: {form}."
                continue
            try:
                if _ISO_DAY.fullmatch(text) is None:
                    raise ValueError(text)
                parsed[name] = date.fromisoformat(text)
            except ValueError:
                fields[name] = f"Not a date: use {form}."
                continue
            if not min_year <= parsed[name].year <= _LAST_YEAR:
                fields[name] = f"The year must be {min_year} to {_LAST_YEAR}; use {form}."
        if fields:
            raise ValidationError(" ".join(f"'{name}': {text}" for name, text in fields.items()),
                                  fields)
        end = parsed.get("to", today)
        assert end is not None
        start = parsed.get("from", end - timedelta(days=DEFAULT_DAYS - 1))
        if start > end:
            raise ValidationError(f"The range is reversed: from ({start}) is after to ({end}); use {form}.",
                                  {"from": f"Must be on or before to ({end}).",
                                   "to": f"Must be on or after from ({start}); YYYY-MM-DD."})
        if (end - start).days + 1 > max_days:
            raise ValidationError(f"The range is too long: use {form}.",
                                  {"to": f"At most {max_days} days after from; "
                                         "ask for it in parts."})
        return cls(start, end, timezone)

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @property
    def start(self) -> datetime:
        """The first day's local midnight, in UTC."""
        return datetime.combine(self.first, time(), self.zone).astimezone(UTC)

    @property
    def end(self) -> datetime:
        """The local midnight after the last day, in UTC (exclusive)."""
        return datetime.combine(self.last + timedelta(days=1), time(), self.zone).astimezone(UTC)

    def utc_bounds(self) -> tuple[datetime, datetime]:
        """``(start, end)`` in UTC, end excluded."""
        return self.start, self.end

    @property
    def hours(self) -> float:
        """The range's length in hours (a DST change makes a day 23 or 25 hours)."""
        return (self.end - self.start).total_seconds() / 3600

    @property
    def file_stem(self) -> str:
        """``payments-2026-11-01-to-2026-11-30``."""
        return f"payments-{self.first.isoformat()}-to-{self.last.isoformat()}"

    def days(self) -> list[date]:
        return [self.first + timedelta(days=n) for n in range((self.last - self.first).days + 1)]

    def day_of(self, moment: datetime) -> date:
        """The local day of a UTC moment."""
        return moment.astimezone(self.zone).date()

    def weeks(self) -> list[Week]:
        """The ISO weeks the range touches, oldest first, clipped to the range."""
        found: dict[str, Week] = {}
        for day in self.days():
            year, week, _ = day.isocalendar()
            label = f"{year}-W{week:02d}"
            seen = found.get(label)
            found[label] = Week(label, seen.first if seen else day, day)
        return list(found.values())

    @staticmethod
    def week_of(day: date) -> str:
        """``2026-W41``: the ISO week label of a local day."""
        year, week, _ = day.isocalendar()
        return f"{year}-W{week:02d}"
