"""The append-only event log's entry: one immutable record per state change."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import attrs

from printcore.job import Actor

__all__ = ["Event"]


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
