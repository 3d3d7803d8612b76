"""Correcting and annotating a print request after it was submitted (staff only).

Two rules live here, used by :meth:`PrintRequests.set_staff_notes` and
:meth:`PrintRequests.edit_details`:

* **Staff notes**: free text for the staff (never shown to the student), up to
  :data:`STAFF_NOTES_LIMIT` characters, may span lines (``staff_notes`` is a multi-line
  field of :mod:`printcore.text`); trailing spaces and blank lines are trimmed; the empty
  text clears the notes.
* **Details**: the fields a student may have mistyped (:data:`EDITABLE_FIELDS`), checked
  with the same rules as the submission form (:func:`check_submission`). The stored file
  names keep the student's name and colour as they were at submission (a slicer may have
  them open); the job's folder, whose name holds both, moves to the corrected name; a
  new sliced file uses the corrected name.

Both raise :class:`~printcore.errors.ValidationError` with a message per bad field.
"""

from __future__ import annotations

from collections.abc import Mapping

import attrs

from printcore.errors import ValidationError
from printcore.requests.job import Job, Submission
from printcore.requests.validation import check_submission
from printcore.text import text_problem

__all__ = ["DEFAULT_COLORS", "EDITABLE_FIELDS", "STAFF_NOTES_LIMIT", "checked_changes", "checked_staff_notes"]

#: The colours offered on the forms when the lab sets none (``PRINTCORE_COLORS``);
#: "other" (free text) is always offered besides them.
DEFAULT_COLORS: tuple[str, ...] = (
    "Black", "White", "Grey", "Red", "Orange", "Yellow", "Green", "Blue", "Purple",
    "Clear", "Any",
)

#: The longest staff note, in characters.
STAFF_NOTES_LIMIT = 2000

#: Request details staff may correct, with their labels (in form order).
EDITABLE_FIELDS: dict[str, str] = {
    "student_name": "student name",
    "email": "email",
    "discipline": "discipline",
    "class_number": "class number",
    "color": "colour",
    "preferred_printer": "preferred printer",
}


def checked_staff_notes(job: Job, notes: object) -> str:
    """``notes`` as stored (trailing whitespace trimmed, ``\\r\\n`` as ``\\n``).

    Raises ValidationError on the ``notes`` field: not text, longer than
    :data:`STAFF_NOTES_LIMIT` characters, a control character or broken encoding, or the
    same as the job's notes now (nothing to record).
    """
    if not isinstance(notes, str):
        raise ValidationError("notes must be text.", {"notes": "Must be text."})
    problem = text_problem(notes, multiline=True)
    if problem is not None:
        raise ValidationError(f"notes: {problem}", {"notes": problem})
    text = "\n".join(line.rstrip() for line in notes.replace("\r\n", "\n").split("\n"))
    text = text.strip("\n")
    if len(text) > STAFF_NOTES_LIMIT:
        message = f"At most {STAFF_NOTES_LIMIT} characters (this is {len(text)})."
        raise ValidationError(f"The notes are too long. {message}", {"notes": message})
    if text == job.staff_notes:
        raise ValidationError("The notes are unchanged: nothing to save.",
                              {"notes": "Unchanged: edit the text, or leave it."})
    return text


def checked_changes(job: Job, changes: Mapping[str, object]) -> dict[str, tuple[str, str]]:
    """``{field: (old, new)}`` for the fields ``changes`` really changes (values trimmed;
    a field given with its current value is left out).

    Raises ValidationError: an unknown field name (only :data:`EDITABLE_FIELDS` can be
    corrected), a value that is not text or fails the submission rules (required, length,
    email, text rule; all bad fields at once), or nothing left to change.
    """
    unknown = sorted(name for name in changes if name not in EDITABLE_FIELDS)
    if unknown:
        allowed = ", ".join(EDITABLE_FIELDS)
        raise ValidationError(
            f"Cannot change {', '.join(unknown)}: only {allowed} can be corrected.",
            {name: f"Not a field that can be corrected (use one of: {allowed})."
             for name in unknown})
    bad = {name: "Must be text." for name, value in changes.items() if not isinstance(value, str)}
    if bad:
        raise ValidationError("Please correct the marked fields.", bad)
    new = {name: str(value).strip() for name, value in changes.items()}
    current = Submission(
        student_name=job.student_name, email=job.email, discipline=job.discipline,
        class_number=job.class_number, print_method=job.print_method, color=job.color,
        preferred_printer=job.preferred_printer, notes="")
    try:
        check_submission(attrs.evolve(current, **new))
    except ValidationError as err:
        # Only the fields being corrected count: a stored value from before a rule
        # changed must not block fixing another field.
        fields = {k: v for k, v in err.fields.items() if k in new}
        if fields:
            raise ValidationError("Please correct the marked fields.", fields) from None
    changed = {name: (str(getattr(job, name)), value) for name, value in new.items()
               if value != getattr(job, name)}
    if not changed:
        raise ValidationError("Nothing to change: the details are as they were.",
                              {name: "Unchanged." for name in new} or
                              {"changes": "Give at least one field to correct."})
    return changed
