"""Marking a job reviewed (``PrintRequests.mark_reviewed`` / ``unmark_reviewed``) on the
in-memory fakes: not a state change, one event each, the version bumps.

Bad inputs tried, each of which must leave the job, the event log, the files, the
metadata and the outbox exactly as they were: marking twice and undoing a review that
is not there (409, InvalidTransitionError), a name not on the staff list, a deactivated
member, a student or system actor (422, ValidationError), a stale ``expected_version``
(409, ConcurrentChangeError), an unknown and a deleted job (404, NotFoundError).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from printcore import (
    Actor,
    ConcurrentChangeError,
    InvalidTransitionError,
    JobStatus,
    NotFoundError,
    ValidationError,
)
from printcore.errors import PrintcoreError
from printcore.requests.lifecycle import allowed_events

if TYPE_CHECKING:
    from conftest import Lab

ANA = Actor.staff("Ana Lee", "front-desk")  # the lab fixture's two staff members
BEN = Actor.staff("Ben Okafor", "back-room")


def test_a_new_job_is_not_reviewed(lab: Lab) -> None:
    job = lab.submit()
    assert (job.reviewed_at, job.reviewed_by, job.reviewed) == (None, None, False)


def test_mark_reviewed_then_undo(lab: Lab) -> None:
    svc = lab.requests
    job = lab.submit()
    assert job.id is not None
    before = lab.stored(job.id)
    assert before is not None
    lab.clock.advance(minutes=12)
    reviewed = svc.mark_reviewed(job.id, ANA, expected_version=before.version)
    assert (reviewed.reviewed_at, reviewed.reviewed_by) == (lab.clock.now(), "Ana Lee")
    assert reviewed.reviewed and reviewed.status == "uploaded"
    assert reviewed.version == before.version + 1
    assert reviewed.updated_at == lab.clock.now()
    assert lab.stored(job.id) == reviewed
    assert allowed_events(reviewed) == allowed_events(before)
    event = lab.events_of(job.id)[-1]
    assert (event.kind, event.actor, event.at) == ("review", ANA, lab.clock.now())
    assert (event.from_status, event.to_status, event.details) == (None, None, {})
    assert lab.outbox.sent == [n for n in lab.outbox.sent if n.kind == "submitted"]

    lab.clock.advance(minutes=3)
    undone = svc.unmark_reviewed(job.id, BEN, expected_version=reviewed.version)
    assert (undone.reviewed_at, undone.reviewed_by, undone.reviewed) == (None, None, False)
    assert undone.version == reviewed.version + 1
    event = lab.events_of(job.id)[-1]
    assert (event.kind, event.actor, event.at) == ("unreview", BEN, lab.clock.now())
    assert (event.from_status, event.to_status) == (None, None)
    assert event.details == {"was_reviewed_by": "Ana Lee"}
    assert [e.kind for e in lab.events_of(job.id)] == ["submit", "review", "unreview"]

    # Reviewed again after the undo: by whoever does it now.
    again = svc.mark_reviewed(job.id, BEN)
    assert again.reviewed_by == "Ben Okafor" and again.version == undone.version + 1


@pytest.mark.parametrize(
    "status", ["uploaded", "pending", "rejected", "ready_to_print", "printing", "completed",
               "paid_picked_up"])
def test_every_stored_state_can_be_reviewed_and_keeps_its_state(lab: Lab, status: str) -> None:
    job = lab.job_in(status)
    assert job.id is not None
    reviewed = lab.requests.mark_reviewed(job.id, BEN)
    assert (reviewed.status, reviewed.reviewed_by) == (status, "Ben Okafor")
    assert lab.files.folders_of(reviewed) == {JobStatus(status).folder}
    assert lab.requests.unmark_reviewed(job.id, ANA).status == status


def _refused(lab: Lab, job_id: int, error: type[PrintcoreError], call: object) -> PrintcoreError:
    before = lab.snapshot(job_id)
    with pytest.raises(error) as caught:
        call()  # type: ignore[operator]
    after = lab.snapshot(job_id)
    assert (after.job, after.events, after.files, after.metadata, after.sent) == (
        before.job, before.events, before.files, before.metadata, before.sent)
    return caught.value


def test_marking_twice_is_refused_and_says_by_whom(lab: Lab) -> None:
    job = lab.submit()
    assert job.id is not None
    lab.requests.mark_reviewed(job.id, ANA)
    err = _refused(lab, job.id, InvalidTransitionError,
                   lambda: lab.requests.mark_reviewed(job.id, BEN))
    assert isinstance(err, InvalidTransitionError) and err.event == "review"
    assert err.state == "uploaded"
    when = lab.clock.now().strftime("%Y-%m-%d %H:%M")
    assert err.message == f"Job {job.id} was already marked reviewed by Ana Lee at {when} UTC."


def test_undoing_a_review_that_is_not_there_is_refused(lab: Lab) -> None:
    job = lab.submit()
    assert job.id is not None
    err = _refused(lab, job.id, InvalidTransitionError,
                   lambda: lab.requests.unmark_reviewed(job.id, ANA))
    assert isinstance(err, InvalidTransitionError) and err.event == "unreview"
    assert "not marked reviewed" in err.message


@pytest.mark.parametrize("who", [
    Actor.staff("Nobody Here", "front-desk"),
    Actor.staff("", "front-desk"),
    Actor.student("Jane van Doe"),
    Actor.system(),
    Actor("member", "Ana Lee"),
])
@pytest.mark.parametrize("undo", [False, True])
def test_only_active_staff_may_review(lab: Lab, who: Actor, undo: bool) -> None:
    job = lab.submit()
    assert job.id is not None
    if undo:
        lab.requests.mark_reviewed(job.id, ANA)
    action = lab.requests.unmark_reviewed if undo else lab.requests.mark_reviewed
    err = _refused(lab, job.id, ValidationError, lambda: action(job.id, who))
    assert isinstance(err, ValidationError) and "staff_name" in err.fields


def test_a_deactivated_member_may_not_review(lab: Lab) -> None:
    job = lab.submit()
    assert job.id is not None
    lab.staff.deactivate(BEN.name)
    _refused(lab, job.id, ValidationError, lambda: lab.requests.mark_reviewed(job.id, BEN))


@pytest.mark.parametrize("delta", [-1, 1, 1000])
def test_a_stale_version_is_refused(lab: Lab, delta: int) -> None:
    job = lab.submit()
    assert job.id is not None
    err = _refused(lab, job.id, ConcurrentChangeError,
                   lambda: lab.requests.mark_reviewed(job.id, ANA, job.version + delta))
    assert isinstance(err, ConcurrentChangeError) and err.job_id == job.id
    reviewed = lab.requests.mark_reviewed(job.id, ANA, job.version)
    _refused(lab, job.id, ConcurrentChangeError,
             lambda: lab.requests.unmark_reviewed(job.id, ANA, job.version))
    assert lab.requests.unmark_reviewed(job.id, ANA, reviewed.version).version == job.version + 2


def test_unknown_and_deleted_jobs_are_not_found(lab: Lab) -> None:
    with pytest.raises(NotFoundError):
        lab.requests.mark_reviewed(999, ANA)
    job = lab.submit()
    assert job.id is not None
    lab.requests.delete(job.id, ANA, "A duplicate.")
    events = list(lab.db.events)
    for action in (lab.requests.mark_reviewed, lab.requests.unmark_reviewed):
        with pytest.raises(NotFoundError):
            action(job.id, ANA)
    assert lab.db.events == events


def test_a_review_is_kept_through_state_changes(lab: Lab) -> None:
    job = lab.submit()
    assert job.id is not None
    lab.requests.mark_reviewed(job.id, ANA)
    sliced = lab.add_sliced(job.id)
    approved = lab.requests.approve(job.id, BEN, 10.48, 0.9, sliced.stored_name)
    assert (approved.status, approved.reviewed_by) == ("pending", "Ana Lee")
