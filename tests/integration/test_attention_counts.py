"""Attention on the dashboard, on every backend (memory, SQLite, PostgreSQL): NEW counts per
state from one grouped query, when each job entered its state (from the events table, one
query), the age levels and their settings, and a failed email reaching the event log.

Bad inputs tried: thresholds that are zero, negative, NaN, infinite, text, a bool, amber
equal to or above red (as objects and as environment settings); ids of jobs that do not
exist; an empty id list; a job whose only events are not state changes (a review, a
from == to event): it falls back to its ``created_at``.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from entrypoints.settings import SettingsError, load_settings
from printcore.errors import ValidationError
from printcore.events import Event
from printcore.memory import FixedClock, MemorySigner
from printcore.outbox import DeliveryError, OutboxMessage, OutboxService, RetryPolicy
from printcore.ports import Notice
from printcore.requests.ages import AgeThresholds, StateAge, age_short, age_words
from printcore.requests.job import Actor, Job
from printcore.requests.memory import MemoryFileStore
from printcore.requests.pricing import Pricing
from printcore.requests.service import PrintRequests

T0 = datetime(2026, 10, 5, 9, 0, tzinfo=UTC)
Factory = Callable[[], Any]


def _job(n: int, status: str, reviewed: bool = False) -> Job:
    return Job(student_name=f"Student {n}", email=f"s{n}@example.edu", discipline="Art",
               class_number="ART 1", print_method="filament", color="red", created_at=T0,
               updated_at=T0, status=status,
               reviewed_at=T0 if reviewed else None, reviewed_by="Ana" if reviewed else None)


def _add(uow_factory: Factory, job: Job, moves: list[tuple[str | None, str | None, datetime]]
         ) -> int:
    with uow_factory() as uow:
        job_id = uow.jobs.add(job)
        for n, (old, new, at) in enumerate(moves):
            uow.events.append(Event("job", job_id, f"move{n}", Actor.system(), at,
                                    from_status=old, to_status=new))
        uow.commit()
    return int(job_id)


# --- NEW counts -----------------------------------------------------------------------


def test_counts_per_state_say_how_many_are_not_reviewed(uow_factory: Factory) -> None:
    with uow_factory() as uow:
        assert uow.jobs.count_by_status_and_review() == {}
    for n, (status, reviewed) in enumerate([("uploaded", False), ("uploaded", False),
                                            ("uploaded", True), ("pending", True),
                                            ("printing", False)]):
        _add(uow_factory, _job(n, status, reviewed), [])
    with uow_factory() as uow:
        counts = uow.jobs.count_by_status_and_review()
        plain = uow.jobs.count_by_status()
    assert counts == {"uploaded": (3, 2), "pending": (1, 0), "printing": (1, 1)}
    assert {s: total for s, (total, _) in counts.items()} == plain


# --- when a job entered its state -----------------------------------------------------


def test_entered_status_at_is_the_newest_move_into_the_current_state(
        uow_factory: Factory) -> None:
    h = timedelta(hours=1)
    # Submitted, approved, sent back by a failed print and in Ready to print again.
    bounced = _add(uow_factory, _job(1, "ready_to_print"), [
        (None, "uploaded", T0), ("uploaded", "pending", T0 + h),
        ("pending", "ready_to_print", T0 + 2 * h), ("ready_to_print", "printing", T0 + 3 * h),
        ("printing", "ready_to_print", T0 + 5 * h)])
    fresh = _add(uow_factory, _job(2, "uploaded"), [(None, "uploaded", T0 + 4 * h)])
    # Only non-moves: a review (no statuses) and a same-state event; falls back.
    unmoved = _add(uow_factory, _job(3, "uploaded"), [
        (None, None, T0 + 6 * h), ("uploaded", "uploaded", T0 + 7 * h)])
    # An event into another state than the job's current one does not count.
    other = _add(uow_factory, _job(4, "pending"), [(None, "uploaded", T0 + 8 * h)])
    with uow_factory() as uow:
        got = uow.jobs.entered_status_at([bounced, fresh, unmoved, other, 99_999])
        assert uow.jobs.entered_status_at([]) == {}
    assert got == {bounced: T0 + 5 * h, fresh: T0 + 4 * h}
    assert all(at.tzinfo is not None for at in got.values())


def test_the_service_gives_each_job_its_age_and_level(uow_factory: Factory) -> None:
    old = _add(uow_factory, _job(1, "uploaded"), [(None, "uploaded", T0)])
    unmoved = _add(uow_factory, _job(2, "uploaded"), [])
    done = _add(uow_factory, _job(3, "rejected"), [("uploaded", "rejected", T0)])
    clock = FixedClock(T0 + timedelta(days=3, hours=2))
    svc = PrintRequests(uow=uow_factory, files=MemoryFileStore(), clock=clock,
                        signer=MemorySigner(), pricing=Pricing())
    with uow_factory() as uow:
        jobs = [uow.jobs.get(i) for i in (old, unmoved, done)]
    ages = svc.state_ages(jobs, AgeThresholds(24, 72))
    assert ages[old].level == "red" and ages[old].words == "in Uploaded for 3 days 2 hours"
    assert ages[unmoved].since == T0 and ages[unmoved].level == "red"  # created_at
    assert ages[done].level == "none"  # nothing is awaited of a rejected job
    assert svc.tab_counts() == {"uploaded": (2, 2), "rejected": (1, 1)}


# --- levels, words and settings -------------------------------------------------------


@pytest.mark.parametrize(("hours", "level"), [
    (0, "fresh"), (23.99, "fresh"), (24, "amber"), (71.99, "amber"), (72, "red"), (900, "red")])
def test_levels_at_their_boundaries(hours: float, level: str) -> None:
    assert AgeThresholds(24, 72).level("uploaded", hours * 3600) == level
    assert AgeThresholds(24, 72).level("paid_picked_up", hours * 3600) == "none"


def test_a_clock_behind_the_event_counts_as_no_time() -> None:
    age = StateAge.of("pending", T0, T0 - timedelta(minutes=5), AgeThresholds())
    assert (age.seconds, age.level, age.words, age.short) == (
        0.0, "fresh", "in Pending confirmation for under a minute", "<1m")


@pytest.mark.parametrize(("seconds", "words", "short"), [
    (0, "under a minute", "<1m"), (60, "1 minute", "1m"), (3600, "1 hour", "1h 0m"),
    (2 * 3600 + 5 * 60, "2 hours 5 minutes", "2h 5m"), (86400, "1 day", "1d 0h"),
    (3 * 86400 + 4 * 3600, "3 days 4 hours", "3d 4h"), (-50, "under a minute", "<1m")])
def test_ages_in_words(seconds: int, words: str, short: str) -> None:
    assert (age_words(seconds), age_short(seconds)) == (words, short)


@pytest.mark.parametrize(("amber", "red"), [
    (0, 72), (-1, 72), (24, 0), (float("nan"), 72), (24, float("inf")), (72, 72), (80, 72),
    (True, 72), ("24", 72)])
def test_bad_thresholds_are_refused(amber: Any, red: Any) -> None:
    with pytest.raises(ValidationError):
        AgeThresholds(amber, red)


def _settings(**env: str) -> Any:
    return load_settings({"PRINTCORE_HOME": "/nonexistent/printcore-attention",
                          "PRINTCORE_SECRET_KEY": "s" * 40, **env}, env_file=None)


@pytest.mark.parametrize(("env", "message"), [
    ({"PRINTCORE_AGE_AMBER_HOURS": "soon"}, "PRINTCORE_AGE_AMBER_HOURS='soon' is not a number"),
    ({"PRINTCORE_AGE_RED_HOURS": "0"}, "PRINTCORE_AGE_RED_HOURS='0' must be a positive"),
    ({"PRINTCORE_AGE_RED_HOURS": "-3"}, "must be a positive number of hours"),
    ({"PRINTCORE_AGE_AMBER_HOURS": "nan"}, "must be a positive number of hours"),
    ({"PRINTCORE_AGE_AMBER_HOURS": "inf"}, "must be a positive number of hours"),
    ({"PRINTCORE_AGE_AMBER_HOURS": "72"}, "must be less than PRINTCORE_AGE_RED_HOURS=72"),
    ({"PRINTCORE_AGE_AMBER_HOURS": "10", "PRINTCORE_AGE_RED_HOURS": "5"}, "must be less than"),
])
def test_bad_age_settings_stop_start_up_with_a_clear_message(
        env: dict[str, str], message: str) -> None:
    with pytest.raises(SettingsError, match=message.replace("(", r"\(")):
        _settings(**env)


def test_age_settings_default_and_accept_decimals() -> None:
    s = _settings()
    assert (s.age_amber_hours, s.age_red_hours) == (24.0, 72.0)
    s = _settings(PRINTCORE_AGE_AMBER_HOURS=" 0.5 ", PRINTCORE_AGE_RED_HOURS="2")
    assert (s.age_amber_hours, s.age_red_hours) == (0.5, 2.0)


# --- a failed email is an event (the live stream reads the event log) -------------------


class _Refusing:
    def __init__(self, error: Exception) -> None:
        self.error = error

    def send(self, message: OutboxMessage) -> None:
        raise self.error


def _message(uow_factory: Factory, job_id: int) -> int:
    with uow_factory() as uow:
        message_id = uow.outbox.add(OutboxMessage.email(
            Notice("submitted", "nobody@university.edu", job_id, {}), T0))
        uow.commit()
    return int(message_id)


def test_a_permanent_failure_logs_one_message_failed_event(uow_factory: Factory) -> None:
    answer = "The SMTP server refused the recipient: 550 5.1.1 User unknown"
    svc = OutboxService(uow=uow_factory, clock=FixedClock(T0),
                        senders={"email": _Refusing(DeliveryError(answer, permanent=True))})
    message_id = _message(uow_factory, 31)
    assert svc.deliver(message_id) == "failed"
    assert svc.deliver(message_id) == "skipped"  # no second event for the same failure
    with uow_factory() as uow:
        [event] = uow.events.for_subject("job", 31)
    assert (event.kind, event.actor.kind, event.actor.name) == (
        "message_failed", "system", "outbox")
    assert event.details == {"message_id": message_id, "channel": "email",
                             "kind": "submitted", "error": answer}


def test_only_giving_up_logs_an_event_not_each_retry(uow_factory: Factory) -> None:
    clock = FixedClock(T0)
    svc = OutboxService(uow=uow_factory, clock=clock,
                        senders={"email": _Refusing(ConnectionRefusedError("refused"))},
                        policy=RetryPolicy(base=timedelta(seconds=1), max_attempts=3))
    message_id = _message(uow_factory, 32)
    outcomes = []
    for _ in range(3):
        outcomes.append(svc.deliver(message_id))
        clock.advance(seconds=10)
    assert outcomes == ["retry", "retry", "failed"]
    with uow_factory() as uow:
        [event] = uow.events.for_subject("job", 32)
    assert event.kind == "message_failed"
    assert event.details["error"].startswith("Gave up after 3 attempts")
