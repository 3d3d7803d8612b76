"""Soft locks on jobs (printcore.requests.locks), on the in-memory fakes with a fixed clock.

Bad inputs tried: an unknown action, a name not on the staff list, a student actor, an
actor without a workstation, an unknown job, releasing someone else's live lock.
"""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from printcore import Actor
from printcore.errors import ConcurrentChangeError, NotFoundError, ValidationError
from printcore.requests.locks import DEFAULT_TTL, JobLock, LockHeldError, decide

if TYPE_CHECKING:
    from conftest import Lab

ANA = Actor.staff("Ana Lee", "front-desk")
BEN = Actor.staff("Ben Okafor", "back-room")
ANA_BACK = Actor.staff(ANA.name, "back-room")


def lock_events(lab: Lab, job_id: int) -> list[str]:
    return [e.kind for e in lab.events_of(job_id) if e.kind.startswith(("lock", "unlock"))]


def a_job(lab: Lab) -> int:
    job = lab.submit()
    assert job.id is not None
    return job.id


def test_take_a_free_lock(lab: Lab) -> None:
    job_id = a_job(lab)
    lock, outcome = lab.requests.locks.take(job_id, ANA, "approve")
    assert outcome == "taken"
    assert (lock.staff_name, lock.workstation, lock.action) == (ANA.name, "front-desk", "approve")
    assert lock.taken_at == lab.clock.now()
    assert lock.expires_at == lab.clock.now() + DEFAULT_TTL
    assert lab.requests.locks.current(job_id) == lock
    assert lock_events(lab, job_id) == ["lock"]
    event = lab.events_of(job_id)[-1]
    assert event.actor == ANA and event.details["action"] == "approve"


def test_heartbeat_moves_the_expiry_without_an_event(lab: Lab) -> None:
    job_id = a_job(lab)
    first, _ = lab.requests.locks.take(job_id, ANA, "approve")
    lab.clock.advance(seconds=30)
    again, outcome = lab.requests.locks.take(job_id, ANA, "approve")
    assert outcome == "refreshed"
    assert again.taken_at == first.taken_at
    assert again.expires_at == lab.clock.now() + DEFAULT_TTL
    assert lock_events(lab, job_id) == ["lock"]


def test_switching_action_is_a_new_take_with_an_event(lab: Lab) -> None:
    job_id = a_job(lab)
    lab.requests.locks.take(job_id, ANA, "approve")
    lock, outcome = lab.requests.locks.take(job_id, ANA, "reject")
    assert (outcome, lock.action) == ("taken", "reject")
    assert lock_events(lab, job_id) == ["lock", "lock"]


def test_held_by_another_is_refused_with_the_holder(lab: Lab) -> None:
    job_id = a_job(lab)
    held, _ = lab.requests.locks.take(job_id, ANA, "approve")
    before = lab.snapshot(job_id)
    with pytest.raises(LockHeldError) as err:
        lab.requests.locks.take(job_id, BEN, "approve")
    assert err.value.lock == held
    assert "Ana Lee at front-desk is approving this job (until 15:02 UTC)" in err.value.message
    assert isinstance(err.value, ConcurrentChangeError)  # HTTP 409
    assert lab.snapshot(job_id) == before
    # the same staff member at another workstation is another holder too
    with pytest.raises(LockHeldError):
        lab.requests.locks.take(job_id, ANA_BACK, "approve")


def test_take_over_is_deliberate_and_recorded(lab: Lab) -> None:
    job_id = a_job(lab)
    lab.requests.locks.take(job_id, ANA, "approve")
    lock, outcome = lab.requests.locks.take(job_id, BEN, "reject", take_over=True)
    assert outcome == "taken_over"
    assert (lock.staff_name, lock.action) == (BEN.name, "reject")
    event = lab.events_of(job_id)[-1]
    assert event.kind == "lock_taken_over"
    assert event.details["previous"] == {"staff_name": ANA.name, "workstation": "front-desk",
                                         "action": "approve"}
    # Ana's heartbeat now fails: she has lost it
    with pytest.raises(LockHeldError):
        lab.requests.locks.take(job_id, ANA, "approve")


def test_an_expired_lock_is_free_for_anyone(lab: Lab) -> None:
    job_id = a_job(lab)
    lab.requests.locks.take(job_id, ANA, "approve")
    lab.clock.advance(seconds=119)
    assert lab.requests.locks.current(job_id) is not None
    lab.clock.advance(seconds=1)
    assert lab.requests.locks.current(job_id) is None
    lock, outcome = lab.requests.locks.take(job_id, BEN, "approve")
    assert (outcome, lock.staff_name) == ("taken", BEN.name)
    assert lock_events(lab, job_id) == ["lock", "lock"]


