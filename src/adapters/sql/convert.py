"""Rows ⇄ printcore entities, and the shared cattrs ``converter``.

The ``converter`` turns printcore's attrs classes into JSON-compatible data and back:
datetimes become ISO 8601 strings in UTC (``"2026-09-01T15:00:00+00:00"``), and
``JobFile``, ``SliceEstimate`` and ``Payment`` become plain dicts keyed by their field
names. It is used for the JSON columns here, and reused for ``metadata.json`` and the
JSON API, so one shape serves all three.

Structuring raises ``cattrs`` errors (``ClassValidationError`` and friends) for malformed
data, and ValueError (wrapped by cattrs) for a datetime without a time zone.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from adapters.serialization import converter, parse_utc, utc_iso
from printcore.events import Event
from printcore.requests.job import Actor, Job, JobFile, Payment
from printcore.requests.search import search_text

__all__ = [
    "converter",
    "event_to_row",
    "job_to_row",
    "parse_utc",
    "row_to_event",
    "row_to_job",
    "utc_iso",
]


_JOB_JSON_FIELDS = ("files", "rejection_reasons", "payments")
_JOB_SCALAR_FIELDS = (
    "id",
    "status",
    "version",
    "student_name",
    "email",
    "discipline",
    "class_number",
    "print_method",
    "color",
    "preferred_printer",
    "notes",
    "created_at",
    "updated_at",
    "authoritative_file",
    "weight_g",
    "time_hours",
    "cost_cents",
    "confirmation_nonce",
    "confirmation_expires_at",
    "confirmed_at",  # the print line and reminders (0009)
    "reminder_sent_at",
    "reminder_nonce",
    "printer",
    "failed_attempts",
    "reviewed_at",
    "reviewed_by",
    "staff_notes",
    "staff_notes_by",
    "staff_notes_at",
)


def _aware(value: datetime | None) -> datetime | None:
    if value is not None:
        utc_iso(value)  # raises ValueError when naive
    return value


def job_to_row(job: Job) -> dict[str, Any]:
    """Column values of the ``jobs`` table for ``job`` (``id`` and ``version`` included).

    Scalar datetimes stay datetimes (the column type handles them); ``files`` and
    ``payments`` become lists of JSON dicts; ``search_text`` is what a search looks in
    (:func:`printcore.requests.search.search_text`, derived, never read back). Raises
    ValueError for a naive datetime.
    """
    row: dict[str, Any] = {name: getattr(job, name) for name in _JOB_SCALAR_FIELDS}
    for name in ("created_at", "updated_at", "confirmation_expires_at", "reviewed_at"):
        _aware(row[name])
    _aware(row["confirmed_at"])
    _aware(row["reminder_sent_at"])
    _aware(row["staff_notes_at"])
    row["files"] = converter.unstructure(job.files, list[JobFile])
    row["rejection_reasons"] = list(job.rejection_reasons)
    row["payments"] = converter.unstructure(job.payments, list[Payment])
    row["search_text"] = search_text(job)
    return row


def row_to_job(row: Mapping[Any, Any]) -> Job:
    """A ``Job`` from a ``jobs`` row mapping (e.g. ``result.mappings().one()``)."""
    values = {name: row[name] for name in _JOB_SCALAR_FIELDS}
    return Job(
        **values,
        files=converter.structure(row["files"] or [], list[JobFile]),
        rejection_reasons=[str(r) for r in row["rejection_reasons"] or []],
        payments=converter.structure(row["payments"] or [], list[Payment]),
    )


def event_to_row(event: Event) -> dict[str, Any]:
    """Column values of the ``events`` table (``id`` left out when the event has none).

    Raises ValueError when ``event.at`` is naive.
    """
    _aware(event.at)
    row: dict[str, Any] = {
        "subject": event.subject,
        "subject_id": event.subject_id,
        "kind": event.kind,
        "actor_kind": event.actor.kind,
        "actor_name": event.actor.name,
        "workstation": event.actor.workstation,
        "at": event.at,
        "from_status": event.from_status,
        "to_status": event.to_status,
        "details": converter.unstructure(dict(event.details)),
    }
    if event.id is not None:
        row["id"] = event.id
    return row


def row_to_event(row: Mapping[Any, Any]) -> Event:
    """An ``Event`` from an ``events`` row mapping."""
    return Event(
        subject=row["subject"],
        subject_id=row["subject_id"],
        kind=row["kind"],
        actor=Actor(row["actor_kind"], row["actor_name"], row["workstation"]),
        at=row["at"],
        details=dict(row["details"] or {}),
        from_status=row["from_status"],
        to_status=row["to_status"],
        id=row["id"],
    )
