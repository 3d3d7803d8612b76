"""Issue 14, defect 3: the queue's refusals carry a reason and structured details, and
their messages name no front end's commands and give times in the lab's zone.

Each scenario below drives the in-memory queue into one refusal (bad inputs tried: an
empty job name, estimates of 0 s and 8 days, a remaining time of 0, joining twice,
claiming another printer than the one offered, claiming after the claim window,
claiming a busy printer, claiming out of turn, claiming while the lab is closed,
claiming twice, closing without an outcome, failed without a photo, closing a printer
with nothing on it, closing someone else's print, a finished_at before the start and
after now, report started before a claim / before the previous print is closed / after
the start window, notdone without a claim and with nothing running, any command
without a ticket, cancelling a running print, releasing an idle printer). Every reason
of ``REFUSALS`` is reached at least once (the last test checks it).

On the code before the issue the messages said "/claim X1C-1", "/join first", "/report
started" and "2026-09-05T…+00:00 (UTC)": the checks on the message fail there.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest

from printcore.errors import PrintcoreError
from printcore.memory import FixedClock
from printcore.queue.access_hours import AccessHours
from printcore.queue.memory import MemoryQueueDatabase, MemoryQueueUnitOfWork
from printcore.queue.refusals import REFUSALS, lab_time
from printcore.queue.service import QueuePolicy, QueueService
from printcore.requests.job import Actor

T0 = datetime(2026, 9, 7, 15, 0, tzinfo=UTC)  # Monday 10:00 in Chicago
H1 = timedelta(hours=1)
ZONE = "America/Chicago"
STAFF = Actor("staff", "Sam")


def world(printers: int = 2, access: AccessHours | None = None,
          now: datetime = T0) -> tuple[QueueService, FixedClock]:
    db = MemoryQueueDatabase()
    clock = FixedClock(now)
    svc = QueueService(uow=lambda: MemoryQueueUnitOfWork(db), clock=clock,
                       access=access or AccessHours.always(ZONE), policy=QueuePolicy())
    svc.sync_printers([(f"X1C-{i}", "") for i in range(1, printers + 1)])
    return svc, clock


def _printing(svc: QueueService, member: str = "ann", printer: str = "X1C-1") -> None:
    svc.join(member, member.title(), "part", H1)
    svc.claim(member, printer)
    svc.report_started(member)


def s_job_name(svc: QueueService, clock: FixedClock) -> None:
    svc.join("ann", "Ann", "   ", H1)


def s_estimate(svc: QueueService, clock: FixedClock) -> None:
    svc.join("ann", "Ann", "part", timedelta(days=8))


def s_remaining(svc: QueueService, clock: FixedClock) -> None:
    svc.notdone("ann", timedelta(0))


def s_already_queued(svc: QueueService, clock: FixedClock) -> None:
    svc.join("ann", "Ann", "part", H1)
    svc.join("ann", "Ann", "other", H1)


def s_offered_other(svc: QueueService, clock: FixedClock) -> None:
    svc.join("ann", "Ann", "part", H1)  # offered X1C-1
    svc.claim("ann", "X1C-2")


def s_claim_window(svc: QueueService, clock: FixedClock) -> None:
    svc.join("ann", "Ann", "part", H1)
    clock.advance(minutes=11)
    svc.claim("ann", "X1C-1")


def s_printer_busy(svc: QueueService, clock: FixedClock) -> None:
    _printing(svc, "ann", "X1C-1")
    _printing(svc, "bob", "X1C-2")
    svc.join("cy", "Cy", "part", H1)
    svc.claim("cy", "X1C-1")


def s_not_your_turn(svc: QueueService, clock: FixedClock) -> None:
    # The lab is closed, so the idle printers are offered to nobody yet.
    svc.join("ann", "Ann", "part", H1)
    svc.join("bob", "Bob", "part", H1)
    svc.claim("bob", "X1C-1")


def s_lab_closed(svc: QueueService, clock: FixedClock) -> None:
    svc.join("ann", "Ann", "part", H1)
    svc.claim("ann", "X1C-1")


def s_already_holding(svc: QueueService, clock: FixedClock) -> None:
    svc.join("ann", "Ann", "part", H1)
    svc.claim("ann", "X1C-1")
    svc.claim("ann", "X1C-1")


def s_outcome(svc: QueueService, clock: FixedClock) -> None:
    svc.close("ann", "X1C-1", "meh")


def s_photo(svc: QueueService, clock: FixedClock) -> None:
    svc.close("ann", "X1C-1", "failed")


def s_no_open_print(svc: QueueService, clock: FixedClock) -> None:
    svc.close("ann", "X1C-1", "finished")


def s_not_your_print(svc: QueueService, clock: FixedClock) -> None:
    _printing(svc, "ann", "X1C-1")
    svc.close("bob", "X1C-1", "finished")


def s_finished_before_start(svc: QueueService, clock: FixedClock) -> None:
    _printing(svc, "ann", "X1C-1")
    clock.advance(hours=2)
    svc.close("ann", "X1C-1", "finished", finished_at=T0 - timedelta(minutes=5))


def s_finished_in_future(svc: QueueService, clock: FixedClock) -> None:
    _printing(svc, "ann", "X1C-1")
    clock.advance(hours=2)
    svc.close("ann", "X1C-1", "finished", took=timedelta(hours=3))


def s_end_given_twice(svc: QueueService, clock: FixedClock) -> None:
    _printing(svc, "ann", "X1C-1")
    svc.close("ann", "X1C-1", "finished", finished_at=T0, took=H1)


def s_claim_first(svc: QueueService, clock: FixedClock) -> None:
    svc.join("ann", "Ann", "part", H1)
    svc.report_started("ann")


def s_close_previous(svc: QueueService, clock: FixedClock) -> None:
    _printing(svc, "ann", "X1C-1")
    svc.set_in_service("X1C-2", False, STAFF)
    clock.advance(hours=1, minutes=1)
    svc.join("bob", "Bob", "part", H1)
    svc.claim("bob", "X1C-1")
    svc.report_started("bob")


def s_start_window(svc: QueueService, clock: FixedClock) -> None:
    svc.join("ann", "Ann", "part", H1)
    svc.claim("ann", "X1C-1")
    clock.advance(minutes=16)
    svc.report_started("ann")


def s_notdone_not_claimed(svc: QueueService, clock: FixedClock) -> None:
    svc.join("ann", "Ann", "part", H1)
    svc.notdone("ann")


def s_notdone_nothing(svc: QueueService, clock: FixedClock) -> None:
    svc.join("ann", "Ann", "part", H1)
    svc.claim("ann", "X1C-1")
    svc.notdone("ann")


def s_no_ticket(svc: QueueService, clock: FixedClock) -> None:
    svc.cancel("ann")


def s_print_started(svc: QueueService, clock: FixedClock) -> None:
    _printing(svc, "ann", "X1C-1")
    svc.cancel("ann")


def s_nothing_to_release(svc: QueueService, clock: FixedClock) -> None:
    svc.release_printer("X1C-1", STAFF)


SATURDAY = datetime(2026, 9, 5, 15, 0, tzinfo=UTC)
WEEKDAYS = AccessHours.parse("mon-fri 08:00-22:00", ZONE)

SCENARIOS: list[tuple[str, Callable[[QueueService, FixedClock], None], dict]] = [
    ("job_name_required", s_job_name, {}),
    ("estimate_out_of_range", s_estimate, {}),
    ("remaining_out_of_range", s_remaining, {}),
    ("already_queued", s_already_queued, {}),
    ("offered_other_printer", s_offered_other, {}),
    ("claim_window_ended", s_claim_window, {}),
    ("printer_busy", s_printer_busy, {}),
    ("not_your_turn", s_not_your_turn, {"access": WEEKDAYS, "now": SATURDAY}),
    ("lab_closed", s_lab_closed, {"access": WEEKDAYS, "now": SATURDAY}),
    ("already_holding", s_already_holding, {}),
    ("outcome_required", s_outcome, {}),
    ("photo_required", s_photo, {}),
    ("no_open_print", s_no_open_print, {}),
    ("not_your_print", s_not_your_print, {}),
    ("finished_at_out_of_range", s_finished_before_start, {}),
    ("finished_at_out_of_range", s_finished_in_future, {}),
    ("end_given_twice", s_end_given_twice, {}),
    ("claim_first", s_claim_first, {}),
    ("close_previous_first", s_close_previous, {}),
    ("start_window_ended", s_start_window, {}),
    ("notdone_not_claimed", s_notdone_not_claimed, {}),
    ("notdone_nothing_running", s_notdone_nothing, {}),
    ("no_ticket", s_no_ticket, {}),
    ("print_started", s_print_started, {}),
    ("nothing_to_release", s_nothing_to_release, {}),
]

#: What a front end's command looks like: a slash command, the CLI, an ISO time in UTC.
FRONT_END = re.compile(r"(^|\s|\()/[a-z]|printcore queue|\+00:00|\(UTC\)|\d{4}-\d\d-\d\dT")


def refused(reason: str, scenario: Callable, setup: dict) -> PrintcoreError:
    svc, clock = world(**setup)
    with pytest.raises(PrintcoreError) as caught:
        scenario(svc, clock)
    return caught.value


@pytest.mark.parametrize(("reason", "scenario", "setup"), SCENARIOS,
                         ids=[f"{r}-{s.__name__}" for r, s, _ in SCENARIOS])
def test_each_refusal_has_its_reason_details_and_neutral_words(
        reason: str, scenario: Callable, setup: dict) -> None:
    err = refused(reason, scenario, setup)
    assert err.reason == reason, err.message
    assert set(err.details) == set(REFUSALS[reason]), err.details
    assert not FRONT_END.search(err.message), err.message
    for value in err.details.values():
        if isinstance(value, datetime):
            assert value.utcoffset() == timedelta(0)


def test_the_lab_closed_refusal_says_the_opening_in_the_lab_zone() -> None:
    err = refused("lab_closed", s_lab_closed, {"access": WEEKDAYS, "now": SATURDAY})
    assert err.details["opens_at"] == datetime(2026, 9, 7, 13, 0, tzinfo=UTC)
    assert "Mon 07 Sep 08:00 CDT" in err.message
    assert lab_time(err.details["opens_at"], ZONE) == "Mon 07 Sep 08:00 CDT"


def test_every_reason_is_reached_by_a_scenario() -> None:
    assert {r for r, _, _ in SCENARIOS} == set(REFUSALS)


# --- each front end words every reason in its own terms ------------------------------

SLASH = re.compile(r"(^|\s|\(|`)/[a-z]")


@pytest.mark.parametrize(("reason", "scenario", "setup"), SCENARIOS,
                         ids=[f"{r}-{s.__name__}" for r, s, _ in SCENARIOS])
def test_discord_and_the_cli_word_each_refusal_their_way(
        reason: str, scenario: Callable, setup: dict) -> None:
    from adapters.discord.refusals import refusal as discord_words
    from entrypoints.queue_words import refusal as cli_words

    err = refused(reason, scenario, setup)
    on_discord = discord_words(err, ZONE)
    on_cli = cli_words(err, "ann", ZONE)
    assert "printcore queue" not in on_discord
    assert not SLASH.search(on_cli), on_cli
    for text in (on_discord, on_cli):
        assert "+00:00" not in text and "(UTC)" not in text, text
    if reason == "lab_closed":
        assert "Mon 07 Sep 08:00 CDT" in on_discord and "<t:" in on_discord
        assert "Mon 07 Sep 08:00 CDT" in on_cli
    if reason in ("no_ticket", "claim_first", "close_previous_first", "offered_other_printer"):
        assert SLASH.search(on_discord), on_discord  # a command to use instead
        assert "printcore queue" in on_cli, on_cli


def test_both_word_tables_cover_exactly_the_reasons() -> None:
    from adapters.discord.refusals import WORDS as DISCORD
    from entrypoints.queue_words import WORDS as CLI

    assert set(DISCORD) == set(REFUSALS) == set(CLI)


def test_an_error_without_queue_reason_keeps_its_message() -> None:
    from adapters.discord.refusals import refusal as discord_words
    from entrypoints.queue_words import refusal as cli_words

    err = PrintcoreError("The database is not reachable.")
    assert discord_words(err, ZONE) == cli_words(err, None, ZONE) == err.message
    broken = PrintcoreError("Plain words.", reason="lab_closed", details={})
    assert discord_words(broken, ZONE) == "Plain words."  # details missing: the message
