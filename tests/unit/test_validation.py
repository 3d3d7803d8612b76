"""The upload form's checks: presence, lengths, line breaks, choices; all errors at once."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from printcore import Submission, ValidationError, check_submission
from printcore.requests.validation import FIELD_LIMITS, REQUIRED

MakeSubmission = Callable[..., Submission]


def refused(submission: Submission) -> dict[str, str]:
    with pytest.raises(ValidationError) as info:
        check_submission(submission)
    return info.value.fields


def test_a_complete_form_passes(make_submission: MakeSubmission) -> None:
    check_submission(make_submission())
    check_submission(make_submission(print_method="resin", class_number="", notes="Thanks!\nJ."))


@pytest.mark.parametrize("field", REQUIRED)
@pytest.mark.parametrize("blank", ["", "   ", "\t"])
def test_every_required_field_is_required(
    make_submission: MakeSubmission, field: str, blank: str
) -> None:
    assert set(refused(make_submission(**{field: blank}))) == {field}


def test_optional_fields_may_be_empty(make_submission: MakeSubmission) -> None:
    check_submission(make_submission(class_number="", preferred_printer="", notes=""))


@pytest.mark.parametrize(("field", "limit"), sorted(FIELD_LIMITS.items()))
def test_length_limits(make_submission: MakeSubmission, field: str, limit: int) -> None:
    at_limit = "x" * (limit - len("@u.edu")) + "@u.edu" if field == "email" else "x" * limit
    if field != "print_method":
        check_submission(make_submission(**{field: at_limit}))
    fields = refused(make_submission(**{field: "x" * (limit + 1)}))
    assert set(fields) == {field}
    assert str(limit) in fields[field]


@pytest.mark.parametrize("field", [f for f in FIELD_LIMITS if f != "notes"])
@pytest.mark.parametrize("newline", ["\n", "\r", "\r\n", "\x00"])
def test_line_breaks_are_refused_outside_the_notes(
    make_submission: MakeSubmission, field: str, newline: str
) -> None:
    value = {"email": f"jane{newline}Bcc: all@u.edu"}.get(field, f"one{newline}two")
    assert field in refused(make_submission(**{field: value}))


def test_notes_may_span_lines_but_not_hold_nul_bytes(make_submission: MakeSubmission) -> None:
    check_submission(make_submission(notes="Please use\r\nthe fine nozzle."))
    assert set(refused(make_submission(notes="a\x00b"))) == {"notes"}


@pytest.mark.parametrize("method", ["laser", "Filament", "pla", "filament ", "resin\n"])
def test_print_method_must_be_filament_or_resin(
    make_submission: MakeSubmission, method: str
) -> None:
    assert set(refused(make_submission(print_method=method))) == {"print_method"}


def test_email_needs_an_at_sign(make_submission: MakeSubmission) -> None:
    assert set(refused(make_submission(email="jane.university.edu"))) == {"email"}


def test_non_text_values_are_refused(make_submission: MakeSubmission) -> None:
    fields = refused(make_submission(student_name=None, notes=42))
    assert set(fields) == {"student_name", "notes"}


def test_every_error_is_reported_at_once(make_submission: MakeSubmission) -> None:
    bad: dict[str, Any] = {
        "student_name": "",
        "email": "no-at-sign",
        "discipline": "x" * 500,
        "class_number": "ME\n101",
        "print_method": "laser",
        "color": "",
        "preferred_printer": "p" * 121,
        "notes": "n" * 2001,
    }
    with pytest.raises(ValidationError) as info:
        check_submission(make_submission(**bad))
    assert set(info.value.fields) == set(bad)
    assert all(message.strip() for message in info.value.fields.values())
