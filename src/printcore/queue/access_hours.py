"""The lab's access hours: weekly windows of wall-clock time in the lab's time zone.

Written like ``mon-fri 08:00-22:00; sat 10:00-16:00`` (see ``AccessHours.parse``). All
instants in and out are timezone-aware datetimes; results are in UTC.

How wall-clock windows meet clock changes (zone rules from ``zoneinfo``): each window of
each local day becomes one stretch of real time, from its opening to its closing time,
and each of those times is the first instant at which the lab's clock reads it or later:

- a time the clock skips (02:30 on the night clocks go forward) is the moment the clock
  jumps past it: ``02:30-04:00`` opens at 03:00 that night, ``02:00-03:00`` does not
  open at all, and ``20:00-02:00`` closes when the clock jumps to 03:00;
- a time the clock shows twice (01:30 on the night clocks go back) is its first showing:
  ``01:30-03:00`` then lasts two and a half hours of real time, and ``01:00-01:30`` is
  not open again when the clock repeats that half hour.

Lookups bisect a cached, sorted list of those stretches in UTC microseconds, built a few
weeks at a time, so each call costs a bisection, not a walk over the calendar.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import NoReturn
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import attrs

from printcore.errors import ValidationError
from printcore.queue.access_timeline import EPOCH, ONE_US, US, Timeline, Windows, to_us

__all__ = ["DAYS", "EXAMPLE", "AccessHours"]

#: A spec to show people who wrote a bad one.
EXAMPLE = "mon-fri 08:00-22:00; sat 10:00-16:00"
#: Day names as ``describe()`` writes them, Monday first.
DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")

_DAY = 1440  # minutes
_WEEK = 7 * _DAY
_FULL_NAMES = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
_DAY_NUMBERS = {name: i for names in (DAYS, _FULL_NAMES) for i, name in enumerate(names)}
_DAY_GROUPS = {"daily": range(7), "weekdays": range(5), "weekends": range(5, 7)}
_WINDOW = re.compile(r"([0-9]{1,2}):([0-9]{2})\s*-\s*([0-9]{1,2}):([0-9]{2})", re.ASCII)
_DASHES = str.maketrans({"\u2013": "-", "\u2014": "-", "\u2212": "-"})
_MAX_SPEC = 2000  # characters


def _normalized(windows: Iterable[tuple[int, int]]) -> Windows:
    """Sorted, merged ``[start, end)`` minutes from Monday 00:00 local; ValueError if invalid."""
    merged: list[tuple[int, int]] = []
    for start, end in sorted(windows):
        if not 0 <= start < end <= _WEEK:
            raise ValueError(f"window {(start, end)} is not inside one week of minutes")
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    if not merged:
        raise ValueError("access hours need at least one window")
    return tuple(merged)


@attrs.frozen
class AccessHours:
    """When members may use the lab, as weekly windows in ``timezone`` (an IANA name).

    ``windows`` are ``[start, end)`` minutes from Monday 00:00 local time, sorted and
    merged (a window crossing Sunday midnight is two: one ending at 10080, one from 0).
    Build it with ``AccessHours.parse(spec, timezone)`` or ``AccessHours.always()``.
    Equal access hours have equal windows and time zone, whatever spec they came from.
    """

    windows: Windows = attrs.field(converter=_normalized)
    timezone: str = "UTC"
    _timeline: Timeline | None = attrs.field(init=False, eq=False, repr=False)

    def __attrs_post_init__(self) -> None:
        zone = _zone(self.timezone)
        always = self.windows == ((0, _WEEK),)
        object.__setattr__(self, "_timeline", None if always else Timeline(zone, self.windows))

    # --- building ----------------------------------------------------------------------

    @classmethod
    def always(cls, timezone: str = "UTC") -> AccessHours:
        """A lab that never closes."""
        return cls(((0, _WEEK),), timezone)

    @classmethod
    def parse(cls, spec: str, timezone: str, field: str = "access_hours") -> AccessHours:
        """Access hours from a spec such as ``mon-fri 08:00-22:00; sat 10:00-16:00``.

        Clauses are separated by ``;`` or new lines; each is days then windows:

        - days: ``mon`` … ``sun`` (or full names), ranges ``mon-fri`` (``fri-mon`` wraps),
          lists ``mon,wed``, and ``daily``, ``weekdays``, ``weekends``;
        - windows: ``HH:MM-HH:MM`` from 00:00 to 24:00, several separated by commas
          (``mon 08:00-12:00, 13:00-17:00``); an end before the start continues into the
          next day (``fri 20:00-02:00`` runs until Saturday 02:00).

        ``always`` (or ``daily 00:00-24:00``) is a lab that never closes. Overlapping
        windows are merged. Case and spaces do not matter.

        Raises ValidationError naming the bad part (``fields``: ``{field: message}``, or
        ``{"timezone": message}`` for an unknown time zone).
        """
        _zone(timezone)
        if not isinstance(spec, str):
            _refuse(field, "they must be text")
        text = spec.strip().lower().translate(_DASHES)
        if len(text) > _MAX_SPEC:
            _refuse(field, f"they are longer than {_MAX_SPEC} characters")
        windows: list[tuple[int, int]] = []
        for clause in re.split(r"[;\n]", text):
            part = " ".join(clause.split())
            if part in {"always", "24/7"}:
                windows.append((0, _WEEK))
            elif part:
                windows.extend(_clause_windows(part, field))
        if not windows:
            _refuse(field, "they are empty")
        return cls(tuple(windows), timezone)

    # --- looking -----------------------------------------------------------------------

    @property
    def is_always(self) -> bool:
        """True for a lab that never closes."""
        return self._timeline is None

    def is_open(self, at: datetime) -> bool:
        """Whether the lab is open at ``at`` (windows include their opening, not closing)."""
        t = to_us(at)
        return self._timeline is None or self._timeline.is_open(t)

    def next_opening(self, at: datetime) -> datetime:
        """``at`` (in UTC) when the lab is open then, else the next moment it opens."""
        t = to_us(at)
        if self._timeline is None:
            return at.astimezone(UTC)
        opens = self._timeline.next_opening(t)
        return at.astimezone(UTC) if opens == t else EPOCH + ONE_US * opens

    def next_closing(self, at: datetime) -> datetime | None:
        """When the open stretch holding ``at`` ends, or, when closed at ``at``, the end
        of the next one; None for a lab that never closes."""
        t = to_us(at)
        if self._timeline is None:
            return None
        return EPOCH + ONE_US * self._timeline.next_closing(t)

    def open_seconds_between(self, start: datetime, end: datetime) -> float:
        """Seconds of open time from ``start`` to ``end``; 0.0 when ``end`` <= ``start``."""
        s, e = to_us(start), to_us(end)
        if e <= s:
            return 0.0
        if self._timeline is None:
            return (e - s) / US
        return self._timeline.open_between(s, e) / US

    def add_open_time(self, start: datetime, duration: timedelta) -> datetime:
        """The first moment (UTC) by which ``duration`` of open time has passed since
        ``start``, skipping closed hours: a window of open time that starts at ``start``
        ends there. It may be a closing moment; ``start`` itself for a zero duration.

        Raises ValueError for a negative duration.
        """
        s = to_us(start)
        d = duration // ONE_US
        if d < 0:
            raise ValueError(f"duration must not be negative, got {duration}")
        if self._timeline is None or d == 0:
            return start.astimezone(UTC) + duration
        return EPOCH + ONE_US * self._timeline.add_open(s, d)

    # --- the same on POSIX timestamps, for simulations (no datetime objects: faster) ----

    def is_open_ts(self, ts: float) -> bool:
        """``is_open`` for ``ts`` seconds since 1970-01-01 UTC."""
        return self._timeline is None or self._timeline.is_open(round(ts * US))

    def next_opening_ts(self, ts: float) -> float:
        """``next_opening`` on POSIX timestamps (seconds since 1970-01-01 UTC)."""
        if self._timeline is None:
            return ts
        t = round(ts * US)
        opens = self._timeline.next_opening(t)
        return ts if opens == t else opens / US

    def add_open_seconds(self, ts: float, seconds: float) -> float:
        """``add_open_time`` on POSIX timestamps: the timestamp by which ``seconds`` of
        open time have passed since ``ts``. Raises ValueError for negative ``seconds``."""
        if seconds < 0:
            raise ValueError(f"seconds must not be negative, got {seconds}")
        d = round(seconds * US)
        if self._timeline is None or d == 0:
            return ts + seconds
        return self._timeline.add_open(round(ts * US), d) / US

    def schedule_ts(self, ts: float, seconds: float) -> tuple[float, float]:
        """When something needing ``seconds`` of open time, ready at ``ts``, starts and
        ends: ``(next_opening_ts(ts), add_open_seconds(next_opening_ts(ts), seconds))``
        in one lookup, for ETA simulations. Raises ValueError for negative ``seconds``."""
        if seconds < 0:
            raise ValueError(f"seconds must not be negative, got {seconds}")
        if self._timeline is None:
            return ts, ts + seconds
        t = round(ts * US)
        start, end = self._timeline.schedule(t, round(seconds * US))
        return (ts if start == t else start / US), end / US

    # --- showing -----------------------------------------------------------------------

    def describe(self) -> str:
        """The hours as a spec, e.g. ``mon-fri 08:00-22:00; sat 10:00-16:00`` or
        ``always``; ``AccessHours.parse(describe(), timezone)`` gives them back."""
        if self._timeline is None:
            return "always"
        stretches = list(self.windows)
        if len(stretches) > 1 and stretches[0][0] == 0 and stretches[-1][1] == _WEEK:
            first = stretches.pop(0)  # Sunday night into Monday: show it as one window
            stretches.append((stretches.pop()[0], _WEEK + first[1]))
        per_day: dict[int, list[str]] = {}
        for start, end in stretches:
            while start < end:
                day, clock = divmod(start, _DAY)
                day_end = (day + 1) * _DAY
                if end <= day_end or (clock and end - day_end < clock):
                    shown_end = end - day * _DAY if end <= day_end else end - day_end
                    per_day.setdefault(day % 7, []).append(_window_text(clock, shown_end))
                    break
                per_day.setdefault(day % 7, []).append(_window_text(clock, _DAY))
                start = day_end
        groups: dict[str, list[int]] = {}
        for day in sorted(per_day):
            groups.setdefault(", ".join(per_day[day]), []).append(day)
        return "; ".join(f"{_days_text(days)} {hours}" for hours, days in groups.items())

    def __str__(self) -> str:
        return f"{self.describe()} ({self.timezone})"


# --- reading and writing specs ------------------------------------------------------------


def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError, TypeError):
        message = (
            f"Unknown time zone {name!r}; use an IANA name such as 'America/Chicago', "
            "'Europe/Berlin' or 'UTC'."
        )
        raise ValidationError(message, {"timezone": message}) from None


def _refuse(field: str, problem: str) -> NoReturn:
    message = (
        f"Cannot read the access hours: {problem}. Write them like '{EXAMPLE}' "
        "(or 'always'), in the lab's local time."
    )
    raise ValidationError(message, {field: message})


def _clause_windows(part: str, field: str) -> list[tuple[int, int]]:
    """Weekly windows of one clause such as ``mon-fri 08:00-12:00, 13:00-17:00``."""
    digit = re.search(r"[0-9]", part)
    if digit is None:
        _refuse(field, f"{part!r} has no hours (add them like 'mon-fri 08:00-22:00')")
    days_text, hours_text = part[: digit.start()].strip(), part[digit.start() :]
    if not days_text:
        _refuse(field, f"{part!r} names no days (start it with them, like 'mon-fri')")
    days = _days(days_text, part, field)
    windows: list[tuple[int, int]] = []
    for text in hours_text.split(","):
        start, end = _window(text.strip(), part, field)
        for day in days:
            opens, closes = day * _DAY + start, day * _DAY + end
            if closes <= _WEEK:
                windows.append((opens, closes))
            else:  # Sunday night into Monday morning
                windows += ((opens, _WEEK), (0, closes - _WEEK))
    return windows


def _days(text: str, part: str, field: str) -> list[int]:
    days: list[int] = []
    for item in (piece.strip() for piece in text.split(",")):
        first, dash, last = (side.strip() for side in item.partition("-"))
        if item in _DAY_GROUPS:
            days += _DAY_GROUPS[item]
        elif dash and first in _DAY_NUMBERS and last in _DAY_NUMBERS:
            a, b = _DAY_NUMBERS[first], _DAY_NUMBERS[last]
            days += ((a + k) % 7 for k in range((b - a) % 7 + 1))
        elif item in _DAY_NUMBERS:
            days.append(_DAY_NUMBERS[item])
        else:
            _refuse(
                field,
                f"{item!r} in {part!r} is not a day (use mon, tue, wed, thu, fri, sat, sun, "
                "a range like mon-fri, or daily, weekdays, weekends)",
            )
    return days


def _window(text: str, part: str, field: str) -> tuple[int, int]:
    """``[start, end)`` minutes from the day's midnight; ``end`` > 1440 past midnight."""
    match = _WINDOW.fullmatch(text)
    if match is None:
        _refuse(field, f"{text!r} in {part!r} is not a time window (write HH:MM-HH:MM)")
    h1, m1, h2, m2 = (int(group) for group in match.groups())
    if h1 > 23 or m1 > 59 or m2 > 59 or h2 > 24 or (h2 == 24 and m2):
        _refuse(field, f"{text!r} in {part!r} has a time outside 00:00-24:00")
    start, end = h1 * 60 + m1, h2 * 60 + m2
    if start == end:
        _refuse(field, f"{text!r} in {part!r} is empty (for a whole day write 00:00-24:00)")
    return (start, end) if end > start else (start, end + _DAY)


def _window_text(start: int, end: int) -> str:
    return f"{start // 60:02d}:{start % 60:02d}-{end // 60:02d}:{end % 60:02d}"


def _days_text(days: list[int]) -> str:
    if len(days) == 7:
        return "daily"
    runs: list[list[int]] = []
    for day in days:
        if runs and day == runs[-1][-1] + 1:
            runs[-1].append(day)
        else:
            runs.append([day])
    return ",".join(
        DAYS[run[0]] if len(run) == 1 else f"{DAYS[run[0]]}-{DAYS[run[-1]]}" for run in runs
    )
