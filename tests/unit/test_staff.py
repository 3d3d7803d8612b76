"""Staff members and the shared staff password."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from printcore import AuthenticationError, NotFoundError, ValidationError
from printcore.staff import MIN_PASSWORD_LENGTH, PASSWORD_KEY

if TYPE_CHECKING:
    from conftest import Lab


def test_add_normalises_the_name_and_records_when(lab: Lab) -> None:
    member = lab.staff.add("  Carla   Diaz ")
    assert member.name == "Carla Diaz"
    assert member.active
    assert member.added_at == lab.clock.now()
    assert "Carla Diaz" in [m.name for m in lab.staff.list()]


@pytest.mark.parametrize("name", ["", "   ", "x" * 81])
def test_add_refuses_empty_or_long_names(lab: Lab, name: str) -> None:
    with pytest.raises(ValidationError) as info:
        lab.staff.add(name)
    assert "name" in info.value.fields


def test_deactivated_staff_are_listed_only_on_request(lab: Lab) -> None:
    lab.staff.deactivate("Ben Okafor")
    assert [m.name for m in lab.staff.list()] == ["Ana Lee"]
    everyone = {m.name: m.active for m in lab.staff.list(active_only=False)}
    assert everyone == {"Ana Lee": True, "Ben Okafor": False}


def test_adding_again_reactivates(lab: Lab) -> None:
    lab.staff.deactivate("Ben Okafor")
    lab.staff.add("Ben Okafor")
    assert [m.name for m in lab.staff.list()] == ["Ana Lee", "Ben Okafor"]


def test_deactivating_an_unknown_name(lab: Lab) -> None:
    with pytest.raises(NotFoundError):
        lab.staff.deactivate("Nobody")


def test_no_password_set_yet(lab: Lab) -> None:
    assert not lab.staff.has_password()
    with pytest.raises(AuthenticationError):
        lab.staff.check_password("anything at all")


def test_password_is_stored_hashed_and_checked(lab: Lab) -> None:
    lab.staff.set_password("correct horse battery")
    assert lab.staff.has_password()
    assert lab.db.settings[PASSWORD_KEY] != "correct horse battery"
    lab.staff.check_password("correct horse battery")
    with pytest.raises(AuthenticationError):
        lab.staff.check_password("correct horse batterY")
    with pytest.raises(AuthenticationError):
        lab.staff.check_password("")


def test_password_can_be_changed(lab: Lab) -> None:
    lab.staff.set_password("first password")
    lab.staff.set_password("second password")
    lab.staff.check_password("second password")
    with pytest.raises(AuthenticationError):
        lab.staff.check_password("first password")


def test_short_passwords_are_refused_and_nothing_is_stored(lab: Lab) -> None:
    with pytest.raises(ValidationError) as info:
        lab.staff.set_password("x" * (MIN_PASSWORD_LENGTH - 1))
    assert "password" in info.value.fields
    assert not lab.staff.has_password()
    lab.staff.set_password("x" * MIN_PASSWORD_LENGTH)
    lab.staff.check_password("x" * MIN_PASSWORD_LENGTH)


# --- workstation sessions (issue 10: logout and a password change end them) ------------

def test_a_session_works_until_it_is_ended(lab: Lab) -> None:
    session = lab.staff.start_session("Front desk")
    assert lab.staff.check_session(session.id).workstation == "Front desk"
    assert [s.id for s in lab.staff.sessions()] == [session.id]
    lab.staff.end_session(session.id)
    with pytest.raises(AuthenticationError, match="ended"):
        lab.staff.check_session(session.id)
    assert lab.staff.sessions() == []
    with pytest.raises(NotFoundError):  # ending it twice says so
        lab.staff.end_session(session.id)


def test_changing_the_password_ends_every_session(lab: Lab) -> None:
    lab.staff.set_password("first password")
    desks = [lab.staff.start_session(f"Desk {n}") for n in range(3)]
    lab.staff.set_password("second password")
    for desk in desks:
        with pytest.raises(AuthenticationError, match="password changed"):
            lab.staff.check_session(desk.id)
    assert lab.staff.check_session(lab.staff.start_session("Desk 9").id).active


@pytest.mark.parametrize("session_id", ["", "made-up", "x" * 300])
def test_unknown_sessions_are_refused(lab: Lab, session_id: str) -> None:
    with pytest.raises(AuthenticationError):
        lab.staff.check_session(session_id)


def test_a_session_expires_after_its_lifetime_and_records_use(lab: Lab) -> None:
    session = lab.staff.start_session("Desk")
    lab.clock.advance(minutes=5)
    assert lab.staff.check_session(session.id).last_seen_at == session.started_at
    assert lab.staff.sessions()[0].last_seen_at == lab.clock.now()  # touched
    lab.clock.advance(hours=12)
    with pytest.raises(AuthenticationError, match="expired"):
        lab.staff.check_session(session.id)
    assert lab.staff.sessions() == []  # expired ones are not listed as signed in
