"""PrintRequests on the in-memory fakes: the whole walk, each staff action, and refusals
that must leave the database, the event log, the files and the outbox exactly as they were."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import attrs
import pytest

from printcore import (
    REJECTION_REASONS,
    Actor,
    ConcurrentChangeError,
    InvalidTransitionError,
    Job,
    JobStatus,
    NotFoundError,
    PrintRequests,
    Submission,
    TokenExpiredError,
    TokenTamperedError,
    TokenUsedError,
    ValidationError,
)
from printcore.memory import MemorySigner
from printcore.requests.memory import MemoryDatabase, MemoryFileStore, MemoryUnitOfWork

if TYPE_CHECKING:
    from conftest import Lab

ANA = Actor.staff("Ana Lee", "front-desk")
BEN = Actor.staff("Ben Okafor", "back-room")


def jid(job: Job) -> int:
    assert job.id is not None
    return job.id


def assert_unchanged(lab: Lab, job_id: int, before: Any) -> None:
    after = lab.snapshot(job_id)
    assert after.job == before.job, "the stored job changed"
    assert after.events == before.events, "the event log changed"
    assert after.files == before.files, "the stored files changed"
    assert after.metadata == before.metadata, "metadata.json changed"
    assert after.sent == before.sent, "a notice was sent"


# --- the whole walk ---------------------------------------------------------------------


def test_a_print_request_from_upload_to_pickup(lab: Lab) -> None:
    svc = lab.requests
    t0 = lab.clock.now()

    # The student submits.
    job = lab.submit()
    job_id = jid(job)
    base = "JaneVanDoe_Filament_LightBlue_1"
    assert (job.status, job.created_at) == ("uploaded", t0)
    assert [f.stored_name for f in job.files] == [f"{base}.stl"]
    assert job.files[0].original_name == "bracket.stl"
    assert job.files[0].uploaded_at == t0
    assert lab.files.folders_of(job) == {"Uploaded"}
    assert lab.files.staged == {}
    assert lab.stored(job_id) == job
    version = job.version

    # Staff add the sliced file.
    lab.clock.advance(hours=2)
    sliced = lab.add_sliced(job_id, ANA)
    assert sliced.stored_name == f"{base}_sliced.gcode.3mf"
    assert sliced.role == "sliced"
    assert sliced.estimate is not None and sliced.estimate.grams == 10.48
    assert sliced.uploaded_at == lab.clock.now()
    job = svc.get(job_id)
    assert job.version == version + 1
    assert job.latest_estimate == sliced.estimate
    assert lab.files.folders_of(job) == {"Uploaded"}
    version = job.version

    steps: list[tuple[str, Callable[[], Job], str, str, Actor | None]] = [
        (
            "approve",
            lambda: svc.approve(job_id, ANA, 10.48, 0.9, sliced.stored_name),
            "pending",
            "Pending",
            ANA,
        ),
        (
            "confirm",
            lambda: svc.confirm(lab.confirm_token(job_id)),
            "ready_to_print",
            "ReadyToPrint",
            None,
        ),
        (
            "start_print",
            lambda: svc.start_print(job_id, BEN, printer=" Prusa MK4 #2 "),
            "printing",
            "Printing",
            BEN,
        ),
        ("complete", lambda: svc.complete(job_id, BEN), "completed", "Completed", BEN),
        (
            "pick_up",
            lambda: svc.pick_up(job_id, ANA, 11.2, "TXN-0042", "Jane van Doe"),
            "paid_picked_up",
            "PaidPickedUp",
            ANA,
        ),
    ]
    for kind, action, status, folder, actor in steps:
        lab.clock.advance(minutes=30)
        events_before = len(lab.events_of(job_id))
        old_status = job.status
        job = action()
        assert job.status == status
        assert job.version == version + 1, kind
        version = job.version
        assert job.updated_at == lab.clock.now()
        assert lab.stored(job_id) == job
        assert lab.files.folders_of(job) == {folder}
        assert set(lab.files.metadata) == {f"{folder}/{base}"}
        events = lab.events_of(job_id)
        assert len(events) == events_before + 1, kind
        event = events[-1]
        assert (event.kind, event.from_status, event.to_status) == (kind, old_status, status)
        assert event.at == lab.clock.now()
        expected_actor = actor or Actor.student("Jane van Doe")
        assert event.actor == expected_actor
        if actor is not None:
            assert (event.actor.kind, event.actor.workstation) == ("staff", actor.workstation)

    assert job.weight_g == 10.48
    assert job.time_hours == 1.0
    assert job.cost_cents == 300
    assert job.authoritative_file == sliced.stored_name
    assert job.confirmation_nonce is None
    assert job.printer == "Prusa MK4 #2"
    assert job.failed_attempts == 0
    payment = job.active_payment
    assert payment is not None
    assert (payment.grams, payment.amount_cents, payment.txn_no) == (11.2, 300, "TXN-0042")
    assert (payment.picked_up_by, payment.recorded_by) == ("Jane van Doe", "Ana Lee")
    assert payment.recorded_at == lab.clock.now()

    kinds = [e.kind for e in lab.events_of(job_id)]
    assert kinds == [
        "submit",
        "add_sliced_file",
        "approve",
        "confirm",
        "start_print",
        "complete",
        "pick_up",
    ]
    ids = [e.id for e in lab.events_of(job_id)]
    assert ids == sorted(ids) and len(set(ids)) == len(ids)

    assert [(n.kind, n.to, n.job_id) for n in lab.outbox.sent] == [
        (kind, "jane.doe@university.edu", job_id)
        for kind in ("submitted", "approved", "confirmed", "completed", "payment_receipt")
    ]
    approved = lab.outbox.sent[1].context
    assert approved["cost_cents"] == 300 and approved["time_hours"] == 1.0
    assert approved["expires_at"] == (t0 + timedelta(hours=2, minutes=30, days=7)).isoformat()
    assert lab.outbox.sent[-1].context["amount_cents"] == 300
    assert svc.job_for_status_token(lab.outbox.sent[0].context["status_token"]) == svc.get(job_id)


def test_each_job_gets_its_own_id_and_folder(lab: Lab) -> None:
    first = lab.submit(student_name="Ana María", color="red")
    second = lab.submit(student_name="Bo Chen", print_method="resin", color="clear")
    assert (jid(first), jid(second)) == (1, 2)
    assert set(lab.files.files) == {
        "Uploaded/AnaMaria_Filament_Red_1/AnaMaria_Filament_Red_1.stl",
        "Uploaded/BoChen_Resin_Clear_2/BoChen_Resin_Clear_2.stl",
    }
    assert lab.requests.counts() == {"uploaded": 2}
    assert [jid(j) for j in lab.requests.list_jobs("uploaded")] == [1, 2]
    with pytest.raises(ValidationError):
        lab.requests.list_jobs("nonsense")


def test_an_invalid_submission_stores_nothing_and_discards_the_upload(
    lab: Lab, make_submission: Callable[..., Submission]
) -> None:
    a_submission = make_submission
    with pytest.raises(ValidationError) as info:
        lab.requests.submit(a_submission(email="", color=""), lab.stage_model())
    assert set(info.value.fields) == {"email", "color"}
    assert lab.db.jobs == {} and lab.db.events == [] and lab.files.files == {}
    assert lab.files.staged == {}
    assert lab.outbox.sent == []


def test_sliced_files_are_numbered_and_allowed_until_printing(lab: Lab) -> None:
    job = lab.job_in("pending")
    job_id = jid(job)
    second = lab.add_sliced(job_id)
    assert second.stored_name.endswith("_sliced2.gcode.3mf")
    assert lab.files.exists(lab.requests.get(job_id), second.stored_name)
    assert lab.files.folders_of(job) == {"Pending"}
    printing = lab.job_in("printing")
    before = lab.snapshot(jid(printing))
    with pytest.raises(InvalidTransitionError):
        lab.requests.add_sliced_file(jid(printing), ANA, lab.stage_sliced(), None)
    assert_unchanged(lab, jid(printing), before)
    assert lab.files.staged == {}


# --- reject, force_confirm, fail, reverts, delete ----------------------------------------


def test_reject_with_listed_and_custom_reasons(lab: Lab) -> None:
    job_id = jid(lab.submit())
    listed = [REJECTION_REASONS[0], REJECTION_REASONS[2]]
    job = lab.requests.reject(job_id, BEN, reasons=listed, custom_reason="  Add a 2 mm fillet. ")
    assert job.status == "rejected"
    assert job.rejection_reasons == [*listed, "Add a 2 mm fillet."]
    assert lab.files.folders_of(job) == {"Rejected"}
    event = lab.events_of(job_id)[-1]
    assert (event.kind, event.actor, event.details["reasons"]) == (
        "reject",
        BEN,
        job.rejection_reasons,
    )
    notice = lab.outbox.sent[-1]
    assert (notice.kind, notice.to) == ("rejected", "jane.doe@university.edu")
    assert notice.context["reasons"] == job.rejection_reasons


def test_a_custom_reason_alone_is_enough(lab: Lab) -> None:
    job = lab.requests.reject(jid(lab.submit()), ANA, custom_reason="Not a 3D model.")
    assert job.rejection_reasons == ["Not a 3D model."]


@pytest.mark.parametrize(
    ("reasons", "custom"), [((), None), ((), "   "), (("", "  "), ""), ((), "\n")]
)
def test_reject_needs_a_reason(lab: Lab, reasons: tuple[str, ...], custom: str | None) -> None:
    job_id = jid(lab.submit())
    before = lab.snapshot(job_id)
    with pytest.raises(ValidationError) as info:
        lab.requests.reject(job_id, ANA, reasons=reasons, custom_reason=custom)
    assert "reasons" in info.value.fields
    assert_unchanged(lab, job_id, before)


def test_force_confirm_without_the_students_link(lab: Lab) -> None:
    job_id = jid(lab.job_in("pending"))
    token = lab.confirm_token(job_id)
    job = lab.requests.force_confirm(job_id, ANA, "Student agreed at the front desk.")
    assert job.status == "ready_to_print"
    assert job.confirmation_nonce is None
    event = lab.events_of(job_id)[-1]
    assert (event.kind, event.actor.name, event.details) == (
        "force_confirm",
        "Ana Lee",
        {"reason": "Student agreed at the front desk."},
    )
    before = lab.snapshot(job_id)
    with pytest.raises(TokenUsedError):
        lab.requests.confirm(token)
    assert_unchanged(lab, job_id, before)


@pytest.mark.parametrize(
    ("status", "action"),
    [
        ("pending", "force_confirm"),
        ("printing", "fail_print"),
        ("completed", "revert_completion"),
        ("paid_picked_up", "revert_pickup"),
    ],
)
@pytest.mark.parametrize("reason", ["", "   ", None])
def test_actions_that_need_a_reason(lab: Lab, status: str, action: str, reason: Any) -> None:
    job_id = jid(lab.job_in(status))
    before = lab.snapshot(job_id)
    with pytest.raises(ValidationError) as info:
        getattr(lab.requests, action)(job_id, ANA, reason)
    assert "reason" in info.value.fields
    assert_unchanged(lab, job_id, before)


def test_a_failed_print_goes_back_to_the_queue_and_is_counted(lab: Lab) -> None:
    job_id = jid(lab.job_in("printing"))
    job = lab.requests.fail_print(job_id, BEN, "Spaghetti: bed adhesion lost.")
    assert (job.status, job.failed_attempts) == ("ready_to_print", 1)
    assert lab.files.folders_of(job) == {"ReadyToPrint"}
    lab.requests.start_print(job_id, BEN, printer="Bambu X1C")
    job = lab.requests.fail_print(job_id, BEN, "Nozzle clog.")
    assert job.failed_attempts == 2
    assert [e.details.get("reason") for e in lab.events_of(job_id) if e.kind == "fail_print"] == [
        "Spaghetti: bed adhesion lost.",
        "Nozzle clog.",
    ]


def test_revert_completion(lab: Lab) -> None:
    job_id = jid(lab.job_in("completed"))
    job = lab.requests.revert_completion(job_id, ANA, "Marked complete by mistake.")
    assert job.status == "printing"
    assert lab.files.folders_of(job) == {"Printing"}
    assert lab.events_of(job_id)[-1].to_status == "printing"


def test_revert_pickup_voids_the_payment_and_never_deletes_it(lab: Lab) -> None:
    job = lab.job_in("paid_picked_up")
    job_id = jid(job)
    paid = job.payments[0]
    lab.clock.advance(days=1)
    job = lab.requests.revert_pickup(job_id, BEN, " Wrong transaction number. ")
    assert job.status == "completed"
    assert lab.files.folders_of(job) == {"Completed"}
    assert len(job.payments) == 1
    assert job.active_payment is None
    voided = job.payments[0]
    assert (voided.voided_at, voided.void_reason) == (lab.clock.now(), "Wrong transaction number.")
    assert attrs.evolve(voided, voided_at=None, void_reason=None) == paid

    job = lab.requests.pick_up(job_id, BEN, 11.2, "TXN-0043", "Jane van Doe")
    assert len(job.payments) == 2
    assert job.payments[0] == voided
    assert job.active_payment is not None and job.active_payment.txn_no == "TXN-0043"


@pytest.mark.parametrize("status", ["uploaded", "pending"])
def test_delete_removes_the_job_and_its_files_but_keeps_the_history(lab: Lab, status: str) -> None:
    job = lab.job_in(status)
    job_id = jid(job)
    other = lab.submit(student_name="Someone Else")
    history = lab.events_of(job_id)
    deleted = lab.requests.delete(job_id, ANA, "A duplicate of another request.")
    assert deleted.status == "deleted"
    assert lab.files.folders_of(job) == set()
    assert not any(key.endswith(f"_{job_id}") for key in lab.files.metadata)
    assert job_id not in lab.db.jobs
    with pytest.raises(NotFoundError):
        lab.requests.get(job_id)
    events = lab.events_of(job_id)
    assert events[:-1] == history
    assert (events[-1].kind, events[-1].from_status, events[-1].to_status) == (
        "delete",
        status,
        "deleted",
    )
    assert lab.files.folders_of(other) == {"Uploaded"}
    with pytest.raises(NotFoundError):
        lab.requests.start_print(job_id, ANA)


@pytest.mark.parametrize("status", ["rejected", "ready_to_print", "printing", "completed"])
def test_delete_is_refused_once_the_job_is_under_way(lab: Lab, status: str) -> None:
    job_id = jid(lab.job_in(status))
    before = lab.snapshot(job_id)
    with pytest.raises(InvalidTransitionError):
        lab.requests.delete(job_id, ANA, "A duplicate.")
    assert_unchanged(lab, job_id, before)


def test_unknown_jobs(lab: Lab) -> None:
    with pytest.raises(NotFoundError):
        lab.requests.get(99)
    with pytest.raises(NotFoundError):
        lab.requests.complete(99, ANA)
    with pytest.raises(NotFoundError):
        lab.requests.record_event(99, ANA, "opened_in_slicer", {})


def test_record_event_appends_without_changing_the_job(lab: Lab) -> None:
    job = lab.job_in("ready_to_print")
    event = lab.requests.record_event(jid(job), ANA, "opened_in_slicer", {"file": "x"})
    assert lab.events_of(jid(job))[-1] == attrs.evolve(event, id=len(lab.db.events))
    assert lab.stored(jid(job)) == job


# --- the confirmation link --------------------------------------------------------------


def test_check_confirmation_shows_the_job_without_using_the_link(lab: Lab) -> None:
    job_id = jid(lab.job_in("pending"))
    token = lab.confirm_token(job_id)
    assert lab.requests.check_confirmation(token).status == "pending"
    assert lab.requests.confirm(token).status == "ready_to_print"
    with pytest.raises(TokenUsedError):
        lab.requests.check_confirmation(token)


def _tampered(token: str) -> Iterable[str]:
    body, _, mac = token.rpartition(".")
    payload = json.loads(body)
    yield (
        json.dumps({**payload, "job": payload["job"] + 1}, sort_keys=True, separators=(",", ":"))
        + "."
        + mac
    )
    yield (
        json.dumps(
            {**payload, "exp": payload["exp"] + 10**6}, sort_keys=True, separators=(",", ":")
        )
        + "."
        + mac
    )
    yield body + "." + ("0" if mac[0] != "0" else "1") + mac[1:]
    yield token[:-1]
    yield token[:10]
    yield ""
    yield MemorySigner("another lab's secret").dumps("confirm", payload)


def test_a_tampered_link_is_refused_and_changes_nothing(lab: Lab) -> None:
    job_id = jid(lab.job_in("pending"))
    lab.submit(student_name="Other Student")  # job 2, so job + 1 exists
    before = lab.snapshot(job_id)
    for bad in _tampered(lab.confirm_token(job_id)):
        with pytest.raises(TokenTamperedError):
            lab.requests.confirm(bad)
        with pytest.raises(TokenTamperedError):
            lab.requests.check_confirmation(bad)
    assert_unchanged(lab, job_id, before)


def test_a_status_link_is_not_a_confirmation_link(lab: Lab) -> None:
    job_id = jid(lab.job_in("pending"))
    status_token = lab.outbox.sent[0].context["status_token"]
    before = lab.snapshot(job_id)
    with pytest.raises(TokenTamperedError):
        lab.requests.confirm(status_token)
    assert_unchanged(lab, job_id, before)
    with pytest.raises(TokenTamperedError):
        lab.requests.job_for_status_token(lab.confirm_token(job_id))


def test_an_expired_link_is_refused_and_changes_nothing(lab: Lab) -> None:
    job_id = jid(lab.job_in("pending"))
    token = lab.confirm_token(job_id)
    lab.clock.advance(days=7, seconds=1)
    before = lab.snapshot(job_id)
    with pytest.raises(TokenExpiredError):
        lab.requests.confirm(token)
    assert_unchanged(lab, job_id, before)
    # Staff can still confirm on the student's word.
    assert lab.requests.force_confirm(job_id, ANA, "Link expired; student confirmed by phone.")


def test_a_link_works_until_its_expiry(lab: Lab) -> None:
    job_id = jid(lab.job_in("pending"))
    lab.clock.advance(days=7)
    assert lab.requests.confirm(lab.confirm_token(job_id)).status == "ready_to_print"


def test_the_link_lifetime_is_configurable(lab: Lab) -> None:
    svc = attrs.evolve(lab.requests, confirmation_ttl=timedelta(hours=1))
    job_id = jid(lab.submit())
    sliced = lab.add_sliced(job_id)
    svc.approve(job_id, ANA, 20, 2, sliced.stored_name)
    lab.clock.advance(hours=1, seconds=1)
    with pytest.raises(TokenExpiredError):
        svc.confirm(lab.confirm_token(job_id))


def test_a_used_link_cannot_be_used_again(lab: Lab) -> None:
    job_id = jid(lab.job_in("pending"))
    token = lab.confirm_token(job_id)
    lab.requests.confirm(token)
    before = lab.snapshot(job_id)
    with pytest.raises(TokenUsedError):
        lab.requests.confirm(token)
    assert_unchanged(lab, job_id, before)


def test_a_superseded_link_is_refused(lab: Lab) -> None:
    """A correctly signed link whose nonce is not the job's current one (an older email)."""
    job_id = jid(lab.job_in("pending"))
    current = lab.signer.loads("confirm", lab.confirm_token(job_id))
    older = lab.signer.dumps("confirm", {**current, "nonce": "an-older-nonce"})
    before = lab.snapshot(job_id)
    with pytest.raises(TokenUsedError):
        lab.requests.confirm(older)
    assert_unchanged(lab, job_id, before)


