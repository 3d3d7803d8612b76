"""Correcting an approved job's quote before the student confirms (issue 13, "Admin
overrides"): ``PrintRequests.requote`` and the rule ``lifecycle.check_requote``; and the
reason a delete now needs.

Bad inputs tried: a requote in every state but pending (uploaded, rejected, ready to
print, printing, completed, paid and picked up, deleted); a weight of 0, -1, NaN, inf,
above the maximum, True, None, "12"; a time of 0, -2, inf, above 720 h, None; a reason
"", "   ", None, 501 characters; a cost of -1, above the maximum, 1.5, True, "300"; the
same quote as now; a stale version; a student, an unknown and a deactivated staff member;
a delete with no reason, "  ", None. Each is refused with the right error and changes
nothing (job, events, files, metadata.json, outbox).
"""

from __future__ import annotations

import math
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import pytest

from printcore import (
    Actor,
    ConcurrentChangeError,
    InvalidTransitionError,
    NotFoundError,
    TokenUsedError,
    ValidationError,
)
from printcore.requests.lifecycle import (
    MAX_OVERRIDE_REASON,
    MAX_QUOTE_CENTS,
    OVERRIDES,
    allowed_events,
    allowed_overrides,
)
from printcore.requests.pricing import MAX_GRAMS, Pricing

if TYPE_CHECKING:
    from conftest import Lab

ANA = Actor.staff("Ana Lee", "front-desk")
BEN = Actor.staff("Ben Okafor", "back-room")
STATES = ("uploaded", "pending", "rejected", "ready_to_print", "printing", "completed",
          "paid_picked_up")


def _id(job: Any) -> int:
    assert job.id is not None
    return int(job.id)


def assert_unchanged(lab: Lab, job_id: int, before: Any) -> None:
    after = lab.snapshot(job_id)
    assert after.job == before.job, "the stored job changed"
    assert after.events == before.events, "the event log changed"
    assert after.files == before.files, "the stored files changed"
    assert after.metadata == before.metadata, "metadata.json changed"
    assert after.sent == before.sent, "a notice was sent"


# --- the happy paths -------------------------------------------------------------------


def test_requote_recomputes_the_cost_and_sends_a_new_link(lab: Lab) -> None:
    job = lab.job_in("pending")
    job_id = _id(job)
    old_token = lab.confirm_token(job_id)
    assert (job.weight_g, job.time_hours, job.cost_cents) == (10.48, 1.0, 300)
    lab.clock.advance(hours=3)

    new = lab.requests.requote(job_id, BEN, 42.0, 2.2, "Re-sliced: the supports were missing.",
                               expected_version=job.version)

    assert new.status == "pending" and new.version == job.version + 1
    assert (new.weight_g, new.time_hours) == (42.0, 2.5)  # rounded up to the half hour
    assert new.cost_cents == Pricing().cost_cents("filament", 42.0) == 420
    assert new.confirmation_expires_at == lab.clock.now() + timedelta(days=7)
    event = lab.events_of(job_id)[-1]
    assert (event.kind, event.actor, event.at) == ("requote", BEN, lab.clock.now())
    assert (event.from_status, event.to_status) == (None, None)  # not a state change
    assert event.details["old"] == {"weight_g": 10.48, "time_hours": 1.0, "cost_cents": 300}
    assert event.details["new"] == {"weight_g": 42.0, "time_hours": 2.5, "cost_cents": 420}
    assert event.details["reason"] == "Re-sliced: the supports were missing."
    assert event.details["cost_source"] == "pricing"
    notice = lab.outbox.sent[-1]
    assert (notice.kind, notice.to, notice.job_id) == ("requoted", job.email, job_id)
    assert (notice.context["cost_cents"], notice.context["old_cost_cents"]) == (420, 300)
    assert notice.context["reason"] == "Re-sliced: the supports were missing."
    new_token = notice.context["confirm_token"]
    assert new_token != old_token
    assert lab.files.metadata  # metadata.json rewritten with the job (no folder move)
    assert lab.files.folders_of(new) == {"Pending"}

    # The old link is refused as replaced, and says by which requote; the new one works.
    with pytest.raises(TokenUsedError):
        lab.requests.check_confirmation(old_token)
    with pytest.raises(TokenUsedError):
        lab.requests.confirm(old_token)
    replaced = lab.requests.replacing_requote(old_token)
    assert replaced is not None and replaced.details["reason"] == event.details["reason"]
    assert lab.requests.replacing_requote(new_token) is None
    assert lab.requests.confirm(new_token).status == "ready_to_print"
    # Confirmed, the old link is still "used", and the job is no longer pending.
    with pytest.raises(TokenUsedError):
        lab.requests.confirm(old_token)


def test_a_cost_given_by_hand_is_kept_and_recorded_as_staff(lab: Lab) -> None:
    job_id = _id(lab.job_in("pending"))
    job = lab.requests.requote(job_id, ANA, 10.48, 0.9, "Lab's fault: reprint at cost 0.", 0)
    assert (job.weight_g, job.time_hours, job.cost_cents) == (10.48, 1.0, 0)
    assert lab.events_of(job_id)[-1].details["cost_source"] == "staff"
    job = lab.requests.requote(job_id, ANA, 10.48, 0.9, "Agreed price.", MAX_QUOTE_CENTS)
    assert job.cost_cents == MAX_QUOTE_CENTS


