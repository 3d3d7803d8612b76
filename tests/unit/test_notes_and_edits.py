"""Staff notes (``PrintRequests.set_staff_notes``) and corrections of a request's details
(``PrintRequests.edit_details``) on the in-memory fakes: not state changes, one event
each with the old and new values, the version bumps, metadata and search follow.

Bad inputs tried, each of which must leave the job, the event log, the files, the
metadata and the outbox exactly as they were: notes of 2001 characters, with NUL, ESC,
DEL or a C1 control, with a lone surrogate, not text, unchanged; an unknown field name
(``print_method``, ``status``, ``cost_cents``), a value that is not text, an email
without ``@``, an empty required field, a colour of 61 characters, a line break in a
one-line field, nothing changed (same values, only spaces added, no fields at all); a
name not on the staff list, a deactivated member, a student or system actor; a stale
``expected_version``; an unknown and a deleted job.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

from printcore import Actor, ConcurrentChangeError, JobStatus, NotFoundError, ValidationError
from printcore.errors import PrintcoreError
from printcore.requests.details import EDITABLE_FIELDS, STAFF_NOTES_LIMIT
from printcore.requests.lifecycle import allowed_events
from printcore.requests.search import JobQuery

if TYPE_CHECKING:
    from conftest import Lab

ANA = Actor.staff("Ana Lee", "front-desk")
BEN = Actor.staff("Ben Okafor", "back-room")
STATES = ["uploaded", "pending", "rejected", "ready_to_print", "printing", "completed",
          "paid_picked_up"]


def _refused(lab: Lab, job_id: int, error: type[PrintcoreError], call: Any) -> PrintcoreError:
    before = lab.snapshot(job_id)
    with pytest.raises(error) as caught:
        call()
    after = lab.snapshot(job_id)
    assert (after.job, after.events, after.files, after.metadata, after.sent) == (
        before.job, before.events, before.files, before.metadata, before.sent)
    return caught.value


# --- staff notes ------------------------------------------------------------------------


def test_a_new_job_has_no_staff_notes(lab: Lab) -> None:
    job = lab.submit()
    assert (job.staff_notes, job.staff_notes_by, job.staff_notes_at) == ("", None, None)


def test_notes_are_set_changed_and_cleared_with_one_event_each(lab: Lab) -> None:
    svc = lab.requests
    job = lab.submit()
    assert job.id is not None
    lab.clock.advance(minutes=5)
    noted = svc.set_staff_notes(job.id, ANA, "Student asked for\r\nthe brim removed.  \n\n",
                                expected_version=job.version)
    assert noted.staff_notes == "Student asked for\nthe brim removed."
    assert (noted.staff_notes_by, noted.staff_notes_at) == ("Ana Lee", lab.clock.now())
    assert noted.version == job.version + 1 and noted.status == "uploaded"
    assert noted.updated_at == lab.clock.now()
    assert lab.stored(job.id) == noted
    event = lab.events_of(job.id)[-1]
    assert (event.kind, event.actor, event.at) == ("notes", ANA, lab.clock.now())
    assert (event.from_status, event.to_status) == (None, None)
    assert event.details == {"old": "", "new": "Student asked for\nthe brim removed."}

    lab.clock.advance(minutes=1)
    changed = svc.set_staff_notes(job.id, BEN, "Brim removed.\tDone.")
    assert (changed.staff_notes_by, changed.version) == ("Ben Okafor", noted.version + 1)
    assert lab.events_of(job.id)[-1].details == {"old": noted.staff_notes,
                                                 "new": "Brim removed.\tDone."}
    cleared = svc.set_staff_notes(job.id, ANA, "")
    assert (cleared.staff_notes, cleared.staff_notes_by) == ("", "Ana Lee")
    assert [e.kind for e in lab.events_of(job.id)] == ["submit", "notes", "notes", "notes"]
    assert lab.outbox.sent == [n for n in lab.outbox.sent if n.kind == "submitted"]


def test_notes_at_the_limit_are_kept_whole(lab: Lab) -> None:
    job = lab.submit()
    assert job.id is not None
    text = "é" * STAFF_NOTES_LIMIT
    assert lab.requests.set_staff_notes(job.id, ANA, text).staff_notes == text


@pytest.mark.parametrize("status", STATES)
def test_notes_are_allowed_in_every_state_and_keep_it(lab: Lab, status: str) -> None:
    job = lab.job_in(status)
    assert job.id is not None
    noted = lab.requests.set_staff_notes(job.id, BEN, f"note in {status}")
    assert (noted.status, noted.staff_notes) == (status, f"note in {status}")
    assert lab.files.folders_of(noted) == {JobStatus(status).folder}
    assert allowed_events(noted) == allowed_events(job)


@pytest.mark.parametrize("notes, problem", [
    ("x" * (STAFF_NOTES_LIMIT + 1), "At most 2000 characters"),
    ("a\x00b", "NUL"),
    ("a\x1bb", "U+001B"),
    ("a\x7fb", "U+007F"),
    ("a\x85b", "U+0085"),
    ("a\ud800b", "cannot be stored"),
    (None, "Must be text"),
    (12, "Must be text"),
    (["a"], "Must be text"),
])
def test_bad_notes_are_refused_on_the_notes_field(lab: Lab, notes: Any, problem: str) -> None:
    job = lab.submit()
    assert job.id is not None
    err = _refused(lab, job.id, ValidationError,
                   lambda: lab.requests.set_staff_notes(job.id, ANA, notes))
    assert isinstance(err, ValidationError) and problem in err.fields["notes"]


def test_unchanged_notes_are_refused_clearly(lab: Lab) -> None:
    job = lab.submit()
    assert job.id is not None
    err = _refused(lab, job.id, ValidationError,
                   lambda: lab.requests.set_staff_notes(job.id, ANA, "  \n"))
    assert "unchanged" in err.message.lower()
    lab.requests.set_staff_notes(job.id, ANA, "keep")
    _refused(lab, job.id, ValidationError,
             lambda: lab.requests.set_staff_notes(job.id, BEN, "keep  "))


# --- editing details ----------------------------------------------------------------------


def test_a_typo_in_the_email_is_corrected_and_search_follows(lab: Lab) -> None:
    svc = lab.requests
    job = lab.submit(email="jane.doe@univeristy.edu")
    assert job.id is not None
    lab.clock.advance(minutes=7)
    fixed = svc.edit_details(job.id, ANA, {"email": " jane.doe@university.edu ",
                                           "color": "light blue"},
                             expected_version=job.version)
    assert fixed.email == "jane.doe@university.edu" and fixed.color == "light blue"
    assert (fixed.version, fixed.updated_at) == (job.version + 1, lab.clock.now())
    assert lab.stored(job.id) == fixed
    event = lab.events_of(job.id)[-1]
    assert (event.kind, event.actor, event.at) == ("edit", ANA, lab.clock.now())
    # The colour was given unchanged: left out of the event.
    assert event.details == {"changes": {"email": {"old": "jane.doe@univeristy.edu",
                                                   "new": "jane.doe@university.edu"}}}
    found, total = svc.search_jobs(JobQuery(q="doe@university"))
    assert total == 1 and found[0].id == job.id
    assert svc.search_jobs(JobQuery(q="univeristy"))[1] == 0


def test_every_editable_field_at_once_and_file_names_kept(lab: Lab) -> None:
    job = lab.submit()
    assert job.id is not None
    new = {"student_name": "Janet van Doe", "email": "janet@university.edu",
           "discipline": "Art", "class_number": "", "color": "Galaxy purple",
           "preferred_printer": "X1C-2"}
    fixed = lab.requests.edit_details(job.id, BEN, new)
    assert {name: getattr(fixed, name) for name in EDITABLE_FIELDS} == new
    assert fixed.files == job.files  # stored names keep the name as submitted
    changes = lab.events_of(job.id)[-1].details["changes"]
    assert changes["student_name"] == {"old": "Jane van Doe", "new": "Janet van Doe"}
    assert changes["class_number"] == {"old": "ME 101", "new": ""}
    assert set(changes) == set(new)
    assert lab.requests.search_jobs(JobQuery(q="janet"))[1] == 1


@pytest.mark.parametrize("status", STATES)
def test_details_may_be_corrected_in_every_state(lab: Lab, status: str) -> None:
    job = lab.job_in(status)
    assert job.id is not None
    fixed = lab.requests.edit_details(job.id, ANA, {"discipline": "Physics"})
    assert (fixed.status, fixed.discipline) == (status, "Physics")
    assert lab.files.folders_of(fixed) == {JobStatus(status).folder}


@pytest.mark.parametrize("changes, field, problem", [
    ({"print_method": "resin"}, "print_method", "Not a field that can be corrected"),
    ({"status": "completed"}, "status", "Not a field that can be corrected"),
    ({"cost_cents": "1", "email": "a@b.edu"}, "cost_cents", "Not a field"),
    ({"email": "jane.doe.university.edu"}, "email", "valid email"),
    ({"email": "   "}, "email", "Enter"),
    ({"student_name": ""}, "student_name", "Enter"),
    ({"color": "c" * 61}, "color", "At most 60"),
    ({"discipline": "Art\nHistory"}, "discipline", "Line breaks"),
    ({"class_number": "ME\x00101"}, "class_number", "NUL"),
    ({"email": 5}, "email", "Must be text"),
    ({"color": None}, "color", "Must be text"),
])
def test_bad_changes_are_refused_per_field(
    lab: Lab, changes: dict[str, Any], field: str, problem: str,
) -> None:
    job = lab.submit()
    assert job.id is not None
    err = _refused(lab, job.id, ValidationError,
                   lambda: lab.requests.edit_details(job.id, ANA, changes))
    assert isinstance(err, ValidationError) and problem in err.fields[field]


def test_all_bad_fields_are_named_at_once(lab: Lab) -> None:
    job = lab.submit()
    assert job.id is not None
    err = _refused(lab, job.id, ValidationError, lambda: lab.requests.edit_details(
        job.id, ANA, {"email": "nope", "student_name": "", "color": "blue"}))
    assert isinstance(err, ValidationError) and set(err.fields) == {"email", "student_name"}


@pytest.mark.parametrize("changes", [
    {}, {"color": "light blue"}, {"email": " jane.doe@university.edu  "},
    {"student_name": "Jane van Doe", "class_number": "ME 101"},
])
def test_nothing_to_change_is_refused_clearly(lab: Lab, changes: dict[str, str]) -> None:
    job = lab.submit()
    assert job.id is not None
    err = _refused(lab, job.id, ValidationError,
                   lambda: lab.requests.edit_details(job.id, ANA, changes))
    assert "Nothing to change" in err.message and err.fields


def test_an_old_bad_value_does_not_block_fixing_another_field(lab: Lab) -> None:
    job = lab.submit()
    assert job.id is not None
    stored = lab.db.jobs[job.id]
    stored.discipline = "x" * 300  # from before the length limit
    fixed = lab.requests.edit_details(job.id, ANA, {"color": "red"})
    assert fixed.color == "red"


# --- who, when, which version -----------------------------------------------------------


def _both(lab: Lab, job_id: int) -> list[Any]:
    return [lambda who, v=None: lab.requests.set_staff_notes(job_id, who, "n", v),
            lambda who, v=None: lab.requests.edit_details(job_id, who, {"color": "red"}, v)]


@pytest.mark.parametrize("who", [
    Actor.staff("Nobody Here", "front-desk"),
    Actor.staff("", "front-desk"),
    Actor.student("Jane van Doe"),
    Actor.system(),
    Actor("member", "Ana Lee"),
])
@pytest.mark.parametrize("which", [0, 1])
def test_only_active_staff_may_note_or_correct(lab: Lab, who: Actor, which: int) -> None:
    job = lab.submit()
    assert job.id is not None
    err = _refused(lab, job.id, ValidationError, lambda: _both(lab, job.id or 0)[which](who))
    assert isinstance(err, ValidationError) and "staff_name" in err.fields


@pytest.mark.parametrize("which", [0, 1])
def test_a_deactivated_member_may_not_note_or_correct(lab: Lab, which: int) -> None:
    job = lab.submit()
    assert job.id is not None
    lab.staff.deactivate(BEN.name)
    _refused(lab, job.id, ValidationError, lambda: _both(lab, job.id or 0)[which](BEN))


@pytest.mark.parametrize("delta", [-1, 1, 1000])
@pytest.mark.parametrize("which", [0, 1])
def test_a_stale_version_is_refused(lab: Lab, delta: int, which: int) -> None:
    job = lab.submit()
    assert job.id is not None
    call = _both(lab, job.id)[which]
    err = _refused(lab, job.id, ConcurrentChangeError,
                   lambda: call(ANA, job.version + delta))
    assert isinstance(err, ConcurrentChangeError) and err.job_id == job.id
    assert call(ANA, job.version).version == job.version + 1


def test_two_workstations_editing_the_same_version_one_wins(lab: Lab) -> None:
    job = lab.submit()
    assert job.id is not None
    lab.requests.set_staff_notes(job.id, ANA, "from Ana", job.version)
    _refused(lab, job.id, ConcurrentChangeError,
             lambda: lab.requests.edit_details(job.id, BEN, {"color": "red"}, job.version))
    assert lab.stored(job.id).staff_notes == "from Ana"  # type: ignore[union-attr]


@pytest.mark.parametrize("which", [0, 1])
def test_unknown_and_deleted_jobs_are_not_found(lab: Lab, which: int) -> None:
    with pytest.raises(NotFoundError):
        _both(lab, 999)[which](ANA)
    job = lab.submit()
    assert job.id is not None
    lab.requests.delete(job.id, ANA, "A duplicate.")
    with pytest.raises(NotFoundError):
        _both(lab, job.id)[which](ANA)


# --- the files follow a corrected name or colour -------------------------------------------


def test_a_corrected_name_or_colour_moves_the_folder(lab: Lab) -> None:
    job = lab.job_in("pending")
    assert job.id is not None
    before = dict(lab.files.files)
    fixed = lab.requests.edit_details(job.id, ANA, {"student_name": "Janet Doe",
                                                    "color": "Blue"})
    folders = {k.rsplit("/", 1)[0] for k in lab.files.files}
    assert folders == {f"Pending/JanetDoe_Filament_Blue_{job.id}"}
    assert sorted(v for v in lab.files.files.values()) == sorted(before.values())
    assert all(lab.files.exists(fixed, f.stored_name) for f in fixed.files)
    assert lab.files.folders_of(fixed) == {"Pending"}


def test_a_failed_commit_leaves_the_old_folder_only(lab: Lab) -> None:
    job = lab.submit()
    assert job.id is not None
    before = dict(lab.files.files)

    class Boom(Exception):
        pass

    def boom() -> None:
        raise Boom("the database went away")

    svc = lab.requests

    def failing() -> Any:
        uow = lab.uow()
        uow.commit = boom  # type: ignore[method-assign]
        return uow

    svc.uow = failing
    with pytest.raises(Boom):
        svc.edit_details(job.id, ANA, {"color": "Blue"})
    assert lab.files.files == before
    assert lab.stored(job.id) == job