def test_a_link_for_a_deleted_job(lab: Lab) -> None:
    job_id = jid(lab.job_in("pending"))
    token = lab.confirm_token(job_id)
    lab.requests.delete(job_id, ANA, "A duplicate.")
    with pytest.raises(NotFoundError):
        lab.requests.confirm(token)


# --- who may act ------------------------------------------------------------------------

STAFF_ACTIONS: dict[str, tuple[str, Callable[[PrintRequests, int, Actor, Lab], object]]] = {
    "add_sliced_file": (
        "uploaded",
        lambda s, j, a, lab: s.add_sliced_file(j, a, lab.stage_sliced(), None),
    ),
    "approve": ("uploaded", lambda s, j, a, lab: s.approve(j, a, 10, 1, _sliced_name(lab, j))),
    "reject": ("uploaded", lambda s, j, a, lab: s.reject(j, a, reasons=[REJECTION_REASONS[0]])),
    "delete": ("uploaded", lambda s, j, a, lab: s.delete(j, a, "duplicate")),
    "force_confirm": ("pending", lambda s, j, a, lab: s.force_confirm(j, a, "said yes")),
    "start_print": ("ready_to_print", lambda s, j, a, lab: s.start_print(j, a)),
    "fail_print": ("printing", lambda s, j, a, lab: s.fail_print(j, a, "clog")),
    "complete": ("printing", lambda s, j, a, lab: s.complete(j, a)),
    "pick_up": ("completed", lambda s, j, a, lab: s.pick_up(j, a, 12, "T1", "Jane")),
    "revert_completion": ("completed", lambda s, j, a, lab: s.revert_completion(j, a, "oops")),
    "revert_pickup": ("paid_picked_up", lambda s, j, a, lab: s.revert_pickup(j, a, "oops")),
}