def test_release_by_the_holder(lab: Lab) -> None:
    job_id = a_job(lab)
    lab.requests.locks.take(job_id, ANA, "approve")
    released = lab.requests.locks.release(job_id, ANA)
    assert released is not None and released.staff_name == ANA.name
    assert lab.requests.locks.current(job_id) is None
    assert lock_events(lab, job_id) == ["lock", "unlock"]
    # releasing again: nothing to do, no error, no event
    assert lab.requests.locks.release(job_id, ANA) is None
    assert lock_events(lab, job_id) == ["lock", "unlock"]


def test_release_by_someone_else_is_refused(lab: Lab) -> None:
    job_id = a_job(lab)
    lab.requests.locks.take(job_id, ANA, "approve")
    with pytest.raises(LockHeldError) as err:
        lab.requests.locks.release(job_id, BEN)
    assert "not yours" in err.value.message
    with pytest.raises(LockHeldError):
        lab.requests.locks.release(job_id, ANA_BACK)
    assert lab.requests.locks.current(job_id) is not None


def test_release_after_expiry_by_anyone_is_quiet(lab: Lab) -> None:
    job_id = a_job(lab)
    lab.requests.locks.take(job_id, ANA, "approve")
    lab.clock.advance(minutes=5)
    assert lab.requests.locks.release(job_id, BEN) is None
    assert lab.db.job_locks == {}
    assert lock_events(lab, job_id) == ["lock"]


def test_configurable_ttl(lab: Lab) -> None:
    job_id = a_job(lab)
    svc = lab.requests
    svc.lock_ttl = timedelta(seconds=10)
    lock, _ = svc.locks.take(job_id, ANA)
    assert lock.expires_at - lock.taken_at == timedelta(seconds=10)
    assert lock.action == "work" and "is working on this job" in lock.describe()


@pytest.mark.parametrize(
    ("actor", "action", "error", "field"),
    [
        (ANA, "steal", ValidationError, "action"),
        (Actor.staff("Nobody", "front-desk"), "approve", ValidationError, "staff_name"),
        (Actor.student("Jane van Doe"), "approve", ValidationError, "workstation"),
        (Actor.staff(ANA.name, None), "approve", ValidationError, "workstation"),
    ],
)
def test_bad_takes_change_nothing(lab: Lab, actor: Actor, action: str,
                                  error: type[Exception], field: str) -> None:
    job_id = a_job(lab)
    before = lab.snapshot(job_id)
    with pytest.raises(error) as err:
        lab.requests.locks.take(job_id, actor, action)
    assert field in getattr(err.value, "fields", {})
    assert lab.snapshot(job_id) == before and lab.db.job_locks == {}


def test_student_actor_with_a_workstation_is_not_staff(lab: Lab) -> None:
    job_id = a_job(lab)
    with pytest.raises(ValidationError) as err:
        lab.requests.locks.take(job_id, Actor("student", ANA.name, "front-desk"))
    assert "staff_name" in err.value.fields


def test_unknown_job(lab: Lab) -> None:
    with pytest.raises(NotFoundError):
        lab.requests.locks.take(999, ANA)
    with pytest.raises(NotFoundError):
        lab.requests.locks.release(999, ANA)
    assert lab.requests.locks.current(999) is None


def test_live_for_leaves_out_expired_and_free(lab: Lab) -> None:
    a, b, c = a_job(lab), a_job(lab), a_job(lab)
    lab.requests.locks.take(a, ANA)
    lab.clock.advance(seconds=100)
    lab.requests.locks.take(b, BEN)
    lab.clock.advance(seconds=30)
    found = lab.requests.locks.live_for([a, b, c, 12345])
    assert set(found) == {b}
    assert lab.requests.locks.live_for([]) == {}


def test_a_concurrent_swap_is_lost_and_retried(lab: Lab) -> None:
    """Two units of work see the lock free; the first commit wins, the second's swap is
    refused at commit, and the retry tells the second who holds it."""
    job_id = a_job(lab)
    mine = lab.uow()
    with mine:
        assert mine.locks.get(job_id) is None
        lock, _ = decide(None, lab.clock.now(), job_id, ANA.name, "front-desk", "approve",
                         DEFAULT_TTL)
        assert mine.locks.swap(job_id, None, lock)
        # Ben takes it in the meantime
        lab.requests.locks.take(job_id, BEN, "approve")
        with pytest.raises(ConcurrentChangeError):
            mine.commit()
    assert lab.requests.locks.current(job_id).staff_name == BEN.name  # type: ignore[union-attr]


