"""The admin area's staff rules on the in-memory fakes: rename, deactivate, reactivate,
adding from the admin page, the password change and ending a workstation, each with its
lab event; plus two adapter pieces with no I/O: every setting has a description, and the
warnings buffer.

Bad inputs tried: renaming to a name in use (any case), to the same name, to an empty or
81-character name, renaming an unknown member; adding a name in use (active or
deactivated, any case); deactivating the last active member, an inactive member, an
unknown one; reactivating an active member; a password under 8 characters, two new
passwords that differ; an actor who is not active staff; ending an unknown session.
Each refusal leaves the staff list, the sessions and the event log as they were.
"""

from __future__ import annotations

import logging
import threading
from typing import TYPE_CHECKING

import attrs
import pytest

from printcore import Actor, NotFoundError, ValidationError
from printcore.lab_events import LAB_ID, LAB_SUBJECT
from printcore.staff import PASSWORD_KEY, StaffStateError

if TYPE_CHECKING:
    from conftest import Lab

ANA = Actor.staff("Ana Lee", "front-desk")
STRANGER = Actor.staff("Nobody Here", "front-desk")


def _state(lab: Lab) -> tuple[object, ...]:
    return (dict(lab.db.staff), dict(lab.db.sessions), list(lab.db.events),
            dict(lab.db.settings))


def _lab_events(lab: Lab) -> list[tuple[str, str, dict[str, object]]]:
    return [(e.kind, e.actor.name, dict(e.details)) for e in lab.db.events
            if (e.subject, e.subject_id) == (LAB_SUBJECT, LAB_ID)]


def test_rename_keeps_the_member_and_logs_old_and_new(lab: Lab) -> None:
    before = lab.staff.list(active_only=False)
    renamed = lab.staff.rename("Ben Okafor", "  Benjamin   Okafor ", ANA)
    assert renamed.name == "Benjamin Okafor"
    names = {m.name: m for m in lab.staff.list(active_only=False)}
    assert set(names) == {"Ana Lee", "Benjamin Okafor"}
    assert names["Benjamin Okafor"].added_at == {m.name: m for m in before}["Ben Okafor"].added_at
    assert _lab_events(lab) == [("staff_renamed", "Ana Lee",
                                 {"old": "Ben Okafor", "new": "Benjamin Okafor"})]
    assert lab.db.events[-1].at == lab.clock.now()


def test_a_renamed_deactivated_member_stays_deactivated(lab: Lab) -> None:
    lab.staff.deactivate("Ben Okafor", ANA)
    lab.staff.rename("Ben Okafor", "Ben O.", ANA)
    assert {m.name: m.active for m in lab.staff.list(active_only=False)} == {
        "Ana Lee": True, "Ben O.": False}


@pytest.mark.parametrize("new, error, field", [
    ("Ana Lee", StaffStateError, "new_name"),
    ("ana lee", StaffStateError, "new_name"),
    ("Ben Okafor", ValidationError, "new_name"),
    ("", ValidationError, "new_name"),
    ("x" * 81, ValidationError, "new_name"),
])
def test_rename_refusals_change_nothing(lab: Lab, new: str, error: type[Exception],
                                        field: str) -> None:
    before = _state(lab)
    with pytest.raises(error) as info:
        lab.staff.rename("Ben Okafor", new, ANA)
    assert field in info.value.fields  # type: ignore[attr-defined]
    assert _state(lab) == before


def test_rename_of_an_unknown_member_or_by_a_stranger(lab: Lab) -> None:
    before = _state(lab)
    with pytest.raises(NotFoundError):
        lab.staff.rename("Nobody", "Somebody", ANA)
    with pytest.raises(ValidationError) as info:
        lab.staff.rename("Ben Okafor", "Ben O.", STRANGER)
    assert "staff_name" in info.value.fields
    assert _state(lab) == before


def test_a_renamed_name_is_free_again_and_the_new_one_taken(lab: Lab) -> None:
    lab.staff.rename("Ben Okafor", "Ben O.", ANA)
    lab.staff.add("Ben Okafor", ANA, refuse_existing=True)
    with pytest.raises(StaffStateError):
        lab.staff.add("BEN O.", ANA, refuse_existing=True)
    assert [m.name for m in lab.staff.list()] == ["Ana Lee", "Ben O.", "Ben Okafor"]