def _sliced_name(lab: Lab, job_id: int) -> str:
    sliced = lab.requests.get(job_id).sliced_files
    return sliced[-1].stored_name if sliced else "none"


def _job_for(lab: Lab, status: str) -> int:
    job_id = jid(lab.job_in(status))
    if status == "uploaded":
        lab.add_sliced(job_id)
    return job_id


@pytest.mark.parametrize("action", sorted(STAFF_ACTIONS))
@pytest.mark.parametrize(
    "who",
    [
        Actor.staff("Mallory", "front-desk"),
        Actor.staff("ana lee"),
        Actor.staff("Ben Okafor"),  # deactivated below
        Actor.student("Jane van Doe"),
        Actor("member", "Ana Lee"),
        Actor.system("Ana Lee"),
    ],
    ids=["stranger", "wrong-case", "deactivated", "student", "member", "system"],
)
def test_only_active_staff_may_act(lab: Lab, action: str, who: Actor) -> None:
    status, run = STAFF_ACTIONS[action]
    job_id = _job_for(lab, status)
    lab.staff.deactivate("Ben Okafor")
    before = lab.snapshot(job_id)
    staged_before = dict(lab.files.staged)
    with pytest.raises(ValidationError) as info:
        run(lab.requests, job_id, who, lab)
    assert set(info.value.fields) == {"staff_name"}
    assert_unchanged(lab, job_id, before)
    assert lab.files.staged == staged_before


