"""Access hours: weekly windows in the lab's time zone (issue 3, "Access hours").

The clock-change examples use America/Chicago: on 2026-03-08 the clock jumps from
02:00 CST (08:00 UTC) to 03:00 CDT; on 2026-11-01 it goes back from 02:00 CDT
(07:00 UTC) to 01:00 CST. Outside those weekends Chicago is UTC-6 in winter and UTC-5
in summer.

Bad specs tried (each refused with a ValidationError naming the bad part and showing an
example): empty, blank, only separators; days without hours (``mon-fri``, ``always
mon``); hours without days; misspelt or run-together days (``mon-fry``, ``mon fri``,
``mon,,tue``, ``someday``); times out of range (``25:00``, ``08:60``, ``24:00`` as a
start, ``24:30``); an empty window (``08:00-08:00``); times without minutes or with
words (``8-17``, ``08:00 to 17:00``, ``0800-1700``); an empty window in a list
(``08:00-12:00,,13:00-17:00``); a 2,001-character spec; ``None``. Bad time zones:
``Mars/Olympus``, ``""``, ``../etc/passwd``, ``utc`` (keys are case-sensitive), ``None``.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from printcore.errors import ValidationError
from printcore.queue.access_hours import EXAMPLE, AccessHours

CHICAGO = "America/Chicago"
LAB = "mon-fri 08:00-22:00; sat 10:00-16:00"
ONE_US = timedelta(microseconds=1)


def utc(
    year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0
) -> datetime:
    return datetime(year, month, day, hour, minute, second, tzinfo=UTC)


def lab() -> AccessHours:
    return AccessHours.parse(LAB, CHICAGO)


# --- reading specs ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "windows"),
    [
        ("mon 08:00-22:00", ((480, 1320),)),
        ("sat 10:00-16:00", ((5 * 1440 + 600, 5 * 1440 + 960),)),
        ("mon,wed 09:00-17:00", ((540, 1020), (2 * 1440 + 540, 2 * 1440 + 1020))),
        ("mon 08:00-12:00, 13:00-17:00", ((480, 720), (780, 1020))),
        ("fri 20:00-02:00", ((4 * 1440 + 1200, 5 * 1440 + 120),)),
        ("sun 22:00-02:00", ((0, 120), (6 * 1440 + 1320, 7 * 1440))),
        ("mon 22:00-00:00", ((1320, 1440),)),
        ("mon 20:00-24:00; tue 00:00-02:00", ((1200, 1440 + 120),)),  # merged
        ("mon 08:00-12:00; mon 10:00-14:00", ((480, 840),)),  # overlaps merged
        ("Monday 8:00-9:30", ((480, 570),)),
        (
            "  MON - FRI  08:00 - 22:00 ;; ",
            tuple((d * 1440 + 480, d * 1440 + 1320) for d in range(5)),
        ),
        ("weekdays 08:00-22:00", tuple((d * 1440 + 480, d * 1440 + 1320) for d in range(5))),
        ("weekends 10:00-16:00", ((7800, 8160), (9240, 9600))),
        ("fri-mon 10:00-11:00", ((600, 660), (6360, 6420), (7800, 7860), (9240, 9300))),
        ("mon 08:00\u201310:00", ((480, 600),)),  # an en dash, as phones type it
        ("mon 08:00-10:00\ntue 08:00-10:00", ((480, 600), (1920, 2040))),
    ],
)
def test_specs_become_weekly_windows(spec: str, windows: tuple[tuple[int, int], ...]) -> None:
    assert AccessHours.parse(spec, "UTC").windows == windows


@pytest.mark.parametrize(
    "spec",
    [
        "always",
        "ALWAYS",
        "24/7",
        "daily 00:00-24:00",
        "mon-sun 00:00-24:00",
        "daily 00:00-24:00; mon 08:00-09:00",
        "mon-sat 00:00-24:00; sun 00:00-12:00; sun 11:00-24:00",
    ],
)
def test_specs_that_never_close(spec: str) -> None:
    hours = AccessHours.parse(spec, CHICAGO)
    assert hours.is_always
    assert hours == AccessHours.always(CHICAGO)
    assert hours.describe() == "always"


BAD_SPECS = [
    ("", "empty"),
    ("   ", "empty"),
    (";;\n;", "empty"),
    ("mon-fri", "'mon-fri' has no hours"),
    ("always mon", "'always mon' has no hours"),
    ("08:00-22:00", "'08:00-22:00' names no days"),
    ("mon-fry 08:00-22:00", "'mon-fry' in 'mon-fry 08:00-22:00' is not a day"),
    ("mon fri 08:00-22:00", "'mon fri' in 'mon fri 08:00-22:00' is not a day"),
    ("mon,,tue 08:00-10:00", "'' in 'mon,,tue 08:00-10:00' is not a day"),
    ("someday 08:00-10:00", "'someday'"),
    (
        "mon-fri 08:00-22:00; sat 25:00-26:00",
        "'25:00-26:00' in 'sat 25:00-26:00' has a time outside",
    ),
    ("mon 08:60-09:00", "'08:60-09:00' in 'mon 08:60-09:00' has a time outside"),
    ("mon 24:00-02:00", "has a time outside 00:00-24:00"),
    ("mon 20:00-24:30", "has a time outside 00:00-24:00"),
    ("mon 08:00-08:00", "'08:00-08:00' in 'mon 08:00-08:00' is empty"),
    ("mon 8-17", "'8-17' in 'mon 8-17' is not a time window"),
    ("mon 08:00 to 17:00", "'08:00 to 17:00' in 'mon 08:00 to 17:00' is not a time window"),
    ("mon 0800-1700", "'0800-1700'"),
    ("mon 08:00-12:00,, 13:00-17:00", "'' in 'mon 08:00-12:00,, 13:00-17:00' is not a time window"),
    ("mon 08:00-10:00; " * 120, "longer than 2000 characters"),
]


@pytest.mark.parametrize(("spec", "problem"), BAD_SPECS)
def test_bad_specs_are_refused_naming_the_bad_part(spec: str, problem: str) -> None:
    with pytest.raises(ValidationError) as caught:
        AccessHours.parse(spec, CHICAGO)
    message = str(caught.value)
    assert problem in message
    assert EXAMPLE in message
    assert caught.value.fields == {"access_hours": message}


def test_a_spec_that_is_not_text_is_refused() -> None:
    with pytest.raises(ValidationError, match="must be text"):
        AccessHours.parse(None, CHICAGO)  # type: ignore[arg-type]


def test_the_field_name_can_be_chosen() -> None:
    with pytest.raises(ValidationError) as caught:
        AccessHours.parse("mon", CHICAGO, field="lab_hours")
    assert set(caught.value.fields) == {"lab_hours"}


@pytest.mark.parametrize("zone", ["Mars/Olympus", "", "../etc/passwd", "utc", "America", None])
def test_unknown_time_zones_are_refused(zone: Any) -> None:
    with pytest.raises(ValidationError) as caught:
        AccessHours.parse(LAB, zone)
    assert set(caught.value.fields) == {"timezone"}
    assert "America/Chicago" in str(caught.value)


@pytest.mark.parametrize("windows", [(), ((0, 0),), ((-10, 20),), ((100, 50),), ((10000, 10090),)])
def test_windows_outside_a_week_are_a_programming_error(windows: Any) -> None:
    with pytest.raises(ValueError):
        AccessHours(windows, "UTC")


# --- describing ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "described"),
    [
        (LAB, LAB),
        ("Mon - Fri 8:00-22:00", "mon-fri 08:00-22:00"),
        ("weekdays 08:00-22:00; weekends 10:00-16:00", "mon-fri 08:00-22:00; sat-sun 10:00-16:00"),
        ("mon,wed 09:00-17:00", "mon,wed 09:00-17:00"),
        ("fri-mon 10:00-12:00", "mon,fri-sun 10:00-12:00"),
        ("mon 13:00-17:00, 08:00-12:00", "mon 08:00-12:00, 13:00-17:00"),
        ("fri 20:00-02:00", "fri 20:00-02:00"),
        ("sun 22:00-02:00", "sun 22:00-02:00"),
        ("sat-sun 22:00-02:00", "sat-sun 22:00-02:00"),
        ("fri 20:00-02:00; sat 01:00-05:00", "fri 20:00-05:00"),
        ("mon 20:00-24:00; tue 00:00-02:00", "mon 20:00-02:00"),
        ("mon 00:00-24:00; tue 00:00-10:00", "mon 00:00-24:00; tue 00:00-10:00"),
        ("daily 08:00-20:00", "daily 08:00-20:00"),
        ("always", "always"),
    ],
)
def test_describe_writes_a_spec_that_reads_back(spec: str, described: str) -> None:
    hours = AccessHours.parse(spec, CHICAGO)
    assert hours.describe() == described
    assert AccessHours.parse(hours.describe(), CHICAGO) == hours
    assert str(hours) == f"{described} (America/Chicago)"


# --- an ordinary week (Chicago in winter: UTC-6) ------------------------------------------


def test_open_and_closed_moments_of_an_ordinary_week() -> None:
    hours = lab()
    assert not hours.is_open(utc(2026, 1, 12, 13, 59))  # Mon 07:59 CST
    assert hours.is_open(utc(2026, 1, 12, 14, 0))  # Mon 08:00: opening included
    assert hours.is_open(utc(2026, 1, 13, 3, 59, 59))  # Mon 21:59:59
    assert not hours.is_open(utc(2026, 1, 13, 4, 0))  # Mon 22:00: closing excluded
    assert hours.is_open(utc(2026, 1, 17, 16, 0))  # Sat 10:00
    assert not hours.is_open(utc(2026, 1, 18, 18, 0))  # Sunday


def test_next_opening_and_closing() -> None:
    hours = lab()
    saturday_evening = utc(2026, 1, 17, 23, 0)  # Sat 17:00 CST, closed
    assert hours.next_opening(saturday_evening) == utc(2026, 1, 19, 14, 0)  # Mon 08:00
    assert hours.next_closing(saturday_evening) == utc(2026, 1, 20, 4, 0)  # Mon 22:00
    monday_noon = utc(2026, 1, 19, 18, 0)
    assert hours.next_opening(monday_noon) == monday_noon
    assert hours.next_closing(monday_noon) == utc(2026, 1, 20, 4, 0)


def test_results_are_utc_whatever_zone_the_question_was_asked_in() -> None:
    hours = lab()
    chicago_noon = datetime(2026, 1, 19, 12, 0, tzinfo=timezone(timedelta(hours=-6)))
    opening = hours.next_opening(chicago_noon)
    assert opening == chicago_noon and opening.tzinfo is UTC
    closing = hours.next_closing(chicago_noon)
    assert closing is not None and closing.tzinfo is UTC
    assert hours.add_open_time(chicago_noon, timedelta(hours=1)).tzinfo is UTC


def test_open_seconds_between_counts_only_open_time() -> None:
    hours = lab()
    friday_open = utc(2026, 1, 16, 14, 0)
    monday_close = utc(2026, 1, 20, 4, 0)
    assert hours.open_seconds_between(friday_open, monday_close) == (14 + 6 + 14) * 3600
    assert hours.open_seconds_between(monday_close, friday_open) == 0.0
    assert hours.open_seconds_between(friday_open, friday_open) == 0.0
    sunday = utc(2026, 1, 18, 12, 0)
    assert hours.open_seconds_between(sunday, sunday + timedelta(hours=5)) == 0.0


def test_add_open_time_skips_closed_hours() -> None:
    hours = lab()
    friday_2100 = utc(2026, 1, 17, 3, 0)  # Fri 21:00 CST
    # 1 h on Friday, then 2 h from Saturday 10:00
    assert hours.add_open_time(friday_2100, timedelta(hours=3)) == utc(2026, 1, 17, 18, 0)
    sunday = utc(2026, 1, 18, 12, 0)
    assert hours.add_open_time(sunday, timedelta(minutes=10)) == utc(2026, 1, 19, 14, 10)
    week_of_open_time = timedelta(hours=5 * 14 + 6)
    assert hours.add_open_time(utc(2026, 1, 19, 14, 0), week_of_open_time) == utc(
        2026, 1, 24, 22, 0
    )


def test_add_open_time_that_ends_at_a_closing_ends_there() -> None:
    hours = AccessHours.parse("mon 08:00-12:00, 13:00-17:00", "UTC")
    assert hours.add_open_time(utc(2026, 1, 19, 11, 0), timedelta(hours=1)) == utc(
        2026, 1, 19, 12, 0
    )
    assert hours.add_open_time(utc(2026, 1, 19, 11, 0), timedelta(hours=2)) == utc(
        2026, 1, 19, 14, 0
    )
    assert hours.next_opening(utc(2026, 1, 19, 12, 30)) == utc(2026, 1, 19, 13, 0)


def test_zero_and_negative_durations() -> None:
    hours = lab()
    sunday = utc(2026, 1, 18, 12, 0)
    assert hours.add_open_time(sunday, timedelta(0)) == sunday
    with pytest.raises(ValueError):
        hours.add_open_time(sunday, timedelta(minutes=-1))
    with pytest.raises(ValueError):
        hours.add_open_seconds(sunday.timestamp(), -1.0)


@pytest.mark.parametrize(
    "call",
    [
        lambda h, t: h.is_open(t),
        lambda h, t: h.next_opening(t),
        lambda h, t: h.next_closing(t),
        lambda h, t: h.open_seconds_between(t, t),
        lambda h, t: h.add_open_time(t, timedelta(hours=1)),
    ],
)
@pytest.mark.parametrize("hours", [lab(), AccessHours.always()], ids=["lab", "always"])
def test_naive_datetimes_are_refused(call: Any, hours: AccessHours) -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        call(hours, datetime(2026, 1, 19, 12, 0))


def test_a_lab_that_never_closes() -> None:
    hours = AccessHours.always()
    t = utc(2026, 3, 8, 8, 0)
    assert hours.is_open(t)
    assert hours.next_opening(t) == t
    assert hours.next_closing(t) is None
    assert hours.open_seconds_between(t, t + timedelta(days=3)) == 3 * 86400
    assert hours.add_open_time(t, timedelta(hours=5)) == t + timedelta(hours=5)
    assert hours.add_open_seconds(t.timestamp(), 60.0) == t.timestamp() + 60


def test_timestamp_methods_agree_with_the_datetime_ones() -> None:
    hours = lab()
    for start in (utc(2026, 1, 17, 3, 0), utc(2026, 1, 18, 12, 0), utc(2026, 3, 7, 21, 30)):
        ts = start.timestamp()
        assert hours.is_open_ts(ts) == hours.is_open(start)
        assert hours.next_opening_ts(ts) == hours.next_opening(start).timestamp()
        later = hours.add_open_time(start, timedelta(minutes=95))
        assert hours.add_open_seconds(ts, 95 * 60.0) == later.timestamp()


def test_lookups_far_apart_in_time_give_the_same_answers() -> None:
    """The cache of stretches moves and widens; answers must not depend on its history."""
    fresh = [lab() for _ in range(3)]
    moments = [utc(2026, 1, 17, 3, 0), utc(2090, 6, 2, 12, 0), utc(2001, 2, 3, 4, 5)]
    expected = [
        (fresh[i].next_opening(t), fresh[i].next_closing(t), fresh[i].is_open(t))
        for i, t in enumerate(moments)
    ]
    shared = lab()
    for _ in range(2):
        for t, answer in zip(moments, expected, strict=True):
            assert (shared.next_opening(t), shared.next_closing(t), shared.is_open(t)) == answer


def test_a_long_stretch_of_open_time_over_a_rarely_open_lab() -> None:
    hours = AccessHours.parse("wed 12:00-13:00", "Europe/Berlin")
    start = utc(2026, 1, 1)
    end = hours.add_open_time(start, timedelta(days=7))  # 168 one-hour Wednesdays
    assert hours.open_seconds_between(start, end) == 7 * 86400
    assert end.astimezone(ZoneInfo("Europe/Berlin")).strftime("%a %H:%M") == "Wed 13:00"
    assert hours.open_seconds_between(start, utc(2029, 1, 1)) == 156 * 3600  # 52 a year


# --- windows across midnight ---------------------------------------------------------------


def test_a_friday_night_window_runs_into_saturday() -> None:
    hours = AccessHours.parse("fri 20:00-02:00", "UTC")
    assert not hours.is_open(utc(2026, 1, 16, 19, 59))
    assert hours.is_open(utc(2026, 1, 16, 20, 0))
    assert hours.is_open(utc(2026, 1, 17, 1, 59))
    assert not hours.is_open(utc(2026, 1, 17, 2, 0))
    assert hours.next_closing(utc(2026, 1, 16, 21, 0)) == utc(2026, 1, 17, 2, 0)
    # 3 h until Saturday 02:00, the fourth next Friday
    assert hours.add_open_time(utc(2026, 1, 16, 23, 0), timedelta(hours=4)) == utc(
        2026, 1, 23, 21, 0
    )


def test_a_sunday_night_window_runs_into_the_next_week() -> None:
    hours = AccessHours.parse("sun 22:00-02:00", "UTC")
    sunday_late = utc(2026, 1, 18, 23, 0)
    assert hours.is_open(sunday_late)
    assert hours.is_open(utc(2026, 1, 19, 1, 0))  # Monday 01:00
    assert hours.next_closing(sunday_late) == utc(2026, 1, 19, 2, 0)
    assert hours.next_opening(utc(2026, 1, 19, 2, 0)) == utc(2026, 1, 25, 22, 0)
    assert hours.open_seconds_between(utc(2026, 1, 18), utc(2026, 1, 20)) == 4 * 3600


def test_a_window_that_closes_exactly_where_a_cached_week_ends() -> None:
    """Sunday 20:00-24:00 then Monday 00:00-02:00 is one stretch of six hours."""
    hours = AccessHours.parse("sun 20:00-24:00; mon 00:00-02:00", "UTC")
    assert hours.next_closing(utc(2026, 1, 18, 21, 0)) == utc(2026, 1, 19, 2, 0)
    assert hours.next_closing(utc(2026, 1, 18, 23, 59, 59)) == utc(2026, 1, 19, 2, 0)


# --- clock changes in Chicago ----------------------------------------------------------------


def test_spring_forward_weekend_for_the_lab() -> None:
    hours = lab()
    assert hours.next_closing(utc(2026, 3, 7, 17, 0)) == utc(2026, 3, 7, 22, 0)  # Sat 16:00 CST
    # Monday 08:00 is now CDT (UTC-5): an hour earlier in UTC than the Monday before
    assert hours.next_opening(utc(2026, 3, 7, 23, 0)) == utc(2026, 3, 9, 13, 0)
    assert hours.next_opening(utc(2026, 2, 28, 23, 0)) == utc(2026, 3, 2, 14, 0)
    friday_open, monday_close = utc(2026, 3, 6, 14, 0), utc(2026, 3, 10, 3, 0)
    assert hours.open_seconds_between(friday_open, monday_close) == (14 + 6 + 14) * 3600
    # Saturday 15:00 CST + 2 h: one hour on Saturday, one on Monday from 08:00 CDT
    assert hours.add_open_time(utc(2026, 3, 7, 21, 0), timedelta(hours=2)) == utc(2026, 3, 9, 14, 0)


def test_fall_back_weekend_for_the_lab() -> None:
    hours = lab()
    assert hours.next_closing(utc(2026, 10, 31, 16, 0)) == utc(2026, 10, 31, 21, 0)  # CDT
    assert hours.next_opening(utc(2026, 10, 31, 22, 0)) == utc(2026, 11, 2, 14, 0)  # CST
    assert hours.add_open_time(utc(2026, 10, 31, 20, 0), timedelta(hours=2)) == utc(
        2026, 11, 2, 15, 0
    )


def test_a_window_through_the_skipped_hour_is_shorter() -> None:
    hours = AccessHours.parse("daily 01:00-04:00", CHICAGO)
    assert hours.next_opening(utc(2026, 3, 8, 0, 0)) == utc(2026, 3, 8, 7, 0)  # 01:00 CST
    assert hours.next_closing(utc(2026, 3, 8, 7, 0)) == utc(2026, 3, 8, 9, 0)  # 04:00 CDT
    assert hours.open_seconds_between(utc(2026, 3, 8), utc(2026, 3, 9)) == 2 * 3600
    assert hours.open_seconds_between(utc(2026, 3, 7), utc(2026, 3, 8)) == 3 * 3600


def test_a_window_inside_the_skipped_hour_does_not_open_that_night() -> None:
    hours = AccessHours.parse("sun 02:00-03:00", CHICAGO)
    assert hours.next_opening(utc(2026, 3, 7)) == utc(2026, 3, 15, 7, 0)  # 02:00 CDT
    assert hours.open_seconds_between(utc(2026, 3, 7), utc(2026, 3, 9)) == 0.0
    assert hours.next_opening(utc(2026, 3, 1)) == utc(2026, 3, 1, 8, 0)  # 02:00 CST


def test_a_window_opening_in_the_skipped_hour_opens_when_the_clock_jumps() -> None:
    hours = AccessHours.parse("sun 02:30-04:00", CHICAGO)
    assert hours.next_opening(utc(2026, 3, 8)) == utc(2026, 3, 8, 8, 0)  # 03:00 CDT
    assert not hours.is_open(utc(2026, 3, 8, 7, 59, 59))


def test_a_night_window_closing_in_the_skipped_hour_closes_when_the_clock_jumps() -> None:
    hours = AccessHours.parse("sat 20:00-02:00", CHICAGO)
    assert hours.next_opening(utc(2026, 3, 7, 12, 0)) == utc(2026, 3, 8, 2, 0)  # 20:00 CST
    assert hours.next_closing(utc(2026, 3, 8, 2, 0)) == utc(2026, 3, 8, 8, 0)  # 03:00 CDT
    assert hours.open_seconds_between(utc(2026, 3, 7), utc(2026, 3, 9)) == 6 * 3600


def test_a_window_through_the_repeated_hour_is_longer() -> None:
    hours = AccessHours.parse("sun 01:00-04:00", CHICAGO)
    assert hours.next_opening(utc(2026, 11, 1)) == utc(2026, 11, 1, 6, 0)  # 01:00 CDT
    assert hours.next_closing(utc(2026, 11, 1, 6, 0)) == utc(2026, 11, 1, 10, 0)  # 04:00 CST
    assert hours.open_seconds_between(utc(2026, 10, 31), utc(2026, 11, 2)) == 4 * 3600


def test_a_window_inside_the_repeated_hour_opens_only_the_first_time() -> None:
    hours = AccessHours.parse("sun 01:00-01:30", CHICAGO)
    assert hours.is_open(utc(2026, 11, 1, 6, 15))  # 01:15 CDT
    assert not hours.is_open(utc(2026, 11, 1, 7, 15))  # 01:15 CST, the clock's second pass
    assert hours.next_opening(utc(2026, 11, 1, 6, 30)) == utc(2026, 11, 8, 7, 0)


def test_a_night_window_over_the_fall_back_lasts_an_hour_more() -> None:
    hours = AccessHours.parse("sat 22:00-02:00", CHICAGO)
    assert hours.next_opening(utc(2026, 10, 31, 12, 0)) == utc(2026, 11, 1, 3, 0)  # 22:00 CDT
    assert hours.next_closing(utc(2026, 11, 1, 3, 0)) == utc(2026, 11, 1, 8, 0)  # 02:00 CST
    assert hours.open_seconds_between(utc(2026, 10, 31), utc(2026, 11, 2)) == 5 * 3600


def test_add_open_time_across_the_skipped_hour_counts_real_time() -> None:
    hours = AccessHours.parse("daily 00:00-06:00", CHICAGO)
    # 01:30 CST + 1 h of open time is 03:30 CDT on the clock
    assert hours.add_open_time(utc(2026, 3, 8, 7, 30), timedelta(hours=1)) == utc(2026, 3, 8, 8, 30)
    assert hours.open_seconds_between(utc(2026, 3, 8, 6), utc(2026, 3, 8, 11)) == 5 * 3600
    assert hours.open_seconds_between(utc(2026, 11, 1, 5), utc(2026, 11, 1, 12)) == 7 * 3600


def test_closing_just_before_a_moment_is_one_microsecond_away() -> None:
    hours = lab()
    closing = hours.next_closing(utc(2026, 3, 6, 15, 0))
    assert closing is not None
    assert hours.is_open(closing - ONE_US) and not hours.is_open(closing)


def test_lookups_a_few_weeks_back_and_forth_widen_the_cache_consistently() -> None:
    shared = lab()
    moments = [
        utc(2026, 6, 10, 15, 0),
        utc(2026, 5, 2, 23, 0),  # weeks before the cached ones
        utc(2026, 8, 30, 12, 0),  # weeks after them
        utc(2026, 3, 7, 21, 0),  # across the spring clock change
        utc(2026, 11, 1, 7, 30),  # inside the repeated hour
    ]
    for t in moments:
        fresh = lab()
        three_hours = timedelta(hours=3)
        assert shared.next_opening(t) == fresh.next_opening(t)
        assert shared.next_closing(t) == lab().next_closing(t)
        assert shared.add_open_time(t, three_hours) == lab().add_open_time(t, three_hours)
        assert shared.open_seconds_between(moments[0], t) == lab().open_seconds_between(
            moments[0], t
        )


def test_schedule_ts_is_next_opening_then_add_open_time() -> None:
    hours = lab()
    for start in (utc(2026, 1, 17, 3, 0), utc(2026, 1, 18, 12, 0), utc(2026, 3, 7, 21, 30)):
        opens = hours.next_opening(start)
        ends = hours.add_open_time(opens, timedelta(minutes=95))
        assert hours.schedule_ts(start.timestamp(), 95 * 60.0) == (
            opens.timestamp(),
            ends.timestamp(),
        )
        assert hours.schedule_ts(start.timestamp(), 0.0) == (opens.timestamp(),) * 2
    assert AccessHours.always().schedule_ts(100.0, 60.0) == (100.0, 160.0)
    with pytest.raises(ValueError):
        hours.schedule_ts(100.0, -1.0)
