"""Retention planning and the service's order of work, on the in-memory fakes.

Jobs are brought to every state through the service, then time moves on. Bad inputs
tried: ages ``0``, ``-3``, ``1.5``, ``abc``, ``""``, ``None``, ``True``, ``36501`` and a
full-width ``３``; an empty staff name; an archive that cannot be written; a job that
leaves its final state (revert pickup) between the preview and the removal.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from printcore import Actor
from printcore.errors import StorageError, ValidationError
from printcore.lab_events import LAB_ID, LAB_SUBJECT
from printcore.requests.retention import (
    PlannedJob,
    Retention,
    RetentionMode,
    StoredCandidate,
    parse_days,
    plan_retention,
)
from printcore.requests.retention_memory import (
    MemoryArchiver,
    MemoryRetentionFiles,
    MemoryRetentionStore,
)

ANA = Actor.staff("Ana Lee", "front-desk")  # the unit conftest's staff member
Lab = Any  # the unit conftest's ``lab`` fixture (printcore on the in-memory fakes)
STATES = ("uploaded", "pending", "rejected", "ready_to_print", "printing", "completed",
          "paid_picked_up")


def _retention(lab: Lab, archiver: MemoryArchiver | None = None) -> Retention:
    return Retention(MemoryRetentionStore(lab.db), MemoryRetentionFiles(lab.files), lab.clock,
                     archiver if archiver is not None else MemoryArchiver(lab.files))


def _seed(lab: Lab) -> dict[str, Any]:
    """Every state twice: ``old`` ones 40 days ago, ``new`` ones 5 days ago (now)."""
    old = {s: lab.job_in(s).id for s in STATES}
    lab.clock.advance(days=35)
    new = {s: lab.job_in(s).id for s in STATES}
    lab.clock.advance(days=5)
    return {"old": old, "new": new}


@pytest.mark.parametrize("raw", [0, -3, "1.5", "abc", "", None, True, 36_501, "３"])
def test_bad_ages_are_refused_with_the_field(raw: object) -> None:
    with pytest.raises(ValidationError) as err:
        parse_days(raw)
    assert "older_than_days" in err.value.fields


def test_good_ages() -> None:
    assert parse_days("30") == 30 and parse_days(1) == 1 and parse_days(" 365 ") == 365


def test_plan_keeps_only_final_jobs_older_than_the_cutoff(lab: Lab) -> None:
    ids = _seed(lab)
    plan = _retention(lab).preview(30)
    assert plan.job_ids == [ids["old"]["rejected"], ids["old"]["paid_picked_up"]]
    assert plan.counts() == {"paid_picked_up": 1, "rejected": 1}
    assert plan.cutoff == lab.clock.now() - timedelta(days=30)
    # sizes are the folders' bytes: the model (13 bytes) + the sliced file (14 bytes)
    sizes = {j.job_id: (j.bytes, j.files) for j in plan.jobs}
    assert sizes == {ids["old"]["rejected"]: (13, 1), ids["old"]["paid_picked_up"]: (27, 2)}
    assert plan.bytes == 40
    assert _retention(lab).preview(3).count == 4
    assert _retention(lab).preview(41).count == 0


def test_older_is_by_the_last_state_change_not_the_submission(lab: Lab) -> None:
    job = lab.submit()
    assert job.id is not None
    lab.clock.advance(days=100)
    lab.requests.reject(job.id, ANA, custom_reason="Too big for our printers")
    lab.clock.advance(days=10)
    assert _retention(lab).preview(30).count == 0  # submitted 110 days ago, rejected 10
    assert _retention(lab).preview(9).job_ids == [job.id]
    lab.requests.set_staff_notes(job.id, ANA, "called the student")  # not a state change
    assert _retention(lab).preview(9).job_ids == [job.id]


def test_plan_rechecks_what_the_store_gives() -> None:
    """A store that returns a non-final or too-young job does not get it planned."""
    from datetime import UTC, datetime

    from printcore.requests.job import Job

    now = datetime(2026, 12, 1, tzinfo=UTC)
    young = Job("A", "a@u.edu", "ME", "", "filament", "Red", now, id=1, status="rejected")
    active = Job("B", "b@u.edu", "ME", "", "filament", "Red", now, id=2, status="printing")
    old = Job("C", "c@u.edu", "ME", "", "filament", "Red", now, id=3, status="paid_picked_up")
    plan = plan_retention([StoredCandidate(young, now - timedelta(days=2)),
                           StoredCandidate(active, now - timedelta(days=99)),
                           StoredCandidate(old, now - timedelta(days=99))],
                          lambda job: (7, 1), 30, now)
    assert plan.jobs == (PlannedJob(3, "paid_picked_up", 0, now - timedelta(days=99), 7, 1),)


def test_archive_run_removes_rows_and_files_keeps_history_and_tombstones(lab: Lab) -> None:
    ids = _seed(lab)
    archiver = MemoryArchiver(lab.files)
    old = [ids["old"]["rejected"], ids["old"]["paid_picked_up"]]
    result = _retention(lab, archiver).apply(30, RetentionMode.ARCHIVE, ANA)
    assert list(result.removed) == old and result.skipped == () and result.bytes_removed == 40
    assert result.archive is not None and result.archive.name in archiver.archives
    entries = archiver.archives[result.archive.name]
    assert f"jobs/{old[1]}/job.json" in entries and f"jobs/{old[1]}/events.json" in entries
    for job_id in old:
        assert job_id not in lab.db.jobs
        assert not [k for k in lab.files.files if f"_{job_id}/" in k]
        events = lab.events_of(job_id)
        assert events[0].kind == "submit"  # the history stays
        assert events[-1].kind == "archived"
        assert events[-1].details["archive"] == result.archive.name
        assert events[-1].actor == ANA
        assert not [m for m in lab.outbox.messages() if m.subject_id == job_id]
    run = [e for e in lab.db.events if (e.subject, e.subject_id) == (LAB_SUBJECT, LAB_ID)]
    assert len(run) == 1 and run[0].kind == "retention_applied"
    assert run[0].details["removed"] == 2 and run[0].details["bytes"] == 40
    assert run[0].details["rejected"] == 1 and run[0].details["paid_picked_up"] == 1
    assert run[0].actor == ANA
    # everything else is untouched
    assert set(lab.db.jobs) == set(ids["old"].values()) - set(old) | set(ids["new"].values())


def test_second_run_removes_nothing(lab: Lab) -> None:
    _seed(lab)
    retention = _retention(lab)
    retention.apply(30, RetentionMode.ARCHIVE, ANA)
    jobs, files = dict(lab.db.jobs), dict(lab.files.files)
    again = retention.apply(30, RetentionMode.ARCHIVE, ANA)
    assert again.removed == () and again.archive is None
    assert lab.db.jobs == jobs and lab.files.files == files
    runs = [e for e in lab.db.events if e.kind == "retention_applied"]
    assert [r.details["removed"] for r in runs] == [2, 0]


def test_prune_writes_no_archive_but_tombstones(lab: Lab) -> None:
    ids = _seed(lab)
    archiver = MemoryArchiver(lab.files)
    result = _retention(lab, archiver).apply(30, RetentionMode.PRUNE, ANA)
    assert result.archive is None and archiver.archives == {}
    stone = lab.events_of(ids["old"]["rejected"])[-1]
    assert stone.kind == "pruned" and stone.details["archive"] is None


def test_an_archive_that_cannot_be_written_removes_nothing(lab: Lab) -> None:
    _seed(lab)
    before = (dict(lab.db.jobs), dict(lab.files.files), list(lab.db.events))
    archiver = MemoryArchiver(lab.files, fail="the disk is full")
    with pytest.raises(StorageError, match="Nothing was removed"):
        _retention(lab, archiver).apply(30, RetentionMode.ARCHIVE, ANA)
    assert (dict(lab.db.jobs), dict(lab.files.files), list(lab.db.events)) == before


def test_a_job_that_left_its_final_state_meanwhile_is_skipped(lab: Lab) -> None:
    ids = _seed(lab)
    paid = ids["old"]["paid_picked_up"]
    retention = _retention(lab)
    store = retention.store

    class Interleaved:
        """The store, with a revert of the pickup landing just before the removal."""

        def candidates(self, cutoff):  # type: ignore[no-untyped-def]
            return store.candidates(cutoff)

        def records(self, planned):  # type: ignore[no-untyped-def]
            return store.records(planned)

        def remove(self, planned, tombstone, summary):  # type: ignore[no-untyped-def]
            lab.requests.revert_pickup(paid, ANA, "Paid twice by mistake")
            return store.remove(planned, tombstone, summary)

    retention.store = Interleaved()
    result = retention.apply(30, RetentionMode.ARCHIVE, ANA)
    assert result.removed == (ids["old"]["rejected"],) and result.skipped == (paid,)
    assert lab.db.jobs[paid].status == "completed"
    assert [e.kind for e in lab.events_of(paid)][-1] == "revert_pickup"
    run = next(e for e in lab.db.events if e.kind == "retention_applied")
    assert run.details["skipped_ids"] == [paid]


def test_a_nameless_run_is_refused(lab: Lab) -> None:
    _seed(lab)
    with pytest.raises(ValidationError) as err:
        _retention(lab).apply(30, RetentionMode.PRUNE, Actor.staff(" ", "desk"))
    assert "staff_name" in err.value.fields
    assert len([j for j in lab.db.jobs.values()]) == 14


def test_a_folder_that_resists_is_reported_not_raised(lab: Lab) -> None:
    """The rows are committed by then: the run reports the folder instead of failing."""
    ids = _seed(lab)

    class Stuck(MemoryRetentionFiles):
        def remove(self, job):  # type: ignore[no-untyped-def]
            if job.status == "rejected":
                raise StorageError("Could not remove the folder: busy.")
            super().remove(job)

    retention = _retention(lab)
    retention.files = Stuck(lab.files)
    result = retention.apply(30, RetentionMode.ARCHIVE, ANA)
    rejected = ids["old"]["rejected"]
    assert result.removed == (rejected, ids["old"]["paid_picked_up"])
    assert result.folders_left == (rejected,) and "busy" in result.errors[0]
    assert result.bytes_removed == 27  # only the paid job's folder went
    assert [k for k in lab.files.files if f"_{rejected}/" in k]
    assert rejected not in lab.db.jobs