@pytest.mark.parametrize("action", sorted(STAFF_ACTIONS))
def test_every_staff_action_records_the_staff_name_and_workstation(lab: Lab, action: str) -> None:
    status, run = STAFF_ACTIONS[action]
    job_id = _job_for(lab, status)
    run(lab.requests, job_id, BEN, lab)
    event = lab.events_of(job_id)[-1]
    assert event.kind == action
    assert (event.actor.kind, event.actor.name, event.actor.workstation) == (
        "staff",
        "Ben Okafor",
        "back-room",
    )


# --- approving --------------------------------------------------------------------------


def test_approve_rounds_the_time_and_prices_in_cents(lab: Lab) -> None:
    job_id = jid(lab.submit(print_method="resin"))
    sliced = lab.add_sliced(job_id)
    job = lab.requests.approve(job_id, ANA, 42.25, 3.01, sliced.stored_name)
    assert (job.weight_g, job.time_hours, job.cost_cents) == (42.25, 3.5, 845)
    event = lab.events_of(job_id)[-1]
    assert event.details == {
        "weight_g": 42.25,
        "time_hours_entered": 3.01,
        "authoritative_file": sliced.stored_name,
    }


@pytest.mark.parametrize(
    ("weight", "hours", "fields"),
    [
        (0, 1, {"weight_g"}),
        (-3, 1, {"weight_g"}),
        (float("nan"), 1, {"weight_g"}),
        (float("inf"), 1, {"weight_g"}),
        (1e30, 1, {"weight_g"}),
        ("10", 1, {"weight_g"}),
        (True, 1, {"weight_g"}),
        (10, 0, {"time_hours"}),
        (10, float("-inf"), {"time_hours"}),
        (10, None, {"time_hours"}),
        (None, float("nan"), {"weight_g", "time_hours"}),
    ],
)
def test_approve_refuses_bad_figures_all_at_once(
    lab: Lab, weight: Any, hours: Any, fields: set[str]
) -> None:
    job_id = jid(lab.submit())
    sliced = lab.add_sliced(job_id)
    before = lab.snapshot(job_id)
    with pytest.raises(ValidationError) as info:
        lab.requests.approve(job_id, ANA, weight, hours, sliced.stored_name)
    assert set(info.value.fields) == fields
    assert_unchanged(lab, job_id, before)