@pytest.mark.parametrize("name", ["Ben Okafor", "ben okafor", "  Ben   Okafor"])
def test_adding_a_name_in_use_from_the_admin_page_is_refused(lab: Lab, name: str) -> None:
    lab.staff.deactivate("Ben Okafor")
    before = _state(lab)
    with pytest.raises(StaffStateError) as info:
        lab.staff.add(name, ANA, refuse_existing=True)
    assert "reactivate" in str(info.value) and "name" in info.value.fields
    assert _state(lab) == before


def test_the_command_line_add_still_reactivates_without_an_event(lab: Lab) -> None:
    lab.staff.deactivate("Ben Okafor")
    lab.staff.add("Ben Okafor")
    assert [m.name for m in lab.staff.list()] == ["Ana Lee", "Ben Okafor"]
    assert _lab_events(lab) == []


def test_deactivate_and_reactivate_are_logged(lab: Lab) -> None:
    lab.staff.deactivate("Ben Okafor", ANA)
    assert [m.name for m in lab.staff.list()] == ["Ana Lee"]
    with pytest.raises(StaffStateError):
        lab.staff.deactivate("Ben Okafor", ANA)
    lab.staff.reactivate("Ben Okafor", ANA)
    with pytest.raises(StaffStateError):
        lab.staff.reactivate("Ben Okafor", ANA)
    with pytest.raises(NotFoundError):
        lab.staff.reactivate("Nobody", ANA)
    assert [k for k, _, _ in _lab_events(lab)] == ["staff_deactivated", "staff_reactivated"]


def test_the_last_active_member_cannot_be_deactivated(lab: Lab) -> None:
    lab.staff.deactivate("Ben Okafor", ANA)
    before = _state(lab)
    with pytest.raises(ValidationError) as info:
        lab.staff.deactivate("Ana Lee", ANA)
    assert "last active staff member" in str(info.value)
    assert _state(lab) == before


def test_a_password_change_ends_other_sessions_and_starts_one_for_the_changer(lab: Lab) -> None:
    lab.staff.set_password("correct horse battery")
    mine = lab.staff.start_session("front-desk")
    other = lab.staff.start_session("back-room")
    fresh = lab.staff.change_password("a new password", "a new password", ANA, "front-desk")
    assert fresh.id not in (mine.id, other.id) and fresh.workstation == "front-desk"
    assert [s.id for s in lab.staff.sessions()] == [fresh.id]
    lab.staff.check_session(fresh.id)
    lab.staff.check_password("a new password")
    ended = lab.db.sessions[other.id]
    assert ended.ended_by == "password changed by Ana Lee"
    assert _lab_events(lab) == [("password_changed", "Ana Lee",
                                 {"sessions_ended": 2, "workstation": "front-desk"})]
    assert "a new password" not in repr(lab.db.events)


@pytest.mark.parametrize("new, again, field", [
    ("short", "short", "password"), ("long enough 1", "long enough 2", "password_again")])
def test_a_refused_password_change_changes_nothing(lab: Lab, new: str, again: str,
                                                   field: str) -> None:
    lab.staff.set_password("correct horse battery")
    lab.staff.start_session("back-room")
    before = _state(lab)
    with pytest.raises(ValidationError) as info:
        lab.staff.change_password(new, again, ANA, "front-desk")
    assert field in info.value.fields
    assert _state(lab) == before
    assert lab.db.settings[PASSWORD_KEY]


def test_ending_a_workstation_is_logged(lab: Lab) -> None:
    other = lab.staff.start_session("back-room")
    lab.staff.end_session(other.id, "ended by Ana Lee", ANA)
    assert lab.staff.sessions() == []
    [(kind, who, details)] = _lab_events(lab)
    assert (kind, who, details["workstation"]) == ("session_ended", "Ana Lee", "back-room")
    with pytest.raises(NotFoundError):
        lab.staff.end_session(other.id, "again", ANA)


