"""Print-time estimates as members type them (``/join job est_time``), and back for replies.

Accepted forms, case-insensitive, surrounding spaces ignored::

    90m   45 min   2 hours   1.5h   1h30m   1h 30m   2d 3h      number + unit(s)
    2:15                                                       hours:minutes
    150                                                        a plain whole number = minutes

Units: ``d``/``day``/``days``, ``h``/``hr``/``hrs``/``hour``/``hours``,
``m``/``min``/``mins``/``minute``/``minutes``; each unit at most once, largest first.
The result is rounded (half up) to whole minutes and must lie between 1 minute and 7 days.
A plain number with a decimal point (``1.5``) is refused rather than guessed: it is
ambiguous between hours and minutes.
"""

from __future__ import annotations

import re
from datetime import timedelta
from fractions import Fraction
from typing import NoReturn

from printcore.errors import ValidationError

__all__ = [
    "DURATION_HELP",
    "MAX_DURATION",
    "MIN_DURATION",
    "format_duration",
    "parse_duration",
]

MIN_DURATION = timedelta(minutes=1)
MAX_DURATION = timedelta(days=7)

#: What every refusal ends with: the forms we accept and the allowed range.
DURATION_HELP = (
    "Use a duration like 90m, 1h30m, 1h 30m, 2:15, 150 (minutes) or 1.5h; "
    "between 1 minute and 7 days."
)

#: Longest text we try to read; anything longer is not a duration someone typed.
_MAX_TEXT = 40

_MINUTES_PER_UNIT = {"d": 1440, "h": 60, "m": 1}
_UNIT_NAMES = {
    "d": "d",
    "day": "d",
    "days": "d",
    "h": "h",
    "hr": "h",
    "hrs": "h",
    "hour": "h",
    "hours": "h",
    "m": "m",
    "min": "m",
    "mins": "m",
    "minute": "m",
    "minutes": "m",
}
_NUMBER = r"(?:[0-9]+(?:\.[0-9]+)?|\.[0-9]+)"
_COMPONENT = re.compile(rf"\s*({_NUMBER})\s*([a-z]+)", re.ASCII)
_PLAIN_MINUTES = re.compile(r"[0-9]+", re.ASCII)
_PLAIN_DECIMAL = re.compile(_NUMBER, re.ASCII)
_CLOCK = re.compile(r"([0-9]+):([0-5][0-9])", re.ASCII)


def parse_duration(text: str, field: str = "est_time") -> timedelta:
    """The duration ``text`` names, in whole minutes (see the module docstring for forms).

    Raises ValidationError (``fields`` = ``{field: message}``) for text we cannot read,
    and for zero, negative, or over-7-day durations; the message lists the accepted forms.
    """
    if not isinstance(text, str):
        _refuse(field, "Enter the duration as text.")
    cleaned = text.strip().lower()
    shown = cleaned if len(cleaned) <= _MAX_TEXT else cleaned[:_MAX_TEXT] + "…"
    if not cleaned:
        _refuse(field, "Enter a duration.")
    if len(cleaned) > _MAX_TEXT:
        _refuse(field, f"{shown!r} is too long to be a duration.")
    if cleaned.startswith("-"):
        _refuse(field, f"{shown!r} is negative.")
    minutes = _minutes(cleaned)
    if minutes is None:
        if _PLAIN_DECIMAL.fullmatch(cleaned):
            hint = f"write {cleaned}h for hours or {cleaned}m for minutes"
            _refuse(field, f"{shown!r} has no unit: {hint}.")
        _refuse(field, f"Cannot read {shown!r} as a duration.")
    whole = int(minutes + Fraction(1, 2))  # round half up; minutes is never negative here
    if whole < 1:
        _refuse(field, f"{shown!r} is shorter than 1 minute.")
    if whole > MAX_DURATION // MIN_DURATION:
        _refuse(field, f"{shown!r} is longer than 7 days.")
    return timedelta(minutes=whole)


def format_duration(duration: timedelta) -> str:
    """``duration`` for a reply, rounded half up to whole minutes: ``"1h 30m"``, ``"45m"``,
    ``"2d 3h"``, ``"0m"``; a negative duration gets a leading ``-``.

    ``parse_duration`` reads every result back to the same whole-minute duration.
    """
    micro = duration // timedelta(microseconds=1)
    sign = "-" if micro < 0 else ""
    minutes = (abs(micro) + 30_000_000) // 60_000_000
    days, rest = divmod(minutes, 1440)
    hours, mins = divmod(rest, 60)
    parts = [f"{n}{unit}" for n, unit in ((days, "d"), (hours, "h"), (mins, "m")) if n]
    return sign + " ".join(parts) if parts else "0m"


def _minutes(text: str) -> Fraction | None:
    """Minutes named by lower-cased, stripped ``text``; None when it is not a duration."""
    if _PLAIN_MINUTES.fullmatch(text):
        return Fraction(int(text))
    clock = _CLOCK.fullmatch(text)
    if clock:
        return Fraction(int(clock[1]) * 60 + int(clock[2]))
    total = Fraction(0)
    position = 0
    previous = 0  # size of the last unit, in minutes; 0 before the first
    while position < len(text):
        match = _COMPONENT.match(text, position)
        if match is None:
            return None
        unit = _UNIT_NAMES.get(match[2])
        if unit is None:
            return None
        size = _MINUTES_PER_UNIT[unit]
        if previous and size >= previous:  # repeated unit, or smaller before larger
            return None
        total += Fraction(match[1]) * size
        previous = size
        position = match.end()
    return total if previous else None


def _refuse(field: str, problem: str) -> NoReturn:
    message = f"{problem} {DURATION_HELP}"
    raise ValidationError(message, {field: message})