def test_approve_refuses_a_file_that_is_not_the_jobs(lab: Lab) -> None:
    other_id = jid(lab.submit(student_name="Other Student"))
    others_file = lab.add_sliced(other_id).stored_name
    job_id = jid(lab.submit())
    lab.add_sliced(job_id)
    before = lab.snapshot(job_id)
    for name in (others_file, "../../etc/passwd", "nope.gcode", "", "   ", None):
        with pytest.raises(ValidationError) as info:
            lab.requests.approve(job_id, ANA, 10, 1, name)  # type: ignore[arg-type]
        assert set(info.value.fields) == {"authoritative_file"}, name
    assert_unchanged(lab, job_id, before)


def test_approve_refuses_the_students_model_as_the_file_to_print(lab: Lab) -> None:
    """DESIGN.md: approval needs an authoritative *sliced* file."""
    job_id = jid(lab.submit())
    original = lab.requests.get(job_id).original
    assert original is not None
    before = lab.snapshot(job_id)
    with pytest.raises(ValidationError, match="incomplete") as info:
        lab.requests.approve(job_id, ANA, 10, 1, original.stored_name)
    assert "sliced file" in info.value.fields["authoritative_file"]
    assert_unchanged(lab, job_id, before)


def test_approve_refuses_a_file_missing_from_storage(lab: Lab) -> None:
    job_id = jid(lab.submit())
    sliced = lab.add_sliced(job_id)
    key = next(k for k in lab.files.files if k.endswith(sliced.stored_name))
    del lab.files.files[key]
    before = lab.snapshot(job_id)
    with pytest.raises(ValidationError) as info:
        lab.requests.approve(job_id, ANA, 10, 1, sliced.stored_name)
    assert set(info.value.fields) == {"authoritative_file"}
    assert_unchanged(lab, job_id, before)