def test_decide_rules_are_pure() -> None:
    from datetime import UTC, datetime

    now = datetime(2026, 9, 1, 15, 0, tzinfo=UTC)
    ttl = timedelta(seconds=120)
    mine = JobLock(1, "Ana", "Front desk", "approve", now, now + ttl)
    assert decide(mine, now, 1, "Ana", "Front desk", "approve", ttl)[1] == "refreshed"
    assert decide(mine, now + ttl, 1, "Ben", "Back", "approve", ttl)[1] == "taken"
    with pytest.raises(LockHeldError):
        decide(mine, now, 1, "Ben", "Back", "approve", ttl)
    taken, outcome = decide(mine, now, 1, "Ben", "Back", "approve", ttl, take_over=True)
    assert outcome == "taken_over" and taken.version == 2


# --- a property: any sequence of takes, take-overs, releases and time passing ---------

DESKS = [ANA, BEN, ANA_BACK]
STEPS = st.lists(st.one_of(
    st.tuples(st.just("take"), st.sampled_from(range(3)), st.sampled_from(["approve", "reject"]),
              st.booleans()),
    st.tuples(st.just("release"), st.sampled_from(range(3))),
    st.tuples(st.just("wait"), st.integers(0, 200)),
), max_size=30)


@settings(max_examples=150, deadline=None)
@given(steps=STEPS)
def test_locks_follow_the_rules_against_a_model(steps: list[tuple]) -> None:  # type: ignore[type-arg]
    """A trivially correct model (holder, action, expiry) beside the real service: each
    step either does what the model says (and appends an event exactly when the model
    says) or raises LockHeldError and changes nothing."""
    from datetime import UTC, datetime

    from printcore.memory import FixedClock
    from printcore.ports import StaffMember
    from printcore.requests.job import Job
    from printcore.requests.locks import JobLocks
    from printcore.requests.memory import MemoryDatabase, MemoryUnitOfWork

    db, clock = MemoryDatabase(), FixedClock()
    now0 = datetime(2026, 9, 1, 15, tzinfo=UTC)
    with MemoryUnitOfWork(db) as uow:
        job_id = uow.jobs.add(Job("Ada", "ada@example.edu", "Art", "ART 1", "filament",
                                  "red", now0, updated_at=now0))
        for member in (ANA, BEN):
            uow.staff.add(StaffMember(member.name, True, now0))
        uow.commit()
    locks = JobLocks(lambda: MemoryUnitOfWork(db), clock)

    class _View:  # the two things the loop looks at
        def __init__(self) -> None:
            self.db, self.clock = db, clock

    lab = _View()
    model: tuple[Actor, str, object] | None = None  # holder, action, expires_at
    for step in steps:
        now = lab.clock.now()
        live = model is not None and now < model[2]  # type: ignore[operator]
        events_before = len(lab.db.events)
        if step[0] == "wait":
            lab.clock.advance(seconds=step[1])
            continue
        who = DESKS[step[1]]
        if step[0] == "take":
            action, take_over = step[2], step[3]
            mine = live and model is not None and model[0] == who
            if live and not mine and not take_over:
                with pytest.raises(LockHeldError):
                    locks.take(job_id, who, action)
                assert len(lab.db.events) == events_before
                continue
            lock, outcome = locks.take(job_id, who, action, take_over=take_over)
            quiet = mine and model is not None and model[1] == action
            assert outcome == ("refreshed" if quiet else
                               "taken_over" if live and not mine else "taken")
            assert len(lab.db.events) == events_before + (0 if quiet else 1)
            model = (who, action, lock.expires_at)
        else:
            mine = live and model is not None and model[0] == who
            if live and not mine:
                with pytest.raises(LockHeldError):
                    locks.release(job_id, who)
                assert len(lab.db.events) == events_before
                continue
            released = locks.release(job_id, who)
            assert (released is not None) == bool(live)
            assert len(lab.db.events) == events_before + (1 if live else 0)
            model = None
        current = locks.current(job_id)
        expected = model if model is not None and lab.clock.now() < model[2] else None  # type: ignore[operator]
        assert (current is None) == (expected is None)
        if current is not None and expected is not None:
            assert (current.staff_name, current.workstation, current.action) == (
                expected[0].name, expected[0].workstation, expected[1])
