"""Renaming a staff member on memory, SQLite and PostgreSQL: the row keeps its active
flag and ``added_at``, the lab event names old and new, the events already logged keep
the old name, and the session lookups and staff checks use the new name at once.

Bad inputs tried: a new name already taken (exact and other case), an unknown old name,
the repository asked to rename onto a taken name directly (the race the service's check
cannot see: the unique key refuses it, the transaction stays usable and nothing
changes).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

import pytest

from printcore import Actor, NotFoundError, StaffDirectory, ValidationError
from printcore.lab_events import LAB_ID, LAB_SUBJECT
from printcore.memory import FixedClock, PlainHasher
from printcore.ports import UnitOfWork
from printcore.staff import StaffStateError

ANA = Actor.staff("Ana Lee", "front-desk")


@pytest.fixture
def staff(uow_factory: Callable[[], UnitOfWork]) -> StaffDirectory:
    directory = StaffDirectory(uow=uow_factory, hasher=PlainHasher(),
                               clock=FixedClock(datetime(2026, 3, 2, 15, 0, tzinfo=UTC)))
    directory.add("Ana Lee")
    directory.add("Ben Okafor")
    return directory


def _lab_events(staff: StaffDirectory) -> list[tuple[str, str, dict[str, object]]]:
    with staff.uow() as uow:
        return [(e.kind, e.actor.name, dict(e.details))
                for e in uow.events.for_subject(LAB_SUBJECT, LAB_ID)]


def test_rename_is_stored_with_its_event_and_old_events_keep_the_old_name(
        staff: StaffDirectory) -> None:
    staff.add("Cy Former", ANA, refuse_existing=True)
    staff.deactivate("Cy Former", ANA)
    added = {m.name: m for m in staff.list(active_only=False)}["Cy Former"].added_at
    staff.rename("Cy Former", "Cyrus Former", ANA)
    members = {m.name: m for m in staff.list(active_only=False)}
    assert set(members) == {"Ana Lee", "Ben Okafor", "Cyrus Former"}
    assert not members["Cyrus Former"].active and members["Cyrus Former"].added_at == added
    assert _lab_events(staff) == [
        ("staff_added", "Ana Lee", {"name": "Cy Former"}),
        ("staff_deactivated", "Ana Lee", {"name": "Cy Former"}),
        ("staff_renamed", "Ana Lee", {"old": "Cy Former", "new": "Cyrus Former"}),
    ]
    staff.reactivate("Cyrus Former", ANA)
    # the renamed member acts under the new name at once; the old one is refused
    staff.rename("Ben Okafor", "Benjamin Okafor", Actor.staff("Cyrus Former"))
    with pytest.raises(ValidationError) as info:
        staff.rename("Benjamin Okafor", "Ben O.", Actor.staff("Cy Former"))
    assert "not active staff" in str(info.value)


@pytest.mark.parametrize("taken", ["Ana Lee", "ANA LEE"])
def test_rename_onto_a_taken_name_is_refused_and_changes_nothing(
        staff: StaffDirectory, taken: str) -> None:
    before = staff.list(active_only=False)
    with pytest.raises(StaffStateError):
        staff.rename("Ben Okafor", taken, ANA)
    with pytest.raises(NotFoundError):
        staff.rename("Nobody", "Somebody", ANA)
    assert staff.list(active_only=False) == before
    assert _lab_events(staff) == []


def test_the_repository_refuses_a_taken_name_and_the_transaction_goes_on(
        staff: StaffDirectory) -> None:
    with staff.uow() as uow:
        with pytest.raises(StaffStateError):
            uow.staff.rename("Ben Okafor", "Ana Lee")
        with pytest.raises(NotFoundError):
            uow.staff.rename("Nobody", "Somebody")
        uow.staff.rename("Ben Okafor", "Ben O.")  # still usable after the refusal
        uow.commit()
    assert [m.name for m in staff.list()] == ["Ana Lee", "Ben O."]
