"""Checks of what students type. The web adapter adds a deliverability-free email check
(email-validator); printcore checks presence, lengths and choices."""

from __future__ import annotations

from printcore.errors import ValidationError
from printcore.requests.job import PrintMethod, Submission
from printcore.text import text_problem

__all__ = ["FIELD_LIMITS", "check_submission"]

#: Maximum lengths (characters) of the submission form's fields.
FIELD_LIMITS: dict[str, int] = {
    "student_name": 120,
    "email": 254,
    "discipline": 120,
    "class_number": 60,
    "print_method": 20,
    "color": 60,
    "preferred_printer": 120,
    "notes": 2000,
}

REQUIRED = ("student_name", "email", "discipline", "print_method", "color")

_LABELS = {
    "student_name": "your first and last name",
    "email": "your email address",
    "discipline": "your discipline or department",
    "print_method": "a print method",
    "color": "a color",
}


def check_submission(submission: Submission) -> None:
    """Raises ValidationError with a message per bad field (all of them at once)."""
    fields: dict[str, str] = {}
    for name, limit in FIELD_LIMITS.items():
        value = getattr(submission, name)
        if not isinstance(value, str):
            fields[name] = "Must be text."
        elif name in REQUIRED and not value.strip():
            fields[name] = f"Enter {_LABELS[name]}."
        elif len(value) > limit:
            fields[name] = f"At most {limit} characters."
        elif (problem := text_problem(value, multiline=name == "notes")) is not None:
            fields[name] = problem
    method = submission.print_method
    if "print_method" not in fields and method not in {m.value for m in PrintMethod}:
        fields["print_method"] = "Choose filament or resin."
    if "email" not in fields and "@" not in submission.email:
        fields["email"] = "Enter a valid email address, like name@university.edu."
    if fields:
        raise ValidationError("Please correct the marked fields.", fields)
