"""Issue 14, defect 2: a print's duration is known only when someone says when it ended;
otherwise close − start is an upper bound, shown as one, and predictions leave out bounds
that say nothing.

The case from the issue: a 58-minute print started at 22:02, finished at 23:00, was
closed by the next member at 09:15 the next morning. The code before the issue stored it
as 11 h 13 m and ``/predict 1h`` then suggested 11 h 36 m.

Bad inputs tried (end times): an end before the start, an end after now (``took`` longer
than the time since the start), both ``finished_at`` and ``took``; typed times: empty,
"25:00", "9" (no minutes), "13pm", "noon", a date without a time, "2026-02-30 10:00", a
time skipped by the spring DST change.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from printcore.errors import ValidationError
from printcore.memory import FixedClock
from printcore.queue.access_hours import AccessHours
from printcore.queue.end_times import parse_end_time
from printcore.queue.memory import MemoryQueueDatabase, MemoryQueueUnitOfWork
from printcore.queue.service import QueuePolicy, QueueService

ZONE = "America/Chicago"
EVENING = datetime(2026, 12, 1, 4, 2, tzinfo=UTC)  # Mon 30 Nov 22:02 CST


def world(now: datetime = EVENING) -> tuple[QueueService, FixedClock]:
    db = MemoryQueueDatabase()
    clock = FixedClock(now)
    svc = QueueService(uow=lambda: MemoryQueueUnitOfWork(db), clock=clock,
                       access=AccessHours.always(ZONE), policy=QueuePolicy())
    svc.sync_printers([("X1C-1", "")])
    return svc, clock


def overnight(svc: QueueService, clock: FixedClock, **end: object) -> None:
    """Ann's 1 h print, started 22:02, closed at 09:15 the next morning."""
    svc.join("ann", "Ann", "bracket", timedelta(hours=1))
    svc.claim("ann", "X1C-1")
    svc.report_started("ann")
    clock.current = datetime(2026, 12, 1, 15, 15, tzinfo=UTC)  # Tue 09:15 CST
    svc.close("ann", "X1C-1", "finished", **end)  # type: ignore[arg-type]


def test_closing_the_next_morning_without_an_end_is_an_upper_bound() -> None:
    svc, clock = world()
    overnight(svc, clock)
    ticket = svc.myjobs("ann")[0]
    assert ticket.actual_minutes is None and not ticket.duration_known
    assert ticket.bound_minutes == 11 * 60 + 13
    assert ticket.ended_at is None and ticket.ended_by is None
    prediction = svc.predict("ann", timedelta(hours=1))
    # The bound is above 3 × the estimate: it informs nothing; 1 h stays 1 h.
    assert prediction.minutes == 60
    assert (prediction.member_prints, prediction.skipped_bounds) == (0, 1)


@pytest.mark.parametrize("end", [
    {"took": timedelta(minutes=58)},
    {"finished_at": datetime(2026, 12, 1, 5, 0, tzinfo=UTC)},  # 23:00 CST
])
def test_a_given_end_makes_the_duration_known(end: dict) -> None:
    svc, clock = world()
    overnight(svc, clock, **end)
    ticket = svc.myjobs("ann")[0]
    assert ticket.actual_minutes == 58 and ticket.duration_known
    assert ticket.bound_minutes is None
    assert ticket.ended_at == datetime(2026, 12, 1, 5, 0, tzinfo=UTC)
    assert ticket.ended_by == "member"
    prediction = svc.predict("ann", timedelta(hours=1))
    assert prediction.minutes == 58
    assert (prediction.member_known, prediction.member_bounds) == (1, 0)


def test_bounds_that_still_inform_count_and_are_counted_apart() -> None:
    svc, clock = world()
    for took in (timedelta(minutes=70), None, None):
        svc.join("ann", "Ann", "part", timedelta(hours=1))
        svc.claim("ann", "X1C-1")
        svc.report_started("ann")
        clock.advance(minutes=90)  # closed 90 min after the start: a bound ≤ 3 × 60
        svc.close("ann", "X1C-1", "finished", took=took)
    prediction = svc.predict("ann", timedelta(hours=1))
    assert (prediction.member_known, prediction.member_bounds) == (1, 2)
    assert (prediction.printer_known, prediction.printer_bounds) == (1, 2)
    assert prediction.minutes == 90  # median of 70, 90, 90 over an estimate of 60


def test_the_event_says_which_it_was() -> None:
    svc, clock = world()
    overnight(svc, clock, took=timedelta(minutes=58))
    ticket = svc.myjobs("ann")[0]
    with svc.uow() as uow:
        close = [e for e in uow.events.for_subject("ticket", ticket.id or 0)
                 if e.kind == "close"][0]
    assert close.details["actual_minutes"] == 58 and close.details["bound_minutes"] is None
    assert close.details["ended_at"] == "2026-12-01T05:00:00+00:00"


# --- typed end times -----------------------------------------------------------------

NOW = datetime(2026, 12, 1, 15, 15, tzinfo=UTC)  # Tue 01 Dec 09:15 CST


@pytest.mark.parametrize(("text", "expected"), [
    ("23:00", datetime(2026, 12, 1, 5, 0, tzinfo=UTC)),  # last night
    ("9:05", datetime(2026, 12, 1, 15, 5, tzinfo=UTC)),  # this morning
    ("11pm", datetime(2026, 12, 1, 5, 0, tzinfo=UTC)),
    ("11:30 PM", datetime(2026, 12, 1, 5, 30, tzinfo=UTC)),
    ("12am", datetime(2026, 12, 1, 6, 0, tzinfo=UTC)),
    ("yesterday 09:30", datetime(2026, 11, 30, 15, 30, tzinfo=UTC)),
    ("2026-11-30 23:10", datetime(2026, 12, 1, 5, 10, tzinfo=UTC)),
    ("2026-12-01T05:10Z", datetime(2026, 12, 1, 5, 10, tzinfo=UTC)),
    ("  23.00 ", datetime(2026, 12, 1, 5, 0, tzinfo=UTC)),
])
def test_typed_end_times(text: str, expected: datetime) -> None:
    assert parse_end_time(text, NOW, ZONE) == expected


@pytest.mark.parametrize("text", ["", "25:00", "9", "13pm", "noon", "2026-11-30",
                                  "2026-02-30 10:00", "2026-03-08 02:30"])
def test_typed_end_times_refused(text: str) -> None:
    with pytest.raises(ValidationError) as caught:
        parse_end_time(text, NOW, ZONE)
    assert caught.value.reason == "bad_end_time"
    assert "like 23:10" in caught.value.message


@given(st.integers(0, 23), st.integers(0, 59))
def test_a_time_of_day_is_never_in_the_future_nor_a_day_old(hour: int, minute: int) -> None:
    found = parse_end_time(f"{hour}:{minute:02d}", NOW, ZONE)
    assert NOW - timedelta(days=1) < found <= NOW
