"""Reminders before a confirmation link expires, and the place in the print line, on the
in-memory fakes with a fixed clock (links live 7 days, reminders 48 hours before)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import attrs
import pytest

from printcore import Actor, Job, PrintRequests
from printcore.ports import Notice
from printcore.requests.reminders import REMINDER_KIND, is_due

if TYPE_CHECKING:
    from conftest import Lab

ANA = Actor.staff("Ana Lee", "front-desk")
TTL = timedelta(days=7)
LEAD = timedelta(hours=48)


def jid(job: Job) -> int:
    assert job.id is not None
    return job.id


def reminders(lab: Lab) -> list[Notice]:
    return [n for n in lab.outbox.sent if n.kind == REMINDER_KIND]


def service(lab: Lab, lead: timedelta = LEAD) -> PrintRequests:
    return attrs.evolve(lab.requests, reminder_lead=lead)


def test_nothing_is_due_while_the_link_has_more_than_the_lead_time_left(lab: Lab) -> None:
    lab.approved()
    lab.clock.advance(days=5, seconds=-1)  # 48 h + 1 s left
    assert service(lab).send_confirmation_reminders() == []
    assert reminders(lab) == []


def test_exactly_at_the_lead_time_the_reminder_goes_out_with_the_same_link(lab: Lab) -> None:
    job = lab.approved()
    approved = [n for n in lab.outbox.sent if n.kind == "approved"][-1]
    lab.clock.advance(days=5)  # exactly 48 h left
    before = lab.stored(jid(job))
    assert service(lab).send_confirmation_reminders() == [jid(job)]
    (notice,) = reminders(lab)
    assert notice.to == job.email and notice.job_id == jid(job)
    for key in ("cost_cents", "weight_g", "time_hours", "expires_at", "status_token"):
        assert notice.context[key] == approved.context[key]
    after = lab.stored(jid(job))
    assert before is not None and after is not None
    assert after.version == before.version + 1
    assert after.reminder_sent_at == lab.clock.now() and after.reminded
    assert after.confirmation_nonce == before.confirmation_nonce  # the link is unchanged
    event = lab.events_of(jid(job))[-1]
    assert event.kind == REMINDER_KIND and event.actor.kind == "system"
    assert event.actor.name == "reminders" and event.details["hours_left"] == 48.0
    assert event.from_status is None and event.to_status is None
    # The link in the reminder still confirms the job.
    confirmed = lab.requests.confirm(notice.context["confirm_token"])
    assert confirmed.status == "ready_to_print"


def test_running_twice_sends_once(lab: Lab) -> None:
    job = lab.approved()
    lab.clock.advance(days=6)
    svc = service(lab)
    assert svc.send_confirmation_reminders() == [jid(job)]
    events = len(lab.events_of(jid(job)))
    lab.clock.advance(hours=12)
    assert svc.send_confirmation_reminders() == []
    assert len(reminders(lab)) == 1 and len(lab.events_of(jid(job))) == events


def test_an_expired_link_gets_no_reminder(lab: Lab) -> None:
    job = lab.approved()
    lab.clock.advance(days=7, seconds=1)
    assert service(lab).send_confirmation_reminders() == []
    assert reminders(lab) == []
    stored = lab.stored(jid(job))
    assert stored is not None and stored.reminder_sent_at is None


def test_a_link_at_its_last_moment_still_gets_one(lab: Lab) -> None:
    job = lab.approved()
    lab.clock.advance(days=7)  # confirm() still accepts the link at this instant
    assert service(lab).send_confirmation_reminders() == [jid(job)]


def test_a_resend_gives_a_new_link_and_allows_a_new_reminder(lab: Lab) -> None:
    job = lab.approved()
    lab.clock.advance(days=6)
    svc = service(lab)
    assert svc.send_confirmation_reminders() == [jid(job)]
    first = reminders(lab)[0].context["confirm_token"]
    current = lab.stored(jid(job))
    assert current is not None
    resent = lab.requests.resend_confirmation(jid(job), ANA, current.version)
    assert not resent.reminded
    assert svc.send_confirmation_reminders() == []  # the new link has 7 days
    lab.clock.advance(days=5)
    assert svc.send_confirmation_reminders() == [jid(job)]
    second = reminders(lab)[1].context["confirm_token"]
    assert second != first
    assert lab.requests.check_confirmation(second).id == jid(job)


def test_reminders_off(lab: Lab) -> None:
    lab.approved()
    lab.clock.advance(days=6)
    assert service(lab, timedelta(0)).send_confirmation_reminders() == []
    assert reminders(lab) == []


def test_only_pending_jobs_are_reminded_soonest_expiry_first(lab: Lab) -> None:
    late = lab.approved(student_name="Late Lu")
    lab.clock.advance(hours=1)
    early = lab.approved(student_name="Early Eve")
    lab.requests.confirm(lab.confirm_token(jid(early)))
    lab.clock.advance(hours=1)
    third = lab.approved(student_name="Third Tam")
    lab.clock.advance(days=6)
    assert service(lab).send_confirmation_reminders() == [jid(late), jid(third)]
    assert [n.job_id for n in reminders(lab)] == [jid(late), jid(third)]


def test_a_job_changed_meanwhile_is_skipped_and_the_rest_are_sent(lab: Lab) -> None:
    """The candidate list is read first; a job confirmed before its turn is not reminded."""
    first = lab.approved()
    second = lab.approved(student_name="Second Sam")
    lab.clock.advance(days=6)
    svc = service(lab)
    original = svc.uow

    calls = {"n": 0}

    def uow():  # type: ignore[no-untyped-def]
        calls["n"] += 1
        if calls["n"] == 2:  # after the candidate list, before the first reminder
            lab.requests.confirm(lab.confirm_token(jid(first)))
        return original()

    svc = attrs.evolve(svc, uow=uow)
    assert svc.send_confirmation_reminders() == [jid(second)]


def test_is_due_boundaries() -> None:
    now = datetime(2026, 9, 1, 15, 0, tzinfo=UTC)
    job = Job(student_name="A", email="a@b.edu", discipline="x", class_number="1",
              print_method="filament", color="red", created_at=now, status="pending",
              confirmation_nonce="n1", confirmation_expires_at=now + LEAD)
    assert is_due(job, now, LEAD)
    assert not is_due(job, now - timedelta(seconds=1), LEAD)
    assert is_due(job, now + LEAD, LEAD)
    assert not is_due(job, now + LEAD + timedelta(microseconds=1), LEAD)
    assert not is_due(job, now, timedelta(0))
    assert not is_due(attrs.evolve(job, reminder_nonce="n1"), now, LEAD)
    assert is_due(attrs.evolve(job, reminder_nonce="n0"), now, LEAD)
    assert not is_due(attrs.evolve(job, status="ready_to_print"), now, LEAD)
    assert not is_due(attrs.evolve(job, confirmation_nonce=None), now, LEAD)


# --- the print line ---------------------------------------------------------------------


def test_the_place_in_line_follows_confirmation_order(lab: Lab) -> None:
    svc = lab.requests
    a, b, c = (lab.approved(student_name=n) for n in ("Ann A", "Bob B", "Cat C"))
    assert svc.place_in_line(a) is None  # pending: not in the line yet
    # Confirmed in the order c, a, b: that is the order they are printed in.
    c = svc.confirm(lab.confirm_token(jid(c)))
    lab.clock.advance(minutes=1)
    a = svc.confirm(lab.confirm_token(jid(a)))
    lab.clock.advance(minutes=1)
    b = svc.force_confirm(jid(b), ANA, "said yes at the desk")
    assert b.confirmed_at == lab.clock.now()
    assert [svc.place_in_line(j) for j in (c, a, b)] == [0, 1, 2]
    c = svc.start_print(jid(c), ANA)
    assert svc.place_in_line(c) is None
    assert [svc.place_in_line(svc.get(jid(j))) for j in (a, b)] == [0, 1]
    # A failed print goes back to the line in its old place (confirmed first).
    svc.fail_print(jid(c), ANA, "spaghetti")
    assert [svc.place_in_line(svc.get(jid(j))) for j in (c, a, b)] == [0, 1, 2]


def test_jobs_confirmed_at_the_same_moment_are_ordered_by_id(lab: Lab) -> None:
    svc = lab.requests
    a, b = lab.approved(), lab.approved(student_name="Bea B")
    b = svc.confirm(lab.confirm_token(jid(b)))
    a = svc.confirm(lab.confirm_token(jid(a)))
    assert a.confirmed_at == b.confirmed_at
    assert (svc.place_in_line(a), svc.place_in_line(b)) == (0, 1)


@pytest.mark.parametrize("status", ["uploaded", "pending", "printing", "completed"])
def test_only_a_ready_job_has_a_place(lab: Lab, status: str) -> None:
    assert lab.requests.place_in_line(lab.job_in(status)) is None