def test_lab_history_is_newest_first_and_limited(lab: Lab) -> None:
    for n in range(5):
        lab.staff.add(f"Temp {n}", ANA, refuse_existing=True)
        lab.clock.advance(minutes=1)
    history = lab.staff.lab_history(3)
    assert [e.details["name"] for e in history] == ["Temp 4", "Temp 3", "Temp 2"]


# --- adapter pieces without I/O ------------------------------------------------------------

def test_every_setting_has_a_description() -> None:
    from adapters.web.admin import SETTING_DESCRIPTIONS
    from entrypoints.settings import Settings

    fields = [f.name for f in attrs.fields(Settings)]
    missing = [name for name in fields if not SETTING_DESCRIPTIONS.get(name, "").strip()]
    assert missing == [], f"add a line to adapters.web.admin.SETTING_DESCRIPTIONS for {missing}"
    assert set(SETTING_DESCRIPTIONS) <= set(fields), "descriptions of settings that are gone"
    assert all("\n" not in text for text in SETTING_DESCRIPTIONS.values())


def test_the_warnings_buffer_keeps_the_last_warnings_newest_first() -> None:
    from adapters.warnings_log import RecentWarnings

    handler = RecentWarnings(capacity=5)
    log = logging.getLogger("printcore.test.warnings")
    log.addHandler(handler)
    log.propagate = False
    try:
        log.info("not kept")
        for n in range(8):
            log.warning("warning %d", n)
        try:
            raise OSError("disk full")
        except OSError:
            log.exception("could not write")
    finally:
        log.removeHandler(handler)
        log.propagate = True
    kept = handler.latest()
    assert [w.message for w in kept[1:]] == [f"warning {n}" for n in (7, 6, 5, 4)]
    assert kept[0].message == "could not write (OSError: disk full)"
    assert kept[0].level == "ERROR" and kept[0].logger == "printcore.test.warnings"
    assert kept[0].at.tzinfo is not None and kept[0].at.utcoffset().total_seconds() == 0  # type: ignore[union-attr]


def test_the_warnings_buffer_is_thread_safe_and_installed_once() -> None:
    from adapters import warnings_log

    handler = warnings_log.RecentWarnings(capacity=50)
    record = logging.LogRecord("t", logging.WARNING, __file__, 1, "w", None, None)

    def hammer() -> None:
        for _ in range(2000):
            handler.handle(record)
            handler.latest()

    threads = [threading.Thread(target=hammer) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(handler.latest()) == 50

    first = warnings_log.install()
    assert warnings_log.install() is first
    assert sum(h is first for h in logging.getLogger().handlers) == 1


def test_the_descriptions_name_real_environment_variables() -> None:
    """A description that names ``PRINTCORE_…`` (or ``SMTP_…``, ``DISCORD_…``) names a
    variable that entrypoints/settings.py reads: a renamed variable fails here."""
    import re
    from pathlib import Path

    import entrypoints.settings
    from adapters.web.admin import SETTING_DESCRIPTIONS

    source = Path(entrypoints.settings.__file__).read_text()
    wrong = {field: name for field, text in SETTING_DESCRIPTIONS.items()
             for name in re.findall(r"\b(?:PRINTCORE|SMTP|DISCORD|DATABASE|REDIS)_[A-Z0-9_]+",
                                    text)
             if f'"{name}"' not in source}
    assert wrong == {}


def test_structlog_warnings_reach_the_buffer_and_still_print(capsys: pytest.CaptureFixture[str]) -> None:
    """printcore's own loggers are structlog's (stdout, not stdlib logging): after
    install(), their warnings and errors are kept too (with the event's keys), infos are
    not, and the line is still printed."""
    import structlog

    from adapters import warnings_log

    kept = warnings_log.install()
    kept.clear()
    log = structlog.get_logger("printcore.test")
    log.info("delivered", message_id=1)
    log.warning("delivery failed", message_id=7, error="SMTP 451")
    log.error("gave up", message_id=7)
    latest = kept.latest()
    assert [(w.level, w.message) for w in latest] == [
        ("ERROR", "gave up (message_id=7)"),
        ("WARNING", "delivery failed (message_id=7 error='SMTP 451')")]
    assert "delivery failed" in capsys.readouterr().out
