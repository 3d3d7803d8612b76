"""Print-time estimates as members type them (issue 3, "Duration parsing for estimates").

Bad inputs tried (each must be refused with a ValidationError whose message lists the
accepted forms): empty and blank text; words and stray letters (``abc``, ``h``, ``1x``,
``90s``, ``90 seconds``, ``1 fortnight``); repeated or out-of-order units (``1h1h``,
``30m 1h``, ``1h 2d``); hours with bare minutes (``1h30``); broken clock times (``2:60``,
``2:5``, ``1:2:3``, ``:30``); decimal commas and exponents (``1,5h``, ``1e3m``); ``nan``,
``inf``; non-ASCII digits (``١٥٠``); signs (``-5m``, ``-1``, ``+5m``); zero and less than
half a minute (``0``, ``0m``, ``0:00``, ``0.4m``); over 7 days (``7d 1m``, ``10081``,
``168:01``, ``169h``, ``99999999999999999999h``); a plain decimal (``1.5``, ambiguous
between hours and minutes); a 50-character string; non-text (``None``, ``90``).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from printcore.errors import ValidationError
from printcore.queue.durations import (
    DURATION_HELP,
    MAX_DURATION,
    MIN_DURATION,
    format_duration,
    parse_duration,
)


@pytest.mark.parametrize(
    ("text", "minutes"),
    [
        # the forms the issue names
        ("90m", 90),
        ("1h30m", 90),
        ("1h 30m", 90),
        ("2:15", 135),
        ("150", 150),
        ("1.5h", 90),
        ("45 min", 45),
        ("2 hours", 120),
        # case, spaces and spelled-out units
        ("  90M  ", 90),
        ("1H30M", 90),
        ("1 Hour 30 Minutes", 90),
        ("1hr 5mins", 65),
        ("2hrs", 120),
        ("1 h 30 m", 90),
        ("1.25 h", 75),
        (".5h", 30),
        ("2d 3h", 51 * 60),
        ("1 day", 1440),
        ("0:45", 45),
        ("007", 7),
        # rounding half up to whole minutes
        ("0.5m", 1),
        ("1.49m", 1),
        ("1.5m", 2),
        ("0.01h", 1),  # 36 seconds
        # the limits
        ("1", 1),
        ("1m", 1),
        ("7d", 7 * 1440),
        ("168h", 7 * 1440),
        ("168:00", 7 * 1440),
        ("10080", 7 * 1440),
    ],
)
def test_accepted_forms(text: str, minutes: int) -> None:
    assert parse_duration(text) == timedelta(minutes=minutes)


UNREADABLE = [
    "",
    "   ",
    "abc",
    "h",
    "1x",
    "90s",
    "90 seconds",
    "1 fortnight",
    "1h1h",
    "30m 1h",
    "1h 2d",
    "1h30",
    "2:60",
    "2:5",
    "1:2:3",
    ":30",
    "1,5h",
    "1e3m",
    "nan",
    "inf",
    "١٥٠",
    "+5m",
    "1.5",
    "9" * 50,
]


@pytest.mark.parametrize("text", UNREADABLE)
def test_unreadable_text_is_refused_with_the_accepted_forms(text: str) -> None:
    with pytest.raises(ValidationError) as caught:
        parse_duration(text)
    assert DURATION_HELP in str(caught.value)
    assert caught.value.fields == {"est_time": str(caught.value)}


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("-5m", "negative"),
        ("-1", "negative"),
        ("0", "shorter than 1 minute"),
        ("0m", "shorter than 1 minute"),
        ("0:00", "shorter than 1 minute"),
        ("0.4m", "shorter than 1 minute"),
        ("7d 1m", "longer than 7 days"),
        ("10081", "longer than 7 days"),
        ("168:01", "longer than 7 days"),
        ("169h", "longer than 7 days"),
        ("99999999999999999999h", "longer than 7 days"),
        ("1.5", "has no unit: write 1.5h for hours or 1.5m for minutes"),
    ],
)
def test_absurd_durations_say_what_is_wrong(text: str, problem: str) -> None:
    with pytest.raises(ValidationError) as caught:
        parse_duration(text)
    message = str(caught.value)
    assert problem in message
    assert message.endswith(DURATION_HELP)


@pytest.mark.parametrize("value", [None, 90, 1.5, b"90m"])
def test_non_text_is_refused(value: Any) -> None:
    with pytest.raises(ValidationError, match="as text"):
        parse_duration(value)


def test_the_field_name_can_be_chosen() -> None:
    with pytest.raises(ValidationError) as caught:
        parse_duration("soon", field="remaining")
    assert set(caught.value.fields) == {"remaining"}


def test_the_help_text_lists_every_accepted_form_and_the_range() -> None:
    for form in ("90m", "1h30m", "1h 30m", "2:15", "150 (minutes)", "1.5h"):
        assert form in DURATION_HELP
    assert "between 1 minute and 7 days" in DURATION_HELP
    assert parse_duration("1m") == MIN_DURATION
    assert parse_duration("7d") == MAX_DURATION


@pytest.mark.parametrize(
    ("duration", "text"),
    [
        (timedelta(minutes=90), "1h 30m"),
        (timedelta(minutes=45), "45m"),
        (timedelta(days=2, hours=3), "2d 3h"),
        (timedelta(days=1, minutes=5), "1d 5m"),
        (timedelta(hours=2), "2h"),
        (timedelta(days=7), "7d"),
        (timedelta(0), "0m"),
        (timedelta(seconds=29), "0m"),
        (timedelta(seconds=30), "1m"),  # half up
        (timedelta(minutes=59, seconds=31), "1h"),
        (timedelta(minutes=-90), "-1h 30m"),
    ],
)
def test_format_duration(duration: timedelta, text: str) -> None:
    assert format_duration(duration) == text


@pytest.mark.parametrize("minutes", [1, 59, 60, 61, 1439, 1440, 1441, 5000, 10080])
def test_formatted_durations_read_back(minutes: int) -> None:
    duration = timedelta(minutes=minutes)
    assert parse_duration(format_duration(duration)) == duration