# --- two workstations at once -----------------------------------------------------------


def test_a_stale_expected_version_is_refused_and_changes_nothing(lab: Lab) -> None:
    job = lab.job_in("ready_to_print")
    job_id = jid(job)
    seen = job.version
    lab.requests.record_event(job_id, ANA, "opened_in_slicer", {})  # does not bump the version
    lab.requests.start_print(job_id, ANA, expected_version=seen)
    before = lab.snapshot(job_id)
    with pytest.raises(ConcurrentChangeError) as info:
        lab.requests.fail_print(job_id, BEN, "clog", expected_version=seen)
    assert info.value.job_id == job_id
    assert_unchanged(lab, job_id, before)
    with pytest.raises(ConcurrentChangeError):
        lab.requests.add_sliced_file(job_id, BEN, lab.stage_sliced(), None, expected_version=seen)
    assert_unchanged(lab, job_id, before)


class RacingUnitOfWork(MemoryUnitOfWork):
    """Lets another workstation commit first, just before this unit of work commits."""

    def __init__(self, db: MemoryDatabase, before_commit: list[Callable[[], object]]) -> None:
        super().__init__(db)
        self.before_commit = before_commit

    def commit(self) -> None:
        while self.before_commit:
            self.before_commit.pop()()
        super().commit()


