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
