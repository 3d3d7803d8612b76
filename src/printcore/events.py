"""The append-only event log's entry (one immutable record per state change) and who
acted. Shared by both flows: print requests (subject ``job``) and the queue (``printer``,
``ticket``)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import attrs

__all__ = ["Actor", "Event"]


@attrs.frozen
class Actor:
    """Who did something: ``kind`` is ``staff``, ``student``, ``member`` or ``system``.

    Staff actors carry the staff member's ``name`` and the ``workstation`` they used.
    """

    kind: str
    name: str
    workstation: str | None = None

    @classmethod
    def staff(cls, name: str, workstation: str | None = None) -> Actor:
        return cls("staff", name, workstation)

    @classmethod
    def student(cls, name: str) -> Actor:
        return cls("student", name)

    @classmethod
    def system(cls, name: str = "printcore") -> Actor:
        return cls("system", name)


@attrs.frozen
class Event:
    """Something that happened.

    ``subject`` names what it happened to (``"job"`` for print requests, later
    ``"printer"``/``"ticket"``), ``subject_id`` its id. ``kind`` is the transition or
    action name (``submitted``, ``approve``, ``file_added`` ...). ``at`` is UTC.
    ``details`` is a JSON-compatible dict (numbers, strings, lists, dicts, None).
    ``from_status``/``to_status`` are set for state changes.
    """

    subject: str
    subject_id: int
    kind: str
    actor: Actor
    at: datetime
    details: dict[str, Any] = attrs.Factory(dict)
    from_status: str | None = None
    to_status: str | None = None
    id: int | None = None