def test_a_link_resent_after_a_requote_is_not_called_a_new_quote(lab: Lab) -> None:
    job_id = _id(lab.job_in("pending"))
    lab.requests.requote(job_id, ANA, 20.0, 1.0, "Re-sliced.")
    requoted = lab.outbox.sent[-1].context["confirm_token"]
    lab.clock.advance(minutes=5)
    lab.requests.resend_confirmation(job_id, ANA)
    with pytest.raises(TokenUsedError):
        lab.requests.confirm(requoted)
    assert lab.requests.replacing_requote(requoted) is None  # replaced by a resend only


def test_overrides_offered_follow_the_state(lab: Lab) -> None:
    for state in STATES:
        job = lab.job_in(state)
        offered = allowed_overrides(job)
        assert offered == [o for o in OVERRIDES if o in allowed_events(job)
                           or (o == "requote" and state == "pending")], state
        assert ("requote" in offered) == (state == "pending")


# --- refusals --------------------------------------------------------------------------


@pytest.mark.parametrize("state", [s for s in STATES if s != "pending"])
def test_requote_is_refused_outside_pending_with_what_to_do(lab: Lab, state: str) -> None:
    job_id = _id(lab.job_in(state))
    before = lab.snapshot(job_id)
    with pytest.raises(InvalidTransitionError) as info:
        lab.requests.requote(job_id, ANA, 20.0, 1.0, "Re-sliced.")
    assert (info.value.event, info.value.state) == ("requote", state)
    message = str(info.value)
    if state == "uploaded":
        assert "approve it" in message
    elif state == "rejected":
        assert "no quote to correct" in message
    else:
        assert "already confirmed" in message and "pickup" in message
    assert_unchanged(lab, job_id, before)


def test_requote_of_a_deleted_job_is_not_found(lab: Lab) -> None:
    job_id = _id(lab.job_in("pending"))
    lab.requests.delete(job_id, ANA, "Duplicate of another request.")
    with pytest.raises(NotFoundError):
        lab.requests.requote(job_id, ANA, 20.0, 1.0, "Re-sliced.")


BAD: list[tuple[dict[str, Any], str]] = [
    *(({"weight_g": w}, "weight_g")
      for w in (0, -1, math.nan, math.inf, MAX_GRAMS + 1, True, None, "12")),
    *(({"time_hours": h}, "time_hours") for h in (0, -2.0, math.inf, 720.5, None)),
    *(({"reason": r}, "reason") for r in ("", "   ", None, "x" * (MAX_OVERRIDE_REASON + 1))),
    *(({"cost_cents": c}, "cost_cents") for c in (-1, MAX_QUOTE_CENTS + 1, 1.5, True, "300")),
    ({"weight_g": 10.48, "time_hours": 0.9}, "weight_g"),  # the same quote as now
    ({"weight_g": 10.48, "time_hours": 1.0, "cost_cents": 300}, "weight_g"),  # same, by hand
]


@pytest.mark.parametrize(("bad", "field"), BAD)
def test_bad_values_are_refused_naming_the_field(
    lab: Lab, bad: dict[str, Any], field: str
) -> None:
    job_id = _id(lab.job_in("pending"))
    values: dict[str, Any] = {"weight_g": 20.0, "time_hours": 1.5, "reason": "Re-sliced.",
                              "cost_cents": None, **bad}
    before = lab.snapshot(job_id)
    with pytest.raises(ValidationError) as info:
        lab.requests.requote(job_id, ANA, **values)
    assert field in info.value.fields
    assert_unchanged(lab, job_id, before)


def test_an_unchanged_quote_points_to_resend(lab: Lab) -> None:
    job_id = _id(lab.job_in("pending"))
    with pytest.raises(ValidationError) as info:
        lab.requests.requote(job_id, ANA, 10.48, 1.0, "Same again.")
    assert "Resend confirmation link" in info.value.fields["weight_g"]


def test_a_stale_version_and_non_staff_are_refused(lab: Lab) -> None:
    job = lab.job_in("pending")
    job_id = _id(job)
    lab.staff.add("Cy Former")
    lab.staff.deactivate("Cy Former")
    before = lab.snapshot(job_id)
    with pytest.raises(ConcurrentChangeError):
        lab.requests.requote(job_id, ANA, 20.0, 1.0, "Re-sliced.", None, job.version - 1)
    for outsider in (Actor.student("Jane"), Actor.staff("Nobody", "x"),
                     Actor.staff("Cy Former", "front-desk")):
        with pytest.raises(ValidationError):
            lab.requests.requote(job_id, outsider, 20.0, 1.0, "Re-sliced.")
    assert_unchanged(lab, job_id, before)


# --- delete needs a reason ---------------------------------------------------------------


@pytest.mark.parametrize("reason", ["", "  ", None])
@pytest.mark.parametrize("state", ["uploaded", "pending"])
def test_delete_without_a_reason_is_refused(lab: Lab, state: str, reason: Any) -> None:
    job_id = _id(lab.job_in(state))
    before = lab.snapshot(job_id)
    with pytest.raises(ValidationError) as info:
        lab.requests.delete(job_id, ANA, reason)
    assert "reason" in info.value.fields
    assert_unchanged(lab, job_id, before)


def test_delete_records_who_when_and_why(lab: Lab) -> None:
    job_id = _id(lab.job_in("pending"))
    lab.clock.advance(hours=1)
    lab.requests.delete(job_id, BEN, "  Submitted twice (see #1).  ")
    event = lab.events_of(job_id)[-1]
    assert (event.kind, event.actor, event.at) == ("delete", BEN, lab.clock.now())
    assert event.details == {"reason": "Submitted twice (see #1)."}