@pytest.mark.parametrize(
    ("loser", "winner", "winner_status", "winner_folder"),
    [
        ("complete", "fail_print", "ready_to_print", "ReadyToPrint"),
        ("fail_print", "complete", "completed", "Completed"),
        ("complete", "complete", "completed", "Completed"),
    ],
)
def test_two_workstations_at_once_exactly_one_wins(
    lab: Lab, loser: str, winner: str, winner_status: str, winner_folder: str
) -> None:
    job_id = jid(lab.job_in("printing"))
    args = {"complete": (), "fail_print": ("clog",)}
    pending: list[Callable[[], object]] = [
        lambda: getattr(lab.requests, winner)(job_id, BEN, *args[winner])
    ]
    racing = attrs.evolve(lab.requests, uow=lambda: RacingUnitOfWork(lab.db, pending))
    sent_before = len(lab.outbox.sent)
    with pytest.raises(ConcurrentChangeError):
        getattr(racing, loser)(job_id, ANA, *args[loser])
    job = lab.requests.get(job_id)
    assert job.status == winner_status
    assert lab.files.folders_of(job) == {winner_folder}
    events = lab.events_of(job_id)
    assert events[-1].actor == BEN and events[-2].kind == "start_print"
    assert len(lab.outbox.sent) == sent_before + (winner == "complete")


# --- failures half way ------------------------------------------------------------------


class Boom(Exception):
    pass


class FailingCommit(MemoryUnitOfWork):
    def commit(self) -> None:
        raise Boom("the database went away")


@attrs.define
class FailingCopyStore(MemoryFileStore):
    """Copies the job's folder, then fails (a full disk on the last write)."""

    def copy_job(self, job: Job, from_status: str, to_status: str) -> None:
        super().copy_job(job, from_status, to_status)
        raise Boom("disk full")


TRANSITIONS: dict[str, tuple[str, Callable[[PrintRequests, int, Lab], object]]] = {
    "approve": ("uploaded", lambda s, j, lab: s.approve(j, ANA, 10, 1, _sliced_name(lab, j))),
    "reject": ("uploaded", lambda s, j, lab: s.reject(j, ANA, custom_reason="no")),
    "delete": ("uploaded", lambda s, j, lab: s.delete(j, ANA, "duplicate")),
    "confirm": ("pending", lambda s, j, lab: s.confirm(lab.confirm_token(j))),
    "force_confirm": ("pending", lambda s, j, lab: s.force_confirm(j, ANA, "yes")),
    "start_print": ("ready_to_print", lambda s, j, lab: s.start_print(j, ANA)),
    "fail_print": ("printing", lambda s, j, lab: s.fail_print(j, ANA, "clog")),
    "complete": ("printing", lambda s, j, lab: s.complete(j, ANA)),
    "pick_up": ("completed", lambda s, j, lab: s.pick_up(j, ANA, 12, "T1", "Jane")),
    "revert_completion": ("completed", lambda s, j, lab: s.revert_completion(j, ANA, "x")),
    "revert_pickup": ("paid_picked_up", lambda s, j, lab: s.revert_pickup(j, ANA, "x")),
}


@pytest.mark.parametrize("action", sorted(TRANSITIONS))
def test_a_failing_commit_leaves_no_half_written_state(lab: Lab, action: str) -> None:
    status, run = TRANSITIONS[action]
    job_id = _job_for(lab, status)
    before = lab.snapshot(job_id)
    failing = attrs.evolve(lab.requests, uow=lambda: FailingCommit(lab.db))
    with pytest.raises(Boom):
        run(failing, job_id, lab)
    assert_unchanged(lab, job_id, before)
    assert lab.files.folders_of(lab.requests.get(job_id)) == {JobStatus(status).folder}
    # and the same action then succeeds on a healthy database
    run(lab.requests, job_id, lab)


@pytest.mark.parametrize("action", sorted(a for a in TRANSITIONS if a != "delete"))
def test_a_failing_file_copy_leaves_no_partial_copy(lab: Lab, action: str) -> None:
    status, run = TRANSITIONS[action]
    job_id = _job_for(lab, status)
    store = FailingCopyStore(lab.files.files, lab.files.metadata, lab.files.staged)
    before = lab.snapshot(job_id)
    with pytest.raises(Boom):
        run(attrs.evolve(lab.requests, files=store), job_id, lab)
    assert_unchanged(lab, job_id, before)


def test_a_failing_commit_on_submit_stores_nothing(
    lab: Lab, make_submission: Callable[..., Submission]
) -> None:
    a_submission = make_submission
    failing = attrs.evolve(lab.requests, uow=lambda: FailingCommit(lab.db))
    with pytest.raises(Boom):
        failing.submit(a_submission(), lab.stage_model())
    assert lab.db.jobs == {} and lab.db.events == []
    assert lab.files.files == {} and lab.files.metadata == {} and lab.files.staged == {}
    assert lab.outbox.sent == []


def test_a_failing_commit_on_add_sliced_file_leaves_no_file(lab: Lab) -> None:
    job_id = jid(lab.submit())
    before = lab.snapshot(job_id)
    failing = attrs.evolve(lab.requests, uow=lambda: FailingCommit(lab.db))
    with pytest.raises(Boom):
        failing.add_sliced_file(job_id, ANA, lab.stage_sliced(), None)
    assert_unchanged(lab, job_id, before)
    assert lab.files.staged == {}


EMAILS = {"approve": ["approved"], "reject": ["rejected"], "confirm": ["confirmed"],
          "complete": ["completed"], "pick_up": ["payment_receipt"]}


@pytest.mark.parametrize("action", sorted(TRANSITIONS))
def test_each_change_commits_its_emails_with_it(lab: Lab, action: str) -> None:
    """The emails a change causes are outbox rows of the same commit: pending, due now,
    addressed to the student, about the job; changes that email nobody add none."""
    status, run = TRANSITIONS[action]
    job_id = _job_for(lab, status)
    before = {m.id for m in lab.outbox.messages()}
    run(lab.requests, job_id, lab)
    new = [m for m in lab.outbox.messages() if m.id not in before]
    assert [m.kind for m in new] == EMAILS.get(action, [])
    for message in new:
        assert (message.channel, message.subject, message.subject_id) == ("email", "job", job_id)
        assert message.recipient == "jane.doe@university.edu"
        assert (message.status, message.attempts) == ("pending", 0)
        assert message.next_attempt_at == message.created_at == lab.clock.now()


def test_a_failing_commit_on_a_transition_emails_nobody(lab: Lab) -> None:
    job_id = jid(lab.submit())
    lab.add_sliced(job_id)
    before = len(lab.outbox.messages())
    failing = attrs.evolve(lab.requests, uow=lambda: FailingCommit(lab.db))
    with pytest.raises(Boom):
        failing.reject(job_id, ANA, ["Walls or details are too thin to print."])
    assert len(lab.outbox.messages()) == before
    assert lab.requests.get(job_id).status == "uploaded"


def test_resend_confirmation_sends_a_new_link_and_voids_the_old_one(lab: Lab) -> None:
    job = lab.approved()
    job_id = jid(job)
    old = lab.confirm_token(job_id)
    lab.clock.advance(days=6)
    resent = lab.requests.resend_confirmation(job_id, BEN)
    new = lab.confirm_token(job_id)
    assert new != old and resent.status == "pending"
    assert resent.confirmation_expires_at == lab.clock.now() + timedelta(days=7)
    assert [e.kind for e in lab.events_of(job_id)][-1] == "resend_confirmation"
    assert lab.events_of(job_id)[-1].actor == BEN
    with pytest.raises(TokenUsedError):
        lab.requests.confirm(old)
    lab.clock.advance(days=6)  # 12 days after approval: only the new link still works
    assert lab.requests.confirm(new).status == "ready_to_print"


@pytest.mark.parametrize("status", ["uploaded", "ready_to_print", "completed", "rejected"])
def test_resend_confirmation_is_refused_unless_pending(lab: Lab, status: str) -> None:
    job_id = _job_for(lab, status)
    before = lab.snapshot(job_id)
    with pytest.raises(InvalidTransitionError, match="Only a job waiting"):
        lab.requests.resend_confirmation(job_id, ANA)
    assert_unchanged(lab, job_id, before)


def test_resend_confirmation_needs_active_staff(lab: Lab) -> None:
    job_id = jid(lab.approved())
    before = lab.snapshot(job_id)
    with pytest.raises(ValidationError):
        lab.requests.resend_confirmation(job_id, Actor.staff("Nobody"))
    assert_unchanged(lab, job_id, before)


def test_the_memory_database_is_not_shared_by_accident(lab: Lab) -> None:
    """Guard for the fixtures above: two labs do not see each other's jobs."""
    one, two = type(lab)(), type(lab)()
    one.staff.add("Ana Lee")
    one.submit()
    assert two.db.jobs == {}
    assert two.requests.counts() == {}
